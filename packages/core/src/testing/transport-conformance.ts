import type { Envelope, NodeId, Transport, TransportHandler } from '../types';
import type { TestApi } from './test-api';

/**
 * Core's `Transport` contract (types.ts) as one suite any transport can run: in-memory (core's LocalNetwork)
 * and TCP (transport-tcp) run it unchanged.
 */
export interface TransportHarness {
  /** Creates un-started transports for `ids`, all able to reach each other. */
  create(ids: NodeId[]): Promise<Record<NodeId, Transport>>;
  /** Releases what `create` made beyond the transports (which the suite stops itself). */
  cleanup?(): Promise<void>;
}

/** A handler that records what it is given and lets a test wait for it. */
export interface Collector extends TransportHandler {
  readonly received: Envelope[];
  readonly unreachablePeers: NodeId[];
  /** Resolves once `n` envelopes arrived in total; rejects after `ms` (default 10 s) with what arrived. */
  waitFor(n: number, ms?: number): Promise<Envelope[]>;
  waitUnreachable(peer: NodeId, ms?: number): Promise<void>;
  /** Resolves once an envelope matching `pred` arrived. */
  waitUntil(pred: (e: Envelope) => boolean, ms?: number): Promise<Envelope>;
}

/** Plain data with byte arrays rendered as 'bytes:<length>:<hex of a short hash>', for comparisons. */
export function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) {
    let h = 2166136261;
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i]!, 16777619) >>> 0;
    return `bytes:${v.length}:${h.toString(16)}`;
  }
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

export function collector(): Collector {
  const received: Envelope[] = [];
  const unreachablePeers: NodeId[] = [];
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  const wait = (done: () => boolean, ms: number, what: () => string) =>
    new Promise<void>((resolve, reject) => {
      if (done()) return resolve();
      const check = () => {
        if (!done()) return;
        waiters.delete(check);
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what()}`));
      }, ms);
      waiters.add(check);
    });
  return {
    received,
    unreachablePeers,
    deliver(env) {
      received.push(env);
      poke();
    },
    unreachable(peer) {
      unreachablePeers.push(peer);
      poke();
    },
    async waitFor(n, ms = 10_000) {
      await wait(() => received.length >= n, ms, () => `${n} messages (got ${received.length})`);
      return received.slice(0, n);
    },
    async waitUntil(pred, ms = 10_000) {
      await wait(() => received.some(pred), ms, () => 'a matching message');
      return received.find(pred)!;
    },
    waitUnreachable(peer, ms = 10_000) {
      return wait(() => unreachablePeers.includes(peer), ms, () => `unreachable(${peer})`);
    },
  };
}

/** One message of each shape a protocol sends: records, nested arrays, bytes, unicode, numbers at the edges. */
export function messageShapes(): unknown[] {
  return [
    { type: 'Heartbeat', term: 7, commit: 12 },
    {
      type: 'AppendEntries',
      term: 3,
      leader: 'a',
      prevIndex: 41,
      prevTerm: 2,
      commit: 40,
      entries: [
        { index: 42, term: 3, type: 'command', data: new Uint8Array([1, 2, 3]) },
        { index: 43, term: 3, type: 'noop', data: new Uint8Array(0) },
        { index: 44, term: 3, type: 'config', data: new Uint8Array(300).fill(9) },
      ],
    },
    { type: 'VoteResponse', term: 9, granted: false, reject: null },
    { type: 'Snapshot', meta: { index: 100, term: 4, config: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array(5000).map((_, i) => i % 251) },
    { type: 'Text', text: 'héllo wörld — 你好 — 🚀', empty: '' },
    { type: 'Numbers', ints: [0, -1, 127, 128, 255, 65536, -32769, 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1)], floats: [0.5, -1.25, 1e-300, 1e300] },
    { type: 'Nested', a: { b: { c: { d: [[1], [2, [3, [4]]]] } } }, empty: {}, list: [] },
    'a bare string',
    42,
    [1, 'two', { three: 3 }],
    true,
    null,
  ];
}

/**
 * The suite, run with the caller's test runner (`{ describe, it, expect }` from vitest or jest). `name` labels
 * the describe block. Every case stops the transports it started and runs the harness' cleanup, pass or fail.
 */
export function describeTransportConformance(api: TestApi, name: string, harness: () => TransportHarness): void {
  const { describe, it, expect } = api;
  describe(`Transport conformance: ${name}`, () => {
    type Current = { h: TransportHarness; ts: Record<NodeId, Transport> };
    let current: Current | undefined;

    async function setup(ids: NodeId[]): Promise<{ ts: Record<NodeId, Transport>; handlers: Record<NodeId, Collector> }> {
      const h = harness();
      const ts = await h.create(ids);
      current = { h, ts };
      const handlers: Record<NodeId, Collector> = {};
      for (const id of ids) {
        handlers[id] = collector();
        await ts[id]!.start(handlers[id]!);
      }
      return { ts, handlers };
    }

    async function teardown(): Promise<void> {
      if (current === undefined) return;
      const { h, ts } = current;
      current = undefined;
      for (const t of Object.values(ts)) await t.stop();
      await h.cleanup?.();
    }

    /** A case that tears down what it set up, whatever its outcome (the suite takes no afterEach hook). */
    const test = (title: string, fn: () => Promise<void>) =>
      it(title, async () => {
        try {
          await fn();
        } finally {
          await teardown();
        }
      });

    test('delivers an envelope with from, to and msg intact', async () => {
      const { ts, handlers } = await setup(['a', 'b']);
      ts.a!.send([{ from: 'a', to: 'b', msg: { type: 'Ping', n: 1 } }]);
      const [env] = await handlers.b!.waitFor(1);
      expect(env).toEqual({ from: 'a', to: 'b', msg: { type: 'Ping', n: 1 } });
    });

    test('round-trips every message shape', async () => {
      const { ts, handlers } = await setup(['a', 'b']);
      const shapes = messageShapes();
      ts.a!.send(shapes.map((msg) => ({ from: 'a', to: 'b', msg })));
      const got = await handlers.b!.waitFor(shapes.length);
      // The contract allows reordering, so compare as multisets of renderings.
      const render = (v: unknown) => JSON.stringify(normalize(v));
      expect(got.map((e) => render(e.msg)).sort()).toEqual(shapes.map(render).sort());
      for (const e of got) expect(e.from).toBe('a');
    });

    test('does not hand the receiver the sender\'s objects', async () => {
      const { ts, handlers } = await setup(['a', 'b']);
      const msg = { type: 'Mutable', list: [1, 2, 3], data: new Uint8Array([1, 2, 3]) };
      ts.a!.send([{ from: 'a', to: 'b', msg }]);
      msg.list.push(4);
      msg.data[0] = 99;
      const [env] = await handlers.b!.waitFor(1);
      expect(env!.msg).not.toBe(msg);
      expect((env!.msg as typeof msg).list).toEqual([1, 2, 3]);
      expect([...(env!.msg as typeof msg).data]).toEqual([1, 2, 3]);
    });

    test('delivers asynchronously, never inside send', async () => {
      const { ts, handlers } = await setup(['a', 'b']);
      ts.a!.send([{ from: 'a', to: 'b', msg: 'x' }]);
      expect(handlers.b!.received).toHaveLength(0);
      await handlers.b!.waitFor(1);
    });

    test('delivers traffic both ways and among three nodes', async () => {
      const { ts, handlers } = await setup(['a', 'b', 'c']);
      for (const from of ['a', 'b', 'c']) {
        ts[from]!.send(['a', 'b', 'c'].filter((to) => to !== from).map((to) => ({ from, to, msg: { from, to } })));
      }
      for (const id of ['a', 'b', 'c']) {
        const got = await handlers[id]!.waitFor(2);
        expect(got.map((e) => e.from).sort()).toEqual(['a', 'b', 'c'].filter((x) => x !== id));
        for (const e of got) expect(e.msg).toEqual({ from: e.from, to: id });
      }
    });

    test('never throws from send: unknown peers, bad envelopes, unencodable messages', async () => {
      const { ts, handlers } = await setup(['a', 'b']);
      const bad = [
        { from: 'a', to: 'nobody', msg: 1 },
        { from: 'b', to: 'b', msg: 'forged sender' },
        { from: 'a', to: 'b', msg: { f: () => 1 } },
        null,
        { from: 'a', to: 'b', msg: 'after the bad ones' },
      ] as unknown as Envelope[];
      expect(() => ts.a!.send(bad)).not.toThrow();
      await handlers.b!.waitUntil((e) => e.msg === 'after the bad ones');
      expect(handlers.b!.received.every((e) => e.from === 'a')).toBe(true);
    });

    test('send before start and after stop is a no-op; stop is idempotent', async () => {
      const h = harness();
      const ts = await h.create(['a', 'b']);
      current = { h, ts };
      expect(() => ts.a!.send([{ from: 'a', to: 'b', msg: 'early' }])).not.toThrow();
      const b = collector();
      await ts.a!.start(collector());
      await ts.b!.start(b);
      await ts.a!.stop();
      expect(() => ts.a!.send([{ from: 'a', to: 'b', msg: 'late' }])).not.toThrow();
      await ts.a!.stop();
      await new Promise((r) => setTimeout(r, 50));
      expect(b.received).toHaveLength(0);
    });

    test('a stopped transport delivers nothing more', async () => {
      const { ts, handlers } = await setup(['a', 'b']);
      ts.a!.send([{ from: 'a', to: 'b', msg: 'one' }]);
      await handlers.b!.waitFor(1);
      await ts.b!.stop();
      ts.a!.send([{ from: 'a', to: 'b', msg: 'two' }]);
      await new Promise((r) => setTimeout(r, 100));
      expect(handlers.b!.received.map((e) => e.msg)).toEqual(['one']);
    });
  });
}
