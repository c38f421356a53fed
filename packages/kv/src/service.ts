import { AbortedError, InvalidArgumentError } from '@consensus-kit/core';
import type { ConsensusNode, OperationOptions } from '@consensus-kit/core/host';
import type { KvQuery, KvRequest, KvResult } from './commands';
import { admitCommand, admitQuery, validateCommand, validateQuery, validateSession } from './commands';
import type { KvQueryResult, KvStateMachine } from './kv-state-machine';
import { WatchHub } from './watch-hub';
import { validateWireRequest, type PushSink } from './wire';

export interface KvServiceOptions {
  node: ConsensusNode<KvRequest, KvResult, KvQuery, KvQueryResult>;
  /** The node's state machine, for serializable (local) reads and watches. */
  stateMachine: KvStateMachine;
  /** Timeout of one proposal or read barrier on this node. Default: the node's. */
  timeoutMs?: number;
  /** Watches: how often progress notifications go out (`progressNotify`). Default 5,000 ms. */
  watchProgressIntervalMs?: number;
}

/** What the service reads of a request's context; transport-tcp's `RequestContext` is one. */
export interface KvServiceContext {
  signal?: AbortSignal;
  connectionSignal?: AbortSignal;
  /** Present when the request was opened as a subscription (server push): watches need it. */
  subscription?: PushSink;
}

/**
 * The server side of the kv client protocol: one function that answers a request body. Writes are proposed
 * (a follower throws `NotLeaderError` with the leader hint, which the transport turns into a redirect);
 * linearizable reads go through a read barrier; serializable reads answer from this node's state.
 * Bad requests are rejected before they reach the log.
 */
export function createKvService(options: KvServiceOptions): (body: unknown, ctx?: KvServiceContext) => Promise<unknown> {
  const { node, stateMachine } = options;
  const plain: OperationOptions = options.timeoutMs ? { timeoutMs: options.timeoutMs } : {};
  // Watches are served by this node from its own applied state, whatever its role (as etcd does); the hub
  // follows the node's applies and snapshot restores.
  let hub: WatchHub | undefined;
  const watches = (): WatchHub =>
    (hub ??= new WatchHub({
      stateMachine,
      events: node,
      ...(options.watchProgressIntervalMs !== undefined ? { progressIntervalMs: options.watchProgressIntervalMs } : {}),
    }));
  const serve = (body: unknown, ctx: KvServiceContext | undefined): Promise<unknown> | unknown => {
    validateWireRequest(body);
    if (body.t === 'kv.watch') {
      const sub = ctx?.subscription;
      if (sub === undefined) throw new InvalidArgumentError('kv.watch must be opened as a subscription (server push): use a channel with subscribe(), such as createRpcClient');
      return watches().watch(body, sub);
    }
    // A client connection's signal is checked here but not watched: a proposed write cannot be taken back, a
    // read barrier settles within a round trip, and the answer to either is dropped once the connection is
    // gone. Watching it would only settle the operation a little before its commit (or timeout) does, at the
    // cost of an abort listener per request on a signal that many requests share. A per-request signal,
    // given without a connection signal, is watched.
    const connection = ctx?.connectionSignal;
    if (connection?.aborted) throw new AbortedError(connection.reason);
    const signal = connection === undefined ? ctx?.signal : undefined;
    const op = signal === undefined ? plain : { ...plain, signal };
    if (body.t === 'kv.write') {
      validateCommand(body.req.cmd);
      admitCommand(body.req.cmd);
      if (body.req.session !== undefined) validateSession(body.req.session);
      return node.propose(body.req, op);
    }
    validateQuery(body.q);
    admitQuery(body.q);
    if (body.consistency === 'serializable') return stateMachine.query(body.q);
    return node.read(body.q, op);
  };
  // Not an async function: it adds no promise of its own to each request's chain.
  return (body, ctx) => {
    try {
      const out = serve(body, ctx);
      return out instanceof Promise ? out : Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  };
}
