import { describe, expect, it } from 'vitest';
import type { HistoryOp, KvInput, KvOutput } from './history';
import { checkLinearizability } from './linearizability';

let nextId = 0;
function op(client: number, input: KvInput, invoke: number, complete: number | undefined, output?: KvOutput): HistoryOp {
  const o: HistoryOp = { id: nextId++, client, input, invoke, status: complete === undefined ? 'info' : 'ok' };
  if (complete !== undefined) o.complete = complete;
  if (output !== undefined) o.output = output;
  return o;
}
const put = (c: number, key: string, value: string, a: number, b?: number) => op(c, { f: 'put', key, value }, a, b, b === undefined ? undefined : { ok: true });
const get = (c: number, key: string, value: string | null, a: number, b?: number) => op(c, { f: 'get', key }, a, b, b === undefined ? undefined : { value });
const cas = (c: number, key: string, from: string | null, to: string, swapped: boolean | undefined, a: number, b?: number) =>
  op(c, { f: 'cas', key, from, to }, a, b, swapped === undefined ? undefined : { swapped });
const append = (c: number, key: string, value: string, a: number, b?: number) => op(c, { f: 'append', key, value }, a, b, b === undefined ? undefined : { ok: true });
const ids = (h: HistoryOp[]) => h.map((o) => o.id).sort((x, y) => x - y);

describe('linearizable histories', () => {
  it('sequential put/get/cas', () => {
    const h = [put(0, 'x', 'a', 0, 10), get(1, 'x', 'a', 20, 30), cas(0, 'x', 'a', 'b', true, 40, 50), cas(1, 'x', 'a', 'c', false, 60, 70), get(2, 'x', 'b', 80, 90)];
    expect(checkLinearizability(h)).toEqual({ result: 'ok', checkedOps: 5, keys: 1 });
  });

  it('a read concurrent with a write may see either value', () => {
    const h = [put(0, 'x', 'a', 0, 10), put(1, 'x', 'b', 20, 60), get(2, 'x', 'a', 25, 30), get(3, 'x', 'b', 30, 40), get(2, 'x', 'b', 61, 70)];
    expect(checkLinearizability(h).result).toBe('ok');
  });

  it('reads order concurrent writes consistently (the later read decides)', () => {
    const h = [put(0, 'x', 'a', 0, 100), put(1, 'x', 'b', 0, 100), get(2, 'x', 'b', 10, 20), get(2, 'x', 'a', 30, 40)];
    expect(checkLinearizability(h).result).toBe('ok');
  });

  it('an indeterminate write may have happened...', () => {
    const h = [put(0, 'x', 'a', 0, 10), put(1, 'x', 'b', 20), get(2, 'x', 'b', 500, 510)];
    expect(checkLinearizability(h).result).toBe('ok');
  });

  it('...or not', () => {
    const h = [put(0, 'x', 'a', 0, 10), put(1, 'x', 'b', 20), get(2, 'x', 'a', 500, 510)];
    expect(checkLinearizability(h).result).toBe('ok');
  });

  it('appends: reads reveal one order of the appends', () => {
    const h = [append(0, 'l', 'a', 0, 50), append(1, 'l', 'b', 0, 50), get(2, 'l', 'b', 10, 20), get(2, 'l', 'b a', 60, 70), append(0, 'l', 'c', 80), get(1, 'l', 'b a', 90, 95)];
    expect(checkLinearizability(h).result).toBe('ok');
  });

  it('indeterminate reads are ignored and keys are checked independently', () => {
    const h = [put(0, 'x', 'a', 0, 10), get(1, 'x', null, 20), put(0, 'y', 'z', 0, 10), get(1, 'y', 'z', 20, 30)];
    expect(checkLinearizability(h)).toEqual({ result: 'ok', checkedOps: 3, keys: 2 });
  });
});

describe('non-linearizable histories, with the smallest failing sub-history', () => {
  it('stale read: a read after a completed write returns the old value', () => {
    const w1 = put(0, 'x', 'a', 0, 10);
    const w2 = put(0, 'x', 'b', 20, 30);
    const noise = [get(1, 'x', 'a', 12, 15), put(2, 'y', 'q', 0, 100)];
    const stale = get(1, 'x', 'a', 40, 50);
    const r = checkLinearizability([w1, ...noise, w2, stale]);
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(r.key).toBe('x');
    expect(ids(r.counterexample)).toEqual(ids([w1, w2, stale]));
  });

  it('lost write: an acknowledged write is never seen again', () => {
    const w = put(0, 'x', 'a', 0, 10);
    const reads = [get(1, 'x', 'a', 20, 30), get(2, 'x', 'a', 35, 40)];
    const lost = get(1, 'x', null, 50, 60);
    const r = checkLinearizability([w, ...reads, lost]);
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(ids(r.counterexample)).toEqual(ids([w, lost]));
  });

  it('cas double success: two swaps from the same value both succeed', () => {
    const init = put(0, 'x', 'a', 0, 10);
    const c1 = cas(1, 'x', 'a', 'b', true, 20, 40);
    const c2 = cas(2, 'x', 'a', 'c', true, 25, 45);
    const r = checkLinearizability([init, c1, c2, get(0, 'z', null, 0, 1)]);
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(ids(r.counterexample)).toEqual(ids([init, c1, c2]));
  });

  it('appends seen in two different orders', () => {
    const a = append(0, 'l', 'a', 0, 10);
    const b = append(1, 'l', 'b', 0, 10);
    const r1 = get(2, 'l', 'a b', 20, 30);
    const r2 = get(3, 'l', 'b a', 40, 50);
    const r = checkLinearizability([a, b, r1, r2]);
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(ids(r.counterexample)).toEqual(ids([a, b, r1, r2]));
  });

  it('a value nobody wrote', () => {
    const r = checkLinearizability([put(0, 'x', 'a', 0, 10), put(1, 'x', 'b', 5, 15), get(2, 'x', 'zzz', 20, 30)]);
    expect(r.result).toBe('illegal');
  });

  it('an indeterminate write cannot take effect before it was invoked', () => {
    const r = checkLinearizability([get(0, 'x', 'b', 0, 10), put(1, 'x', 'b', 20)]);
    expect(r.result).toBe('illegal');
  });
});

describe('scale', () => {
  it('checks a long, concurrent, linearizable history of a simulated register', () => {
    // Five clients on two keys; each op takes effect at a point inside its window (the "truth" order).
    let state: Record<string, string | undefined> = {};
    const h: HistoryOp[] = [];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const busy = [0, 0, 0, 0, 0];
    const events: { at: number; run: () => void }[] = [];
    for (let i = 0; i < 2000; i++) {
      const c = i % 5;
      const start = (busy[c] as number) + Math.floor(rnd() * 5);
      const end = start + 1 + Math.floor(rnd() * 20);
      busy[c] = end + 1;
      const effect = start + Math.floor(rnd() * (end - start));
      const key = rnd() < 0.5 ? 'a' : 'b';
      const o = op(c, { f: 'get', key }, start, end);
      const kind = rnd();
      if (kind < 0.4) o.input = { f: 'put', key, value: `v${i}` };
      events.push({
        at: effect * 10 + c,
        run: () => {
          if (o.input.f === 'put') {
            state[key] = o.input.value;
            o.output = { ok: true };
          } else o.output = { value: state[key] ?? null };
        },
      });
      h.push(o);
    }
    events.sort((x, y) => x.at - y.at).forEach((e) => e.run());
    state = {};
    const r = checkLinearizability(h);
    expect(r.result).toBe('ok');
    expect(r.checkedOps).toBe(2000);
  });
});
