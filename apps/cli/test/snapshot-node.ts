/** A one-node raft cluster in this process for the snapshot-transfer tests, with pieces shrunk to 64 KiB. */
import { randomBytes } from 'node:crypto';
import { silentLogger } from '@consensus-kit/core/host';
import { createKvClient } from '@consensus-kit/kv';
import { launchNode, type LaunchedNode, type NodeSpec } from '../src/node-runner';

/** The piece size the tests' nodes serve (the default is 8 MiB). */
export const PIECE = 64 * 1024;
/** The idle time after which the tests' nodes drop a transfer. */
export const TTL = 60_000;

/** One raft node of a cluster of its own, listening on 127.0.0.1, once it leads. */
export async function startSnapshotNode(
  dataDir: string,
  clusterId: string,
  port: number,
  transfers: Partial<NonNullable<NodeSpec['snapshotTransfers']>> = {},
): Promise<LaunchedNode> {
  const spec: NodeSpec = {
    clusterId,
    id: 'n1',
    protocol: 'raft',
    protocolOptions: {},
    dataDir,
    peers: { n1: `127.0.0.1:${port}` },
    listen: { host: '127.0.0.1', port },
    http: undefined,
    tickMs: 20,
    machines: { kind: 'kv' },
    snapshotTransfers: { pieceBytes: PIECE, ttlMs: TTL, maxTransfers: 2, ...transfers },
  };
  const n = await launchNode(spec, silentLogger);
  await n.node.waitForLeader({ timeoutMs: 10_000 });
  return n;
}

/** Puts `count` random values of 32 KiB (they do not compress) under `prefix`, ten at a time. */
export async function putBigValues(port: number, clusterId: string, prefix: string, count: number): Promise<void> {
  const kv = createKvClient({ endpoints: [`127.0.0.1:${port}`], clusterId });
  try {
    for (let at = 0; at < count; at += 10) {
      await Promise.all(Array.from({ length: Math.min(10, count - at) }, (_, i) => kv.put(`${prefix}${at + i}`, new Uint8Array(randomBytes(32 * 1024)))));
    }
  } finally {
    await kv.close();
  }
}
