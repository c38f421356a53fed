import { pack, unpack } from 'msgpackr';
import { StorageError, type NodeId } from '@consensus-kit/core';

/**
 * What a ZAB peer keeps durable besides its history (the log). Junqueira, Reed, Serafini (DSN 2011), section
 * IV-A: "f.p: last new epoch proposal follower f acknowledged, initially ⊥" (acceptedEpoch) and "f.a: last new
 * leader proposal follower f acknowledged" (currentEpoch). ZooKeeper keeps them in the files `acceptedEpoch` and
 * `currentEpoch`.
 */
export interface HardState {
  /** The last NEWEPOCH (LEADERINFO) this peer acknowledged with ACKEPOCH; it promises to accept nothing older. */
  acceptedEpoch: number;
  /**
   * The prospective leader that epoch was acknowledged to. Not in the paper: with it a peer re-acknowledges the
   * same epoch to the same leader after a restart (ZooKeeper does too, with currentEpoch -1 in ZOOKEEPER-335),
   * and never to a second leader, which keeps every epoch to at most one leader.
   */
  acceptedBy: NodeId;
  /** The last epoch whose NEWLEADER this peer acknowledged, after its history was durable. */
  currentEpoch: number;
  /**
   * Follower sessions started so far (ours): a session's nonce is drawn from it, so that a restarted follower is
   * never taken for its previous session (ZooKeeper gets a fresh TCP connection instead).
   */
  sessions: number;
  /** The voters this peer was started with on first boot (its configuration until the log holds one). */
  boot: NodeId[];
}

interface Wire {
  a: number;
  b: string;
  c: number;
  v: string[];
  s?: number;
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w: Wire = { a: hs.acceptedEpoch, b: hs.acceptedBy, c: hs.currentEpoch, v: hs.boot, s: hs.sessions };
  return pack(w);
}

export function decodeHardState(data: Uint8Array): HardState {
  let w: Partial<Wire>;
  try {
    w = unpack(data) as Partial<Wire>;
  } catch (cause) {
    throw new StorageError('zab hard state is not valid msgpack', { cause });
  }
  const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (typeof w !== 'object' || w === null || !int(w.a) || !int(w.c) || typeof w.b !== 'string' || !Array.isArray(w.v) || !w.v.every((x) => typeof x === 'string') || (w.s !== undefined && !int(w.s))) {
    throw new StorageError('zab hard state is malformed');
  }
  return { acceptedEpoch: w.a as number, acceptedBy: w.b, currentEpoch: w.c as number, boot: w.v as string[], sessions: w.s ?? 0 };
}
