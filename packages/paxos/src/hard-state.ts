import { pack, unpack } from 'msgpackr';
import { StorageError } from '@consensus-kit/core';
import { Membership, type MembershipWire } from './membership';

/**
 * What an acceptor keeps durable besides its accepted values (the log): the promise (Paxos Made Simple, section
 * 2.3: "an acceptor must remember ... the highest-numbered prepare request to which it has responded, even if it
 * fails and restarts"), the decided prefix, the membership as of it, and the two marks of a snapshot install.
 */
export interface HardState {
  /** The highest ballot promised (phase 1b) or accepted. */
  promised: number;
  /**
   * Slots <= commit are decided; their values are in the log (or a snapshot). Possibly older than the commit point
   * the replica knew: written only along with the rest (see `decide` in learner.ts), never on its own.
   */
  commit: number;
  membership: Membership;
  /**
   * Paxos Made Live, section 5.1 (disk corruption): an acceptor that may have lost accepted values takes no
   * part in phase 1 until every slot it may have voted in is decided. Set (before the log is replaced) when a
   * snapshot install could drop accepted values above the snapshot; 0 = none.
   */
  amnesiaUntil: number;
  /** A snapshot install under way: its index and the membership as of it (written before the install). */
  installing?: { index: number; membership: Membership };
}

interface Wire {
  p: number;
  c: number;
  m: MembershipWire;
  a?: number;
  i?: [number, MembershipWire];
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w: Wire = { p: hs.promised, c: hs.commit, m: hs.membership.toWire() };
  if (hs.amnesiaUntil > 0) w.a = hs.amnesiaUntil;
  if (hs.installing !== undefined) w.i = [hs.installing.index, hs.installing.membership.toWire()];
  return pack(w);
}

export function decodeHardState(data: Uint8Array): HardState {
  let w: Partial<Wire>;
  try {
    w = unpack(data) as Partial<Wire>;
  } catch (cause) {
    throw new StorageError('paxos hard state is not valid msgpack', { cause });
  }
  const membership = Membership.fromWire(w?.m);
  if (typeof w !== 'object' || w === null || !Number.isSafeInteger(w.p) || !Number.isSafeInteger(w.c) || membership === undefined) {
    throw new StorageError('paxos hard state is malformed');
  }
  const hs: HardState = { promised: w.p as number, commit: w.c as number, membership, amnesiaUntil: Number.isSafeInteger(w.a) ? (w.a as number) : 0 };
  if (Array.isArray(w.i)) {
    const m = Membership.fromWire(w.i[1]);
    if (m !== undefined && Number.isSafeInteger(w.i[0])) hs.installing = { index: w.i[0], membership: m };
  }
  return hs;
}
