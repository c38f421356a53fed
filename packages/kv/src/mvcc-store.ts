import BTreeModule, * as sortedBTree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad.js';
import { InvariantError } from '@consensus-kit/core';
import type { KeyValue, KvValue } from './commands';
import { FutureRevisionError, RevisionCompactedError } from './errors';

// sorted-btree is CommonJS with `exports.default`: Node's ES module loader hands over the exports object,
// bundlers and vitest the class itself.
const BTree = ((BTreeModule as unknown as { default?: typeof BTreeModule }).default ?? BTreeModule) as typeof BTreeModule;
type KeyIndex<V = undefined> = InstanceType<typeof BTree<string, V>>;
/** sorted-btree's default node size. */
const NODE_SIZE = 32;

/**
 * sorted-btree's node classes, which its own `bulkLoad` builds a tree from (exported, not in its typings): an
 * incremental restore builds the leaves a slice at a time with them (`KeyIndexBuilder`). Node's ES module loader
 * puts them on the module object (`default`), bundlers and vitest on the namespace.
 */
interface BTreeNode {
  maxKey(): string;
}
interface BTreeNodes {
  BNode: new (keys: string[], values: unknown[]) => BTreeNode;
  BNodeInternal: new (children: BTreeNode[], size: number) => BTreeNode;
}
const nodes = (): BTreeNodes => {
  const ns = sortedBTree as unknown as Partial<BTreeNodes> & { default?: Partial<BTreeNodes> };
  const BNode = ns.BNode ?? ns.default?.BNode;
  const BNodeInternal = ns.BNodeInternal ?? ns.default?.BNodeInternal;
  if (BNode === undefined || BNodeInternal === undefined) throw new InvariantError('sorted-btree no longer exports BNode and BNodeInternal');
  return { BNode, BNodeInternal };
};
/** Keys per leaf (and children per inner node) of a tree built bottom-up: 80% of NODE_SIZE, as `bulkLoad`. */
const FILL = Math.ceil(NODE_SIZE * 0.8);

/**
 * Builds a key index bottom-up from keys already in strictly ascending order, whose count is known up front,
 * while they arrive: `advance(read)` makes every leaf whose keys are all read, so the tree of a million keys is
 * not built in one turn of the event loop; `finish()` adds the inner levels (a thirtieth of the leaves) and
 * returns the tree. The shape is `bulkLoad`'s: nodes filled evenly, none below half full except the root.
 */
export class KeyIndexBuilder {
  private readonly leafCount: number;
  private readonly level: BTreeNode[] = [];
  private readonly n: ReturnType<typeof nodes>;

  /** `values`: each key's version, kept in the leaves; undefined when a map of the versions is built beside it. */
  constructor(
    private readonly keys: string[],
    private readonly values: (KeyValue | undefined)[] | undefined,
  ) {
    const count = keys.length;
    this.leafCount = count === 0 ? 0 : count <= NODE_SIZE ? 1 : Math.ceil(count / FILL);
    this.n = nodes();
  }

  /** Keys [0, read) are in place: makes the leaves they complete. */
  advance(read: number): void {
    const { keys, values, leafCount } = this;
    const count = keys.length;
    for (let i = this.level.length; i < leafCount; i++) {
      // Leaf i holds keys [floor(i * count / leafCount), floor((i + 1) * count / leafCount)).
      const to = Math.floor(((i + 1) * count) / leafCount);
      if (to > read) break;
      const from = Math.floor((i * count) / leafCount);
      // Without values, a leaf shares sorted-btree's one array of undefined values.
      this.level.push(new this.n.BNode(keys.slice(from, to), values === undefined ? (undefined as unknown as unknown[]) : values.slice(from, to)));
    }
  }

  finish(): KeyIndex<KeyValue | undefined> {
    this.advance(this.keys.length);
    const tree = new BTree<string, KeyValue | undefined>(undefined, compareKeys, NODE_SIZE);
    let level = this.level;
    let sizes = level.map((_, i) => Math.floor(((i + 1) * this.keys.length) / this.leafCount) - Math.floor((i * this.keys.length) / this.leafCount));
    while (level.length > 1) {
      // Parents of up to NODE_SIZE children, evenly filled: more than 32 children give each parent at least 16.
      const parents = level.length <= NODE_SIZE ? 1 : Math.ceil(level.length / FILL);
      const next: BTreeNode[] = [];
      const nextSizes: number[] = [];
      for (let p = 0; p < parents; p++) {
        const from = Math.floor((p * level.length) / parents);
        const to = Math.floor(((p + 1) * level.length) / parents);
        let size = 0;
        for (let c = from; c < to; c++) size += sizes[c] as number;
        next.push(new this.n.BNodeInternal(level.slice(from, to), size));
        nextSizes.push(size);
      }
      level = next;
      sizes = nextSizes;
    }
    // What `bulkLoad` does with the root it built.
    if (level[0] !== undefined) (tree as unknown as { _root: BTreeNode })._root = level[0];
    return tree;
  }
}

/** Code-unit order, the same on every platform (no locale). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function newKeyIndex<V = undefined>(): KeyIndex<V> {
  return new BTree<string, V>(undefined, compareKeys);
}

/** A deletion in a key's history: from `modRevision` on, the key is absent (until it is put again). */
export interface Tombstone {
  key: string;
  modRevision: number;
  tombstone: true;
}

/** One entry of a key's history: a version, or its deletion. */
export type KeyRecord = KeyValue | Tombstone;

const isTombstone = (r: KeyRecord): r is Tombstone => (r as Tombstone).tombstone === true;

/**
 * The superseded records of one key, oldest first: `recs[head..]` are live history, below `head` is garbage
 * not yet cut off (so a compaction that drops one record is O(1), not a copy of the array).
 */
interface History {
  recs: KeyRecord[];
  head: number;
}

/**
 * A key's history: its one superseded record as is (the common case, a key overwritten once within the
 * retention, costs no array), or a `History` once it has two or more.
 */
export type Past = KeyRecord | History;

const isHistory = (p: Past): p is History => (p as History).recs !== undefined;

/**
 * The history of a store being restored, built a key at a time as an incremental restore reads it (what
 * `MvccStore.restore` builds from `MvccSnapshot.past` otherwise): `add` each key with retained history, in key
 * order, saying whether the key is live.
 */
export class HistoryBuilder {
  readonly past = new Map<string, Past>();
  readonly dead: KeyIndex = newKeyIndex();

  add(key: string, recs: KeyRecord[], live: boolean): void {
    if (recs.length === 0) return;
    this.past.set(key, recs.length === 1 ? (recs[0] as KeyRecord) : { recs, head: 0 });
    if (!live) this.dead.set(key, undefined);
  }
}

/** The snapshot form of the store (see `KvStateMachine.snapshot`). */
export interface MvccSnapshot {
  revision: number;
  compactRevision: number;
  /** Every live key, in key order. */
  kvs: KeyValue[];
  /** Every key with retained history: its superseded versions and tombstones, oldest first; in key order. */
  past: [key: string, recs: KeyRecord[]][];
  /** The change log above the compaction revision: changeRevisions[i] is when changeKeys[i] was written. */
  changeRevisions: number[];
  changeKeys: string[];
}

/** One change of the store, as a watch will deliver it (etcd's mvccpb.Event). */
export type KvEvent =
  | { type: 'put'; revision: number; kv: KeyValue; prev?: KeyValue }
  | { type: 'delete'; revision: number; key: string; prev?: KeyValue };

/**
 * A multi-version key-value store, the shape of etcd's mvcc (a key index of generations over a revision-keyed
 * store): the current version of every key, plus the versions it replaced and its deletions back to the
 * compaction revision, so a read at any revision from there to now sees the store exactly as it was.
 *
 * Writes are given their revision by the caller, so every write of a transaction shares one. Compaction cuts,
 * for each key, everything older than the last record at or below the compaction revision (and that record
 * too when it is a deletion). The change log, (revision, key) pairs in the order the writes were applied (a
 * transaction's in op order), says which keys a compaction has to look at, so a compaction costs what it
 * frees, never a
 * scan of every key, so compacting at every write (automatic retention) is cheap.
 */
export class MvccStore {
  /**
   * The current version of every live key written since the last restore. A key restored from a snapshot and not
   * written since is not here but in `liveKeys`' values (see `fromTree`): a restore builds no hash map of a
   * million keys (that was over 40% of restoring 1,000,000 keys), a key enters this map when it is first written.
   */
  private live = new Map<string, KeyValue>();
  /**
   * Every live key, in order, for prefix ranges: a B+ tree, so adding or removing a key costs O(log n). (A sorted
   * array cost a copy of the whole array per new key: 1.2 ms of apply per put on every replica at 800,000 keys.)
   * Its value is the key's current version for a key restored and not written since (`live` lacks it), else
   * stale or undefined: `current` reads `live` first.
   */
  private liveKeys: KeyIndex<KeyValue | undefined> = newKeyIndex<KeyValue | undefined>();
  /** Whether `liveKeys` holds restored versions (after a sorted restore): a key not in `live` is looked up there. */
  private fromTree = false;
  /** How many keys are live. */
  private liveCount = 0;
  /** Keys with retained history (only those: a key written once costs nothing here). */
  private past = new Map<string, Past>();
  /**
   * Keys with retained history and no current version (deleted, their deletion not yet compacted), in order:
   * with `liveKeys`, every key a read at a past revision may find. Only deletions and compaction touch it, so
   * an overwrite costs no tree update.
   */
  private deadKeys: KeyIndex = newKeyIndex();
  /**
   * The change log: changeRevs[i] is the revision at which changeKeys[i] was written (put or deleted), in the
   * order writes were applied, from changeHead on; entries at or below the compaction revision are cut. It
   * drives compaction (a write supersedes the key's previous record) and replays changes in revision order
   * (`changes`, what a watch from a past revision needs).
   */
  private changeRevs: number[] = [];
  private changeKeys: string[] = [];
  private changeHead = 0;
  /** The store revision: the revision of the last write. */
  revision = 0;
  /** Reads below this revision fail: their history is gone. 0 until the first compaction. */
  compactRevision = 0;
  /**
   * Snapshots in progress (`hold`). While one runs, a compaction moves `compactRevision` (what every read and
   * every snapshot sees) but frees nothing: the snapshot still walks the history it began with. Reads at or
   * above `compactRevision` are answered the same either way (that is what compaction promises), so the store
   * a client sees, and every snapshot's bytes, do not depend on when the memory is freed.
   */
  private holds = 0;
  /**
   * UTF-16 code units of every live key and string value, plus the bytes of byte values: what a snapshot's text
   * holds for an ASCII store, so it can size its buffer before it walks. Not state (never in a snapshot).
   */
  liveChars = 0;
  /** After a hold: change-log entries at or below `compactRevision` still to trim, a few per compaction. */
  private backlog = false;

  get size(): number {
    return this.liveCount;
  }

  /** The current version of `key`, or undefined if it is not live. */
  private current(key: string): KeyValue | undefined {
    const kv = this.live.get(key);
    if (kv !== undefined || !this.fromTree) return kv;
    return this.liveKeys.get(key);
  }

  /** Keys with retained history, for tests and metrics. */
  get historyKeys(): number {
    return this.past.size;
  }

  /** Throws etcd's ErrCompacted or ErrFutureRev for a revision that cannot be read. */
  checkReadable(revision: number): void {
    if (revision > this.revision) throw new FutureRevisionError(revision, this.revision);
    if (revision < this.compactRevision) throw new RevisionCompactedError(revision, this.compactRevision);
  }

  /** The key at `revision` (absent or 0: now). The revision must be readable (`checkReadable`). */
  get(key: string, revision?: number): KeyValue | undefined {
    const cur = this.current(key);
    if (revision === undefined || revision === 0 || revision >= this.revision) return cur;
    if (cur !== undefined && cur.modRevision <= revision) return cur;
    const p = this.past.get(key);
    if (p === undefined) return undefined;
    let r: KeyRecord | undefined;
    if (isHistory(p)) {
      const i = lastAtOrBelow(p, revision);
      r = i < 0 ? undefined : p.recs[i];
    } else r = p.modRevision <= revision ? p : undefined;
    return r === undefined || isTombstone(r) ? undefined : r;
  }

  /**
   * Keys starting with `prefix` at `revision` (absent or 0: now), in key order (UTF-16 code units), at most
   * `limit`, starting past `after` when given.
   */
  range(prefix: string, limit = Number.POSITIVE_INFINITY, after?: string, revision?: number): KeyValue[] {
    const out: KeyValue[] = [];
    if (limit <= 0) return out;
    const from = after !== undefined && after >= prefix ? after : prefix;
    if (revision === undefined || revision === 0 || revision >= this.revision) {
      for (const [k, restored] of this.liveKeys.entries(from)) {
        if (k === after) continue;
        if (!k.startsWith(prefix)) break;
        out.push((this.live.get(k) ?? restored) as KeyValue);
        if (out.length >= limit) break;
      }
      return out;
    }
    // A past revision: the keys live now and the deleted keys with history, merged in order.
    const a = this.liveKeys.keys(from);
    const b = this.deadKeys.keys(from);
    let x = a.next();
    let y = b.next();
    while (!x.done || !y.done) {
      let k: string;
      if (y.done || (!x.done && x.value < y.value)) {
        k = x.value as string;
        x = a.next();
      } else if (x.done || y.value < x.value) {
        k = y.value;
        y = b.next();
      } else {
        k = x.value;
        x = a.next();
        y = b.next();
      }
      if (k === after) continue;
      if (!k.startsWith(prefix)) break;
      const kv = this.get(k, revision);
      if (kv === undefined) continue;
      out.push(kv);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Writes `key` at `revision` (>= the store's); returns the version it replaced. */
  put(key: string, value: KvValue, revision: number, lease = 0): KeyValue | undefined {
    let prev = this.live.get(key);
    // An overwrite of a key in the map: the key's string the map already holds serves the new version too, so
    // the command's copy is garbage at once instead of a second string kept per key (and promoted per put). The
    // first write of a key `restore()` left in the tree only keeps the command's copy: the tree's own may be a
    // slice of the snapshot's text, and the tree takes the command's copy in its place below.
    if (prev !== undefined) key = prev.key;
    else if (this.fromTree) {
      // A restored key's first write: its version moves out of the tree (which would keep it alive otherwise).
      prev = this.liveKeys.get(key);
      if (prev !== undefined) this.liveKeys.set(key, undefined);
    }
    if (prev === undefined) {
      this.liveKeys.set(key, undefined);
      this.liveCount++;
      if (this.past.has(key)) this.deadKeys.delete(key);
    } else this.remember(prev);
    this.liveChars += key.length + value.length - (prev === undefined ? 0 : prev.key.length + prev.value.length);
    this.live.set(key, {
      key,
      value,
      createRevision: prev?.createRevision ?? revision,
      modRevision: revision,
      version: (prev?.version ?? 0) + 1,
      lease,
    });
    this.logChange(key, revision);
    this.revision = revision;
    return prev;
  }

  /** Deletes `key` at `revision`; returns the version deleted (undefined, and no change, if it was absent). */
  delete(key: string, revision: number): KeyValue | undefined {
    const prev = this.current(key);
    if (prev === undefined) return undefined;
    this.live.delete(key);
    this.liveCount--;
    this.liveChars -= prev.key.length + prev.value.length;
    this.liveKeys.delete(key);
    this.remember(prev);
    this.remember({ key, modRevision: revision, tombstone: true });
    this.deadKeys.set(key, undefined);
    this.logChange(key, revision);
    this.revision = revision;
    return prev;
  }

  /** Appends `r` to its key's history (its modRevision is the newest there). */
  private remember(r: KeyRecord): void {
    const p = this.past.get(r.key);
    if (p === undefined) this.past.set(r.key, r);
    else if (isHistory(p)) p.recs.push(r);
    else this.past.set(r.key, { recs: [p, r], head: 0 });
  }

  private logChange(key: string, revision: number): void {
    this.changeRevs.push(revision);
    this.changeKeys.push(key);
  }

  /**
   * The changes made at `from` and after, in the order they were applied (revision order; a transaction's in op
   * order), at most `limit`: what a watch from a past revision replays. `prev` is the key before the change.
   * Changes at or below the compaction revision are gone: `from` must be above it (read the store at the
   * compaction revision, then replay from the next one, as etcd clients do); else `RevisionCompactedError`.
   */
  changes(from: number, limit = Number.POSITIVE_INFINITY): KvEvent[] {
    if (from <= this.compactRevision && this.compactRevision > 0) throw new RevisionCompactedError(from, this.compactRevision + 1);
    const out: KvEvent[] = [];
    const revs = this.changeRevs;
    let lo = this.changeHead;
    let hi = revs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((revs[mid] as number) < from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < revs.length && out.length < limit; i++) {
      const revision = revs[i] as number;
      const key = this.changeKeys[i] as string;
      const kv = this.get(key, revision);
      const prev = revision > 1 ? this.get(key, revision - 1) : undefined; // get(key, 0) would read now
      const base = prev === undefined ? {} : { prev };
      out.push(kv !== undefined && kv.modRevision === revision ? { type: 'put', revision, kv, ...base } : { type: 'delete', revision, key, ...base });
    }
    return out;
  }

  /**
   * Forgets the history before `revision` (etcd's compact): afterwards every read at `revision` or later is
   * answered as before, every read below it fails with `RevisionCompactedError`. The caller checked that
   * `compactRevision < revision <= this.revision`.
   */
  compact(revision: number): void {
    this.compactRevision = revision;
    if (this.holds > 0) return;
    // A backlog left by a snapshot is freed a slice per compaction, not in one stall.
    this.trimLog(this.backlog ? TRIM_BACKLOG_SLICE : Number.POSITIVE_INFINITY);
  }

  /**
   * Frees the history `compactRevision` no longer lets anyone read, for at most `budget` change-log entries:
   * each entry at or below it names a key whose older records go.
   */
  private trimLog(budget: number): void {
    const revision = this.compactRevision;
    const revs = this.changeRevs;
    const keys = this.changeKeys;
    let i = this.changeHead;
    while (i < revs.length && (revs[i] as number) <= revision && budget-- > 0) {
      this.trim(keys[i] as string, revision);
      i++;
    }
    this.backlog = i < revs.length && (revs[i] as number) <= revision;
    if (i > 1024 && i * 2 > revs.length) {
      this.changeRevs = revs.slice(i);
      this.changeKeys = keys.slice(i);
      i = 0;
    }
    this.changeHead = i;
  }

  /**
   * Holds the freeing of history while a snapshot walks the store (see `holds`); returns the release (safe to
   * call twice). Once nothing holds it, what compaction left is freed a slice per later compaction.
   */
  hold(): () => void {
    this.holds++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--this.holds === 0) this.backlog = this.changeHead < this.changeRevs.length && (this.changeRevs[this.changeHead] as number) <= this.compactRevision;
    };
  }

  /** Drops what a read at `revision` or later can no longer see of `key`'s history. */
  private trim(key: string, revision: number): void {
    const p = this.past.get(key);
    if (p === undefined) return;
    const cur = this.current(key);
    if (!isHistory(p)) {
      // One record: it goes once the current version is at or below `revision`, or once it is a deletion there.
      if ((cur !== undefined && cur.modRevision <= revision) || (isTombstone(p) && p.modRevision <= revision)) {
        this.past.delete(key);
        if (cur === undefined) this.deadKeys.delete(key);
      }
      return;
    }
    const h = p;
    let drop: number;
    if (cur !== undefined && cur.modRevision <= revision) drop = h.recs.length;
    else {
      const last = lastAtOrBelow(h, revision);
      if (last < 0) return;
      // recs[last] is what a read at `revision` sees: older records go; a deletion goes too (absent = no record).
      drop = isTombstone(h.recs[last] as KeyRecord) ? last + 1 : last;
    }
    if (drop >= h.recs.length) {
      this.past.delete(key);
      if (cur === undefined) this.deadKeys.delete(key);
      return;
    }
    for (let j = h.head; j < drop; j++) h.recs[j] = undefined as unknown as KeyRecord; // let the values go now
    h.head = Math.max(h.head, drop);
    if (h.head > 32 && h.head * 2 > h.recs.length) {
      h.recs = h.recs.slice(h.head);
      h.head = 0;
    }
  }

  /**
   * A walk of the store as it is now (revision R, compaction revision C), in key order, a slice at a time: the
   * writes applied between slices do not show. It reads the history (each key's records up to R, as a read at
   * R does) and cuts it as a compaction at C would have, so the result does not depend on when history was
   * freed. The caller holds compaction (`hold`) for as long as it walks.
   */
  openCursor(): StoreCursor {
    const R = this.revision;
    const C = this.compactRevision;
    // The change log above C (entries at or below it may wait for a backlog to be freed).
    let lo = this.changeHead;
    let hi = this.changeRevs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.changeRevs[mid] as number) <= C) lo = mid + 1;
      else hi = mid;
    }
    const changeRevisions = this.changeRevs.slice(lo);
    const changeKeys = this.changeKeys.slice(lo);
    let after: string | undefined;
    let done = false;
    const liveBatch: string[] = [];
    /** The key index's values beside `liveBatch`: a restored key's version, read in the same pass as its key. */
    const liveValues: (KeyValue | undefined)[] = [];
    const deadBatch: string[] = [];
    return {
      revision: R,
      compactRevision: C,
      liveCount: this.liveCount,
      changeRevisions,
      changeKeys,
      next: (budget, onLive, onPast, full) => {
        if (done) return true;
        // The next keys of both trees after the last key walked (they may have changed since), without an
        // iterator object per key: a slice of a large store allocates little (less for GC to mark meanwhile).
        const liveN = collectAfter(this.liveKeys, after, budget, liveBatch, liveValues);
        const deadN = collectAfter(this.deadKeys, after, budget, deadBatch);
        let i = 0;
        let j = 0;
        let taken = 0;
        while (taken < budget && (i < liveN || j < deadN)) {
          let k: string;
          let restored: KeyValue | undefined;
          const x = i < liveN ? liveBatch[i] : undefined;
          const y = j < deadN ? deadBatch[j] : undefined;
          if (y === undefined || (x !== undefined && x < y)) {
            k = x as string;
            restored = liveValues[i];
            i++;
          } else if (x === undefined || y < x) {
            k = y;
            j++;
          } else {
            k = x;
            restored = liveValues[i];
            i++;
            j++;
          }
          after = k;
          taken++;
          this.walkKey(k, restored, R, C, onLive, onPast);
          // The caller's other bound (bytes written, say) was reached: the rest of the batch waits for the next call.
          if (taken < budget && full?.() === true) return false;
        }
        // Fewer than asked: both trees had nothing more past `after`.
        if (taken < budget) done = true;
        return done;
      },
    };
  }

  /**
   * One key as of revision R with history cut at C (the rule of `trim`): its live version and its history.
   * `restored`: the key index's value for it (what `current` would look up in the tree a second time).
   */
  private walkKey(key: string, restored: KeyValue | undefined, R: number, C: number, onLive: (kv: KeyValue) => void, onPast: (key: string, recs: KeyRecord[]) => void): void {
    const cur = this.live.get(key) ?? (this.fromTree ? restored : undefined);
    const p = this.past.get(key);
    if (p === undefined) {
      if (cur !== undefined && cur.modRevision <= R) onLive(cur);
      return;
    }
    const recs = isHistory(p) ? p.recs.slice(p.head) : [p];
    if (cur !== undefined) recs.push(cur);
    let end = recs.length;
    while (end > 0 && (recs[end - 1] as KeyRecord).modRevision > R) end--;
    if (end === 0) return;
    const last = recs[end - 1] as KeyRecord;
    const atR = isTombstone(last) ? undefined : last;
    let past = recs.slice(0, atR === undefined ? end : end - 1);
    if (atR !== undefined && atR.modRevision <= C) past = [];
    else {
      let j = past.length - 1;
      while (j >= 0 && (past[j] as KeyRecord).modRevision > C) j--;
      if (j >= 0) past = past.slice(isTombstone(past[j] as KeyRecord) ? j + 1 : j);
    }
    if (atR !== undefined) onLive(atR);
    if (past.length > 0) onPast(key, past);
  }

  /**
   * Replaces the whole store with a snapshot's. `inOrder`: the caller checked that the keys are in strictly
   * ascending order; `keys`: the snapshot's keys in that order, when the caller has them; `chars`: their
   * `liveChars`, when the caller counted it; `index`: the key index of those keys and versions, when the caller
   * built it (`KeyIndexBuilder`); `live`: every version by key, when the caller built that map too (then `index`
   * holds no values).
   */
  restore(s: MvccSnapshot, inOrder = false, keys?: string[], chars?: number, index?: KeyIndex<KeyValue | undefined>, live?: Map<string, KeyValue>, history?: HistoryBuilder): void {
    this.live = live ?? new Map();
    this.past = new Map();
    let sorted = inOrder;
    if (!inOrder || chars === undefined) {
      sorted = true;
      let c = 0;
      for (let i = 0; i < s.kvs.length; i++) {
        const kv = s.kvs[i] as KeyValue;
        c += kv.key.length + kv.value.length;
        if (!inOrder && i > 0 && !((s.kvs[i - 1] as KeyValue).key < kv.key)) sorted = false;
      }
      chars = c;
    }
    this.liveCount = s.kvs.length;
    if (sorted) {
      // Keys in order (every snapshot writes them so): the tree is built bottom-up, not by a million inserts, and
      // holds each key's version: no hash map is built (`live` fills as keys are written).
      this.liveKeys =
        index ??
        bulkLoad<string, KeyValue | undefined>(
          keys ?? s.kvs.map((kv) => kv.key),
          s.kvs,
          NODE_SIZE,
          compareKeys,
        );
      // With the map of every version built by the caller (`live`), the tree holds keys only.
      this.fromTree = live === undefined;
    } else {
      this.liveKeys = newKeyIndex<KeyValue | undefined>();
      this.fromTree = false;
      for (const kv of s.kvs) {
        this.live.set(kv.key, kv);
        this.liveKeys.set(kv.key, undefined);
      }
      this.liveCount = this.live.size;
    }
    this.deadKeys = newKeyIndex();
    if (history !== undefined) {
      // Built by the caller as it read the history, a slice at a time (`s.past` is not read).
      this.past = history.past;
      this.deadKeys = history.dead;
    } else {
      for (const [key, recs] of s.past) {
        if (recs.length === 0) continue;
        this.past.set(key, recs.length === 1 ? (recs[0] as KeyRecord) : { recs, head: 0 });
        if (!this.liveKeys.has(key)) this.deadKeys.set(key, undefined);
      }
    }
    this.changeRevs = s.changeRevisions.slice();
    this.changeKeys = s.changeKeys.slice();
    this.changeHead = 0;
    this.backlog = false;
    this.liveChars = chars;
    this.revision = s.revision;
    this.compactRevision = s.compactRevision;
  }
}

/** A walk of the store at one revision (`MvccStore.openCursor`). */
export interface StoreCursor {
  /** The revision walked, and the compaction revision its history is cut at. */
  readonly revision: number;
  readonly compactRevision: number;
  /** How many keys were live at that revision. */
  readonly liveCount: number;
  /** The change log above the compaction revision, up to the revision walked. */
  readonly changeRevisions: number[];
  readonly changeKeys: string[];
  /**
   * Walks up to `budget` more keys in order, calling `onLive` for each key live at the revision and `onPast`
   * for each key with history, and stopping early after a key once `full` (when given) returns true; true once
   * every key was walked.
   */
  next(budget: number, onLive: (kv: KeyValue) => void, onPast: (key: string, recs: KeyRecord[]) => void, full?: () => boolean): boolean;
}

/**
 * Fills `out` with the first `n` keys of `tree` after `after` (all keys when it is undefined), in order, and
 * `values` (when given) with their values.
 */
/**
 * Puts the first `n` keys of `tree` after `after` in `out[0..]` (and their values in `values[0..]`); returns how
 * many. The arrays are reused from one call to the next and never shortened: emptying one (`length = 0`) drops
 * its backing store, and growing it back was half the garbage a snapshot of a large store made (34 of 62 MB for
 * 1,000,000 keys). What lies past the count is left over from an earlier call.
 */
function collectAfter<V>(tree: KeyIndex<V>, after: string | undefined, n: number, out: string[], values?: V[]): number {
  const high = tree.maxKey();
  if (high === undefined) return 0;
  let count = 0;
  // forRange stops at a `{ break }` from its callback (its typing says void): no iterator objects per key.
  const onFound = ((k: string, v: V) => {
    if (k === after) return undefined;
    out[count] = k;
    if (values !== undefined) values[count] = v;
    count++;
    return count >= n ? STOP : undefined;
  }) as unknown as (k: string, v: V) => void;
  tree.forRange(after ?? '', high, true, onFound);
  return count;
}
const STOP = { break: true } as const;

/** Change-log entries a compaction frees at most while it catches up after a snapshot held it. */
const TRIM_BACKLOG_SLICE = 256;

/** Index in `h.recs` of the last record at or below `revision` (binary search over `recs[head..]`), or -1. */
function lastAtOrBelow(h: History, revision: number): number {
  let lo = h.head;
  let hi = h.recs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((h.recs[mid] as KeyRecord).modRevision <= revision) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
