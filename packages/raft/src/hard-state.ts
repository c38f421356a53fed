import { MalformedMessageError, StorageError, type NodeId, type Storage } from '@consensus-kit/core';
import { pack, unpack } from 'msgpackr';

/**
 * Raft's durable per-server state (thesis Figure 3.1 "persistent state on all servers": currentTerm, votedFor)
 * plus the commit index, which etcd also persists so a restart does not have to rediscover it. Persisted
 * before any message that depends on it is sent (thesis 3.8: a vote must be on stable storage before the
 * vote is granted).
 */
export interface HardState {
  term: number;
  vote?: NodeId;
  commit: number;
}

export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({ term: 0, commit: 0 });

export function encodeHardState(hs: HardState): Uint8Array {
  const wire: { t: number; c: number; v?: NodeId } = { t: hs.term, c: hs.commit };
  if (hs.vote !== undefined) wire.v = hs.vote;
  return pack(wire);
}

/** Throws `MalformedMessageError` when `data` is not a hard state written by `encodeHardState`. */
export function decodeHardState(data: Uint8Array): HardState {
  let w: unknown;
  try {
    w = unpack(data);
  } catch (cause) {
    throw new MalformedMessageError('raft hard state is not valid msgpack', { cause });
  }
  if (typeof w !== 'object' || w === null) throw new MalformedMessageError('raft hard state is not a map');
  const { t, c, v } = w as { t?: unknown; c?: unknown; v?: unknown };
  const ok = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!ok(t) || !ok(c)) throw new MalformedMessageError('raft hard state lacks a valid term or commit');
  if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw new MalformedMessageError('raft hard state has a bad vote');
  const hs: HardState = { term: t as number, commit: c as number };
  if (v !== undefined) hs.vote = v as NodeId;
  return hs;
}

export function hardStatesEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** The hard state a restart recovers from `storage` (term 0, no vote, commit 0 on first boot). Throws `StorageError` when unreadable. */
export function readHardState(storage: Storage): { term: number; vote: NodeId | undefined; commit: number } {
  const raw = storage.initialState().hardState;
  if (raw === undefined || raw.length === 0) return { term: 0, vote: undefined, commit: 0 };
  try {
    const d = decodeHardState(raw);
    return { term: d.term, vote: d.vote, commit: d.commit };
  } catch (cause) {
    throw new StorageError('stored raft hard state is unreadable', { cause });
  }
}
