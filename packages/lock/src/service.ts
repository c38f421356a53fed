import { InvalidArgumentError, type LogEntry } from '@consensus-kit/core';
import type { LockEvent } from './commands';
import type { LockStateMachine, SessionInfo } from './lock-state-machine';
import { validateWireRequest, type LockPush, type PushSink } from './wire';

/** What the service needs of a node: `ConsensusNode` is one (of a lock-only or a combined state machine). */
export interface LockNode {
  propose(command: never, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
  read(query: never, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
  on(event: 'apply', listener: (e: { entry: LogEntry }) => void): unknown;
  on(event: 'snapshot', listener: () => void): unknown;
  off(event: 'apply', listener: (e: { entry: LogEntry }) => void): unknown;
  off(event: 'snapshot', listener: () => void): unknown;
}

export interface LockServiceOptions {
  node: LockNode;
  /** The node's lock state machine (the one inside the combined machine, when combined). */
  stateMachine: LockStateMachine;
  /** Its name in `combineStateMachines` (`'lock'` in `{ kv, lock }`); absent when the node runs the lock machine alone. */
  route?: string;
  /** Timeout of one proposal or read barrier. Default: the node's. */
  timeoutMs?: number;
}

export interface LockServiceContext {
  signal?: AbortSignal;
  subscription?: PushSink;
}

export interface LockService {
  (body: unknown, ctx?: LockServiceContext): Promise<unknown>;
  /** Stops following the node and ends every subscription. */
  close(): void;
  /** Open event subscriptions. */
  readonly subscriptions: number;
}

/**
 * The server side of the lock client protocol. Writes are proposed (a follower's `NotLeaderError` becomes a
 * redirect in the transport); reads go through a read barrier unless serializable; `lock.events` subscriptions
 * are served by this node from its own applied state (any node, as kv watches are): after every applied entry
 * the events it produced for a session are pushed to that session's subscribers (grants from a queue, holds
 * lost and waits failed by an expiry), so clients learn of them without polling.
 */
export function createLockService(options: LockServiceOptions): LockService {
  const { node, stateMachine, route } = options;
  const subs = new Map<number, Set<PushSink>>();
  /** How each open subscription ends (resolving its answer): the client opens it again elsewhere. */
  const enders = new Set<() => void>();
  let count = 0;
  const wrapCmd = (cmd: unknown) => (route === undefined ? { cmd } : { sm: route, cmd: { cmd } });
  const wrapQuery = (q: unknown) => (route === undefined ? q : { sm: route, q });
  const sync = (session: number): LockPush => ({ sync: stateMachine.query({ op: 'session', session }) as SessionInfo | undefined, index: stateMachine.appliedIndex });
  const onApply = ({ entry }: { entry: LogEntry }) => {
    if (subs.size === 0) return;
    const events = stateMachine.eventsAt(entry.index);
    if (events.length === 0) return;
    const bySession = new Map<number, LockEvent[]>();
    for (const e of events) {
      if (!subs.has(e.session)) continue;
      let list = bySession.get(e.session);
      if (list === undefined) bySession.set(e.session, (list = []));
      list.push(e);
    }
    for (const [session, list] of bySession) for (const sink of subs.get(session) ?? []) sink.push({ events: list, index: entry.index } satisfies LockPush);
  };
  const onSnapshot = () => {
    for (const [session, sinks] of subs) for (const sink of sinks) sink.push(sync(session));
  };
  node.on('apply', onApply);
  node.on('snapshot', onSnapshot);

  const subscribe = (session: number, sink: PushSink): Promise<void> =>
    new Promise<void>((resolve) => {
      let set = subs.get(session);
      if (set === undefined) subs.set(session, (set = new Set()));
      set.add(sink);
      count++;
      const done = () => {
        enders.delete(done);
        sink.signal.removeEventListener('abort', done);
        const s = subs.get(session);
        if (s?.delete(sink) === true) count--;
        if (s?.size === 0) subs.delete(session);
        resolve();
      };
      enders.add(done);
      if (sink.signal.aborted) return done();
      sink.signal.addEventListener('abort', done, { once: true });
      sink.push(sync(session));
    });

  const serve = (body: unknown, ctx: LockServiceContext | undefined): Promise<unknown> | unknown => {
    validateWireRequest(body);
    const op = { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(ctx?.signal !== undefined ? { signal: ctx.signal } : {}) };
    switch (body.t) {
      case 'lock.events':
        if (ctx?.subscription === undefined) throw new InvalidArgumentError('lock.events must be opened as a subscription (server push)');
        return subscribe(body.session, ctx.subscription);
      case 'lock.write':
        return node.propose(wrapCmd(body.cmd) as never, op);
      case 'lock.read':
        if (body.consistency === 'serializable') return stateMachine.query(body.q);
        return node.read(wrapQuery(body.q) as never, op);
    }
  };
  const service = ((body: unknown, ctx?: LockServiceContext) => {
    try {
      const out = serve(body, ctx);
      return out instanceof Promise ? out : Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }) as LockService;
  service.close = () => {
    node.off('apply', onApply);
    node.off('snapshot', onSnapshot);
    for (const end of [...enders]) end();
  };
  Object.defineProperty(service, 'subscriptions', { get: () => count });
  return service;
}
