import { describe, expect, it } from 'vitest';
import type { HistoryOp, KvInput, KvOutput } from './history';
import { kvStep } from './kv-state-machine';
import { generateHistory, injectStaleRead } from './lin-generate';
import { checkLinearizability } from './linearizability';
import { Rng } from './rng';

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

describe('every key is checked; illegal wins over unknown (issue #17, finding 3)', () => {
  it('an illegal key behind a key the search cannot decide is reported illegal', () => {
    // Four ops: key a (sorts first) needs more than 3 search steps, key b is plainly illegal (a value nobody wrote).
    const h = [put(0, 'a', '1', 0, 10), put(1, 'a', '2', 0, 10), get(2, 'a', '1', 0, 10), get(3, 'b', 'zzz', 0, 10)];
    const r = checkLinearizability(h, { maxSteps: 3 });
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(r.key).toBe('b');
  });

  it('unknown lists every undecided key and names the step limit when steps stopped it', () => {
    const h = [put(0, 'a', '1', 0, 10), put(1, 'a', '2', 0, 10), get(2, 'a', '1', 0, 10), put(3, 'b', '1', 0, 10), put(4, 'b', '2', 0, 10), get(5, 'b', '1', 0, 10)];
    const r = checkLinearizability(h, { maxSteps: 3 });
    expect(r.result).toBe('unknown');
    if (r.result !== 'unknown') return;
    expect(r.undecided).toEqual(['a', 'b']);
    expect(r.reason).toBe('key a: search exceeded 3 steps; key b: search exceeded 3 steps');
  });

  it('the reason names the memo cap when the memo cap stopped the search', () => {
    const h = [put(0, 'a', '1', 0, 10), put(1, 'a', '2', 0, 10), get(2, 'a', '1', 0, 10)];
    const r = checkLinearizability(h, { maxMemo: 1 });
    expect(r.result).toBe('unknown');
    if (r.result !== 'unknown') return;
    expect(r.reason).toBe('key a: search exceeded its memo cap of 1 configurations');
    expect(r.reason).not.toMatch(/steps/);
  });
});

/** Every value a counterexample's op saw is written by another op of the counterexample. */
function explained(ce: HistoryOp[]): boolean {
  const writes = (o: HistoryOp) => (o.input.f === 'put' || o.input.f === 'append' ? [o.input.value] : o.input.f === 'cas' ? [o.input.to] : []);
  return ce.every((o) => {
    if (o.status !== 'ok' || o.output === undefined) return true;
    let v: string | null = null;
    if (o.input.f === 'get' && 'value' in o.output) v = o.output.value;
    if (o.input.f === 'cas' && 'swapped' in o.output && o.output.swapped) v = o.input.from;
    if (v === null) return true;
    const others = ce.filter((w) => w !== o).flatMap(writes);
    return others.includes(v) || v.split(' ').every((t) => others.includes(t));
  });
}

describe('counterexamples keep their writers', () => {
  it('a cas from 2 to 2 is not its own writer', () => {
    const w2 = put(0, 'x', '2', 0, 10);
    const w3 = put(0, 'x', '3', 20, 30);
    const c = cas(1, 'x', '2', '2', true, 40, 50);
    const r = checkLinearizability([w2, w3, c]);
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(ids(r.counterexample)).toEqual(ids([w2, w3, c]));
    expect(explained(r.counterexample)).toBe(true);
  });

  it('a read of a list on a key with puts and appends keeps a writer of each element', () => {
    const a = put(0, 'l', 'a', 0, 10);
    const b = append(0, 'l', 'b', 20, 30);
    const c = append(0, 'l', 'c', 40, 50);
    const read = get(1, 'l', 'a c', 60, 70);
    const r = checkLinearizability([a, b, c, read]);
    expect(r.result).toBe('illegal');
    if (r.result !== 'illegal') return;
    expect(ids(r.counterexample)).toEqual(ids([a, b, c, read]));
    expect(explained(r.counterexample)).toBe(true);
  });
});

/**
 * The definition, by brute force: some order of the ops (indeterminate ones optional) that respects real time
 * (an op that completed before another was invoked comes first) and gives every completed op its output.
 */
function bruteForce(h: HistoryOp[]): boolean {
  const ops = h.filter((o) => !(o.status === 'info' && o.input.f === 'get'));
  const used = new Array<boolean>(ops.length).fill(false);
  const state = new Map<string, string>();
  const go = (left: number): boolean => {
    if (ops.every((o, i) => used[i] || o.status === 'info')) return true;
    if (left === 0) return false;
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i] as HistoryOp;
      if (used[i]) continue;
      // Every op not yet placed that completed before o was invoked would have to come first.
      if (ops.some((p, j) => !used[j] && p.status === 'ok' && (p.complete as number) < o.invoke)) continue;
      const before = state.get(o.input.key);
      const { next, output } = kvStep(before, o.input);
      if (o.status === 'ok' && JSON.stringify(output) !== JSON.stringify(o.output)) continue;
      used[i] = true;
      if (next === undefined) state.delete(o.input.key);
      else state.set(o.input.key, next);
      const found = go(left - 1);
      used[i] = false;
      if (before === undefined) state.delete(o.input.key);
      else state.set(o.input.key, before);
      if (found) return true;
    }
    return false;
  };
  return go(ops.length);
}

describe('agrees with the definition', () => {
  it.each([
    ['a register and a list', { keys: 1, listKeys: 1, clients: 3, indeterminate: 0.25 }],
    ['one register, many indeterminate writes', { keys: 1, listKeys: 0, clients: 4, indeterminate: 0.4 }],
  ])('same verdict as a brute-force search on 400 small random histories, legal and not: %s', (_, shape) => {
    const verdicts = { ok: 0, illegal: 0 };
    for (let seed = 1; seed <= 400; seed++) {
      const h = generateHistory({ seed, ops: 7, maxDuration: 8, ...shape });
      // Half of them get one completed op's output changed (often, not always, making them illegal).
      const rng = new Rng(seed);
      const done = h.filter((o) => o.status === 'ok' && o.input.f !== 'put' && o.input.f !== 'append');
      if (rng.chance(0.5) && done.length > 0) {
        const victim = rng.pick(done);
        const values = [null, ...h.flatMap((o) => (o.input.f === 'put' || o.input.f === 'append' ? [o.input.value] : o.input.f === 'cas' ? [o.input.to] : []))];
        if (victim.input.f === 'get') victim.output = { value: rng.pick(values) };
        else if (victim.output !== undefined && 'swapped' in victim.output) victim.output = { swapped: !victim.output.swapped };
      }
      const expected = bruteForce(h) ? 'ok' : 'illegal';
      const r = checkLinearizability(h);
      expect({ seed, result: r.result }).toEqual({ seed, result: expected });
      verdicts[expected]++;
    }
    // Both verdicts are well represented, or the comparison proves little.
    expect(verdicts.ok).toBeGreaterThan(50);
    expect(verdicts.illegal).toBeGreaterThan(50);
  });

  it('finds the injected stale read in generated 300-op histories', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const h = generateHistory({ seed, ops: 300 });
      expect(checkLinearizability(h).result).toBe('ok');
      const bad = injectStaleRead(h, seed);
      if (bad === undefined) continue;
      const r = checkLinearizability(bad.history);
      expect(r.result).toBe('illegal');
      if (r.result !== 'illegal') continue;
      expect(r.counterexample.map((o) => o.id)).toContain(bad.victim);
      expect(explained(r.counterexample)).toBe(true);
    }
  });
});
