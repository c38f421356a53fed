import type { History, HistoryOp, KvInput } from './history';
import { kvStep } from './kv-state-machine';
import { Rng } from './rng';

/** Settings of a generated KV history (for the checker's bench and differential tests). */
export interface GenerateOptions {
  seed: number;
  /** Operations in the history. */
  ops: number;
  /** Register keys (put/get/cas) `k0..`; default 4. */
  keys?: number;
  /** List keys (append/get) `l0..`; default 1. */
  listKeys?: number;
  /** Concurrent clients, one op outstanding each; default 8. */
  clients?: number;
  /** Fraction of ops recorded as indeterminate (`info`); default 0.2. */
  indeterminate?: number;
  /** Longest op duration in time units; default 30. */
  maxDuration?: number;
}

/**
 * A linearizable KV history drawn from `seed`: clients issue put / get / cas / append on a few keys, each op
 * takes effect at a point inside its [invoke, complete] window (the truth order) and the outputs are what the
 * KV model gives in that order. An indeterminate op takes effect at a point after its invocation (possibly
 * after its nominal end), or never, and is recorded without an output. Values are unique per op (`v<id>`).
 */
export function generateHistory(o: GenerateOptions): History {
  const rng = new Rng(o.seed >>> 0);
  const keys = Array.from({ length: o.keys ?? 4 }, (_, i) => `k${i}`);
  const listKeys = Array.from({ length: o.listKeys ?? 1 }, (_, i) => `l${i}`);
  const clients = o.clients ?? 8;
  const pInfo = o.indeterminate ?? 0.2;
  const maxDuration = o.maxDuration ?? 30;
  const busy = new Array<number>(clients).fill(0);
  const lastSeen = new Map<string, string | null>();
  const effects: { at: number; op: HistoryOp }[] = [];
  const history: History = [];
  for (let id = 0; id < o.ops; id++) {
    const client = id % clients;
    const invoke = (busy[client] as number) + rng.int(0, 4);
    const complete = invoke + 1 + rng.int(0, maxDuration - 1);
    busy[client] = complete + 1;
    const list = listKeys.length > 0 && (keys.length === 0 || rng.chance(listKeys.length / (keys.length + listKeys.length)));
    const key = list ? rng.pick(listKeys) : rng.pick(keys);
    const kind = rng.next();
    let input: KvInput;
    if (kind < 0.4) input = { f: 'get', key };
    else if (list) input = { f: 'append', key, value: `v${id}` };
    else if (kind < 0.75) input = { f: 'put', key, value: `v${id}` };
    else input = { f: 'cas', key, from: lastSeen.get(`${client}/${key}`) ?? null, to: `v${id}` };
    const info = rng.chance(pInfo);
    const op: HistoryOp = { id, client, input, invoke, status: info ? 'info' : 'ok' };
    if (!info) op.complete = complete;
    history.push(op);
    // Ties broken by id so the truth order is a total order. An indeterminate op lands late or never.
    if (!info) effects.push({ at: invoke + rng.next() * (complete - invoke), op });
    else if (rng.chance(0.5)) effects.push({ at: invoke + rng.next() * maxDuration * 4, op });
    if (!info && input.f !== 'get') lastSeen.set(`${client}/${key}`, input.f === 'append' ? null : input.f === 'put' ? input.value : input.to);
  }
  effects.sort((a, b) => a.at - b.at || a.op.id - b.op.id);
  const state = new Map<string, string>();
  for (const { op } of effects) {
    const { next, output } = kvStep(state.get(op.input.key), op.input);
    if (next === undefined) state.delete(op.input.key);
    else state.set(op.input.key, next);
    if (op.status === 'ok') op.output = output;
  }
  return history;
}

/**
 * The same history with one injected violation: a completed read of a register key that returns a value
 * overwritten before it began (the value's writer completed, then another write of that key began after it
 * and completed before the read was invoked; values are unique, so no order explains it). `undefined` when
 * the history has no such read. The victim is chosen from `seed`, so a violation can sit on any key.
 */
export function injectStaleRead(history: History, seed: number): { history: History; victim: number } | undefined {
  const rng = new Rng((seed ^ 0x51ea) >>> 0);
  const writes = history.filter((op) => op.status === 'ok' && (op.input.f === 'put' || (op.input.f === 'cas' && op.output !== undefined && 'swapped' in op.output && op.output.swapped)));
  const candidates: { read: HistoryOp; value: string }[] = [];
  for (const read of history) {
    if (read.status !== 'ok' || read.input.f !== 'get' || read.input.key.startsWith('l')) continue;
    const key = read.input.key;
    // A write w1 and a later write w2 (invoked after w1 completed), both completed before the read began.
    for (const w1 of writes) {
      if (w1.input.key !== key || (w1.complete as number) >= read.invoke) continue;
      const w2 = writes.find((w) => w.input.key === key && w.invoke > (w1.complete as number) && (w.complete as number) < read.invoke);
      if (w2 === undefined) continue;
      const value = w1.input.f === 'put' ? w1.input.value : w1.input.f === 'cas' ? w1.input.to : '';
      candidates.push({ read, value });
      break;
    }
  }
  if (candidates.length === 0) return undefined;
  const pick = rng.pick(candidates);
  const out = history.map((op) => (op === pick.read ? { ...op, output: { value: pick.value } } : op));
  return { history: out, victim: pick.read.id };
}
