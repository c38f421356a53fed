import { InvalidArgumentError } from '@consensus-kit/core';

/**
 * ZooKeeper transaction ids (Junqueira, Reed, Serafini, DSN 2011, section III-A; Medeiros 2012, section 2):
 * zxid = (epoch, counter), compared lexicographically. Mapped onto the log as (term, index): an entry's `term`
 * is the epoch of the primary that proposed it, and its counter is its index minus the index the epoch started
 * after (the primary's initial history), so the first proposal of an epoch has counter 1 and NEWLEADER is
 * (epoch, 0). Since indexes are contiguous and epochs never decrease along a log, comparing (term, index)
 * orders zxids exactly as comparing (epoch, counter) does.
 */
export interface Zxid {
  epoch: number;
  counter: number;
}

/** ZooKeeper packs a zxid into 64 bits, epoch high, counter low (ZxidUtils): exported as a bigint, no precision loss. */
export function zxidToBigInt(z: Zxid): bigint {
  if (!Number.isSafeInteger(z.epoch) || z.epoch < 0 || z.epoch > 0xffffffff) throw new InvalidArgumentError(`zxid epoch out of range: ${z.epoch}`);
  if (!Number.isSafeInteger(z.counter) || z.counter < 0 || z.counter > 0xffffffff) throw new InvalidArgumentError(`zxid counter out of range: ${z.counter}`);
  return (BigInt(z.epoch) << 32n) | BigInt(z.counter);
}

export function zxidFromBigInt(v: bigint): Zxid {
  if (v < 0n || v > 0xffffffffffffffffn) throw new InvalidArgumentError(`zxid out of range: ${v}`);
  return { epoch: Number(v >> 32n), counter: Number(v & 0xffffffffn) };
}

/** `0x<epoch>_<counter>` in hex, as ZooKeeper's logs print them (epoch and counter apart, whatever their size). */
export function describeZxid(z: Zxid): string {
  return `0x${z.epoch.toString(16)}_${z.counter.toString(16)}`;
}

/** A log position (term, index): how zxids are compared here (see above). */
export interface LogPosition {
  term: number;
  index: number;
}

/** Lexicographic order on (term, index), i.e. on zxids. */
export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.term !== b.term ? a.term - b.term : a.index - b.index;
}

/**
 * The state summary a prospective leader compares (ZooKeeper's StateSummary; DSN 2011 section IV-B, Phase 1: the
 * "most up-to-date" history is the one with the highest currentEpoch, then the highest last zxid).
 */
export interface StateSummary {
  currentEpoch: number;
  last: LogPosition;
}

export function compareSummaries(a: StateSummary, b: StateSummary): number {
  return a.currentEpoch !== b.currentEpoch ? a.currentEpoch - b.currentEpoch : comparePositions(a.last, b.last);
}
