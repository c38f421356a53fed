import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStorage, type Envelope, type LogEntry, type NodeId, type Status, type Transport, type TransportHandler } from '@consensus-kit/core';
import { UI_LOG_TAIL } from '@consensus-kit/ui';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LOG_READ_BYTES, NodeObserver, messageType, parseSince, type NodeUiAnswer } from '../src/node-observe';

/** A transport that records what it is asked to send and lets the test deliver envelopes. */
class FakeTransport implements Transport {
  handler: TransportHandler | undefined;
  sent: Envelope[] = [];
  stopped = false;
  async start(handler: TransportHandler): Promise<void> {
    this.handler = handler;
  }
  send(envelopes: readonly Envelope[]): void {
    this.sent.push(...envelopes);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

/** The parts of a node the observer reads: a status the test sets and the node's events. */
class FakeNode extends EventEmitter {
  current: Status;
  constructor(status: Partial<Status> = {}) {
    super();
    this.current = { id: 'n1', role: 'follower', term: 1, commitIndex: 0, appliedIndex: 0, lastIndex: 0, config: { voters: ['n1', 'n2', 'n3'], learners: [] }, ...status };
  }
  status(): Status {
    return this.current;
  }
}

const env = (from: NodeId, to: NodeId, type = 'AppendEntries'): Envelope => ({ from, to, msg: { type, term: 1 } });
const entry = (index: number, term: number, type: LogEntry['type'] = 'command'): LogEntry => ({ index, term, type, data: new Uint8Array([1, 2, 3]) });

async function storageWith(last: number, termOf: (i: number) => number = () => 1): Promise<MemoryStorage> {
  const s = new MemoryStorage();
  const entries: LogEntry[] = [];
  for (let i = 1; i <= last; i++) entries.push(entry(i, termOf(i), i === 1 ? 'noop' : 'command'));
  await s.save({ entries });
  return s;
}

function observer(o: Partial<ConstructorParameters<typeof NodeObserver>[0]> = {}): NodeObserver {
  let t = 1_000;
  return new NodeObserver({ id: 'n1', timer: false, now: () => t++, ...o });
}

describe('NodeObserver: counting and sampling peer traffic', () => {
  it('counts every message each way but samples at most samplesPerWindow per link, direction and window', async () => {
    const obs = observer({ samplesPerWindow: 3, ringSize: 1000 });
    const inner = new FakeTransport();
    const t = obs.watchTransport(inner);
    const delivered: Envelope[] = [];
    await t.start({ deliver: (e) => delivered.push(e) });
    obs.attach({ node: new FakeNode(), storage: new MemoryStorage() });
    for (let i = 0; i < 5000; i++) t.send([env('n1', 'n2'), env('n1', 'n3', 'Heartbeat')]);
    for (let i = 0; i < 700; i++) inner.handler?.deliver(env('n2', 'n1', 'AppendEntriesResponse'));
    // The envelopes pass through untouched.
    expect(inner.sent).toHaveLength(10_000);
    expect(delivered).toHaveLength(700);
    let a = obs.answer(0);
    expect(a.peers).toEqual({ n2: { sent: 5000, received: 700 }, n3: { sent: 5000, received: 0 } });
    // 3 to n2, 3 to n3, 3 from n2: nothing more in this window however many messages passed.
    expect(a.messages.map((m) => `${m.from}>${m.to}:${m.type}`).sort()).toEqual([
      ...Array(3).fill('n1>n2:AppendEntries'),
      ...Array(3).fill('n1>n3:Heartbeat'),
      ...Array(3).fill('n2>n1:AppendEntriesResponse'),
    ].sort());
    obs.nextWindow();
    for (let i = 0; i < 100; i++) t.send([env('n1', 'n2')]);
    a = obs.answer(0);
    expect(a.messages).toHaveLength(12);
    expect(a.peers.n2?.sent).toBe(5100);
  });

  it('keeps the latest ringSize samples, oldest first, and filters them by since', async () => {
    const obs = observer({ samplesPerWindow: 1, ringSize: 8 });
    const t = obs.watchTransport(new FakeTransport());
    await t.start({ deliver: () => undefined });
    obs.attach({ node: new FakeNode(), storage: new MemoryStorage() });
    for (let w = 0; w < 20; w++) {
      t.send([env('n1', 'n2', `T${w}`)]);
      obs.nextWindow();
    }
    const all = obs.answer(0);
    expect(all.messages.map((m) => m.type)).toEqual(['T12', 'T13', 'T14', 'T15', 'T16', 'T17', 'T18', 'T19']);
    const seqs = all.messages.map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(all.seq).toBe(seqs[seqs.length - 1]);
    const since = seqs[4] as number;
    expect(obs.answer(since).messages.map((m) => m.type)).toEqual(['T17', 'T18', 'T19']);
    expect(obs.answer(all.seq).messages).toEqual([]);
  });

  it('opens a new sampling window every windowMs, and stops its timer when the transport stops', async () => {
    vi.useFakeTimers();
    try {
      const inner = new FakeTransport();
      const obs = new NodeObserver({ id: 'n1', windowMs: 100, samplesPerWindow: 1 });
      const t = obs.watchTransport(inner);
      await t.start({ deliver: () => undefined });
      obs.attach({ node: new FakeNode(), storage: new MemoryStorage() });
      for (let i = 0; i < 3; i++) t.send([env('n1', 'n2')]);
      expect(obs.answer(0).messages).toHaveLength(1);
      vi.advanceTimersByTime(99);
      t.send([env('n1', 'n2')]);
      expect(obs.answer(0).messages).toHaveLength(1);
      vi.advanceTimersByTime(1);
      for (let i = 0; i < 3; i++) t.send([env('n1', 'n2')]);
      expect(obs.answer(0).messages).toHaveLength(2);
      expect(vi.getTimerCount()).toBe(1);
      await t.stop();
      expect(inner.stopped).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('reads the message type without encoding the message', () => {
    expect(messageType({ type: 'PROPOSAL', zxid: 3 })).toBe('PROPOSAL');
    expect(messageType({ type: 7 })).toBe('7');
    expect(messageType({})).toBe('unknown');
    expect(messageType(null)).toBe('unknown');
    expect(messageType(new Uint8Array(3))).toBe('unknown');
  });
});

describe('NodeObserver: node events', () => {
  it('records elections, leaders, membership changes, snapshots, partitions and heals with increasing seqs', async () => {
    const obs = observer();
    const node = new FakeNode({ role: 'follower', term: 1, leader: 'n2' });
    const storage = await storageWith(3);
    await storage.saveSnapshot({ index: 2, term: 1, config: { voters: ['n1', 'n2', 'n3'], learners: [] }, data: new Uint8Array() });
    obs.attach({ node, storage });
    expect(obs.answer(0).snapshotIndex).toBe(2);
    node.emit('role', 'candidate', 2);
    node.emit('leader', undefined, 2);
    node.emit('leader', 'n1', 2);
    node.emit('snapshot', 2); // not newer: no event
    node.emit('snapshot', 40);
    node.current = { ...node.current, config: { voters: ['n1', 'n2', 'n3', 'n4'], learners: ['n5'] } };
    node.emit('status', node.current);
    obs.admin({ t: 'admin.partition', peers: ['n2', 'n3'] });
    obs.admin({ t: 'admin.partition', peers: ['n2'], direction: 'inbound' });
    obs.admin({ t: 'admin.heal' });
    obs.admin({ t: 'admin.status' });
    const a = obs.answer(0);
    expect(a.events.map((e) => [e.kind, e.text])).toEqual([
      ['leader', 'n1 follows leader n2 (term 1)'],
      ['election', 'n1 stands for election (term 2)'],
      ['election', 'n1 knows no leader (term 2)'],
      ['leader', 'n1 leads (term 2)'],
      ['snapshot', 'n1 snapshot at index 40'],
      ['config', 'n1 sees voters n1, n2, n3, n4, learners n5'],
      ['partition', 'n1 cut off from n2, n3'],
      ['partition', 'n1 cut off from n2 (inbound)'],
      ['heal', 'n1 healed: every link restored'],
    ]);
    expect(a.snapshotIndex).toBe(40);
    const seqs = a.events.map((e) => e.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(obs.answer(6).events.map((e) => e.kind)).toEqual(['partition', 'partition', 'heal']);
  });

  it('notices a membership change at the next answer even without a status event', () => {
    const obs = observer();
    const node = new FakeNode();
    obs.attach({ node, storage: new MemoryStorage() });
    node.current = { ...node.current, config: { voters: ['n1', 'n2'], outgoing: ['n1', 'n2', 'n3'], learners: [] } };
    expect(obs.answer(0).events.map((e) => e.text)).toEqual(['n1 sees voters n1, n2 (joint with n1, n2, n3)']);
    // Reported once.
    expect(obs.answer(0).events).toHaveLength(1);
  });

  it('marks a message sent on a link the fault switch cuts as dropped (sampled before the transport drops it)', async () => {
    const obs = observer({ samplesPerWindow: 1 });
    const inner = new FakeTransport();
    const t = obs.watchTransport(inner);
    await t.start({ deliver: () => {} });
    let outbound: NodeId[] = ['n3'];
    let asked = 0;
    const faults = {
      blocked: () => {
        asked++;
        return { outbound, inbound: [] };
      },
    };
    obs.attach({ node: new FakeNode(), storage: new MemoryStorage(), faults });
    for (let i = 0; i < 100; i++) t.send([env('n1', 'n2'), env('n1', 'n3')]);
    inner.handler?.deliver(env('n3', 'n1'));
    // Only the sampled sends ask the switch: one per link here, not 200.
    expect(asked).toBe(2);
    let a = obs.answer(0);
    expect(a.messages.map((m) => [`${m.from}>${m.to}`, m.dropped])).toEqual([
      ['n1>n2', undefined],
      ['n1>n3', 'partitioned'],
      ['n3>n1', undefined],
    ]);
    expect('dropped' in (a.messages[0] as object)).toBe(false);
    // Healed: the next window's sends arrive again.
    outbound = [];
    obs.nextWindow();
    t.send([env('n1', 'n3')]);
    a = obs.answer(a.seq);
    expect(a.messages).toEqual([expect.not.objectContaining({ dropped: expect.anything() })]);
  });

  it('keeps at most eventLimit events, the latest', () => {
    const obs = observer({ eventLimit: 5 });
    obs.attach({ node: new FakeNode(), storage: new MemoryStorage() });
    for (let i = 0; i < 12; i++) obs.record('action', `e${i}`);
    expect(obs.answer(0).events.map((e) => e.text)).toEqual(['e7', 'e8', 'e9', 'e10', 'e11']);
  });
});

describe('NodeObserver: the answer', () => {
  it('carries the status, the last UI_LOG_TAIL entries with their terms, the fault set and the latest seq', async () => {
    const obs = observer();
    const storage = await storageWith(100, (i) => (i <= 60 ? 1 : 2));
    const node = new FakeNode({ role: 'leader', term: 2, leader: 'n1', commitIndex: 99, appliedIndex: 98, lastIndex: 100 });
    obs.attach({ node, storage, faults: { blocked: () => ({ outbound: ['n3'], inbound: ['n2', 'n3'] }) } });
    const a = obs.answer(0);
    expect(a.id).toBe('n1');
    expect(a.pid).toBe(process.pid);
    expect(a.status).toEqual(node.current);
    expect(a.log).toHaveLength(UI_LOG_TAIL);
    expect(a.log[0]).toEqual({ index: 100 - UI_LOG_TAIL + 1, term: 1, type: 'command' });
    expect(a.log.at(-1)).toEqual({ index: 100, term: 2, type: 'command' });
    expect(a.log.find((e) => e.index === 61)?.term).toBe(2);
    expect(a.firstIndex).toBe(1);
    expect(a.partitioned).toEqual(['n2', 'n3']);
    expect(a.blocked).toEqual({ outbound: ['n3'], inbound: ['n2', 'n3'] });
  });

  it('reads nothing below firstIndex', async () => {
    const obs = observer({ logTail: 10 });
    const storage = await storageWith(20);
    await storage.saveSnapshot({ index: 15, term: 1, config: { voters: ['n1'], learners: [] }, data: new Uint8Array() });
    await storage.compact(15);
    obs.attach({ node: new FakeNode(), storage });
    const a = obs.answer(0);
    expect(a.firstIndex).toBe(16);
    expect(a.snapshotIndex).toBe(15);
    expect(a.log.map((e) => e.index)).toEqual([16, 17, 18, 19, 20]);
    // An empty log has no tail.
    const empty = observer();
    const s2 = new MemoryStorage();
    empty.attach({ node: new FakeNode(), storage: s2 });
    expect(empty.answer(0).log).toEqual([]);
  });

  it('reads at most LOG_READ_BYTES of entries per answer; past that, the tail carries terms without types', async () => {
    const storage = new MemoryStorage();
    const big = 256 * 1024;
    await storage.save({ entries: Array.from({ length: 48 }, (_, i) => ({ index: i + 1, term: i < 30 ? 1 : 2, type: 'command' as const, data: new Uint8Array(big) })) });
    let readBytes = 0;
    const entries = storage.entries.bind(storage);
    storage.entries = (lo, hi, maxBytes) => {
      const out = entries(lo, hi, maxBytes);
      for (const e of out) readBytes += e.data.length;
      return out;
    };
    const obs = observer();
    obs.attach({ node: new FakeNode(), storage });
    const log = obs.answer(0).log;
    expect(readBytes).toBeLessThanOrEqual(LOG_READ_BYTES + big);
    expect(log.map((e) => e.index)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    expect(log.map((e) => e.term)).toEqual(Array.from({ length: 48 }, (_, i) => (i < 30 ? 1 : 2)));
    const typed = log.filter((e) => e.type !== undefined).length;
    expect(typed).toBeGreaterThan(0);
    expect(typed).toBeLessThan(48);
    expect(log.slice(typed).every((e) => e.type === undefined)).toBe(true);
  });

  it('refuses to answer before it is attached', () => {
    expect(() => observer().answer(0)).toThrow(/starting/);
  });

  it('parses since: absent is 0, anything but a non-negative integer is refused', () => {
    expect(parseSince('/ui')).toBe(0);
    expect(parseSince('/ui?since=0')).toBe(0);
    expect(parseSince('/ui?x=1&since=42')).toBe(42);
    for (const bad of ['-1', 'abc', '1.5', '', '1e3', '99999999999999999', ' 1']) expect(() => parseSince(`/ui?since=${encodeURIComponent(bad)}`), bad).toThrow(/since must be a non-negative integer/);
  });
});

describe('NodeObserver: GET /ui', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
    server = undefined;
  });

  async function serve(obs: NodeObserver): Promise<string> {
    server = createServer((req, res) => obs.serve(req, res));
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('answers 503 while starting, then 200 JSON filtered by since; 400 for a bad since; 405 for another method', async () => {
    const obs = observer();
    const url = await serve(obs);
    expect((await fetch(`${url}/ui`)).status).toBe(503);
    const t = obs.watchTransport(new FakeTransport());
    await t.start({ deliver: () => undefined });
    obs.attach({ node: new FakeNode({ leader: 'n2' }), storage: await storageWith(5) });
    t.send([env('n1', 'n2', 'Heartbeat')]);

    const r = await fetch(`${url}/ui?since=0`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const a = (await r.json()) as NodeUiAnswer;
    expect(Object.keys(a).sort()).toEqual(['at', 'blocked', 'events', 'firstIndex', 'id', 'log', 'messages', 'partitioned', 'peers', 'pid', 'seq', 'snapshotIndex', 'status'].sort());
    expect(a.log.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, 'noop'],
      [2, 1, 'command'],
      [3, 1, 'command'],
      [4, 1, 'command'],
      [5, 1, 'command'],
    ]);
    expect(a.events.map((e) => e.text)).toEqual(['n1 follows leader n2 (term 1)']);
    expect(a.messages).toEqual([{ seq: 2, from: 'n1', to: 'n2', type: 'Heartbeat', at: expect.any(Number) }]);
    expect(a.seq).toBe(2);

    const later = (await (await fetch(`${url}/ui?since=${a.seq}`)).json()) as NodeUiAnswer;
    expect(later.messages).toEqual([]);
    expect(later.events).toEqual([]);
    expect(later.seq).toBe(2);

    const bad = await fetch(`${url}/ui?since=-3`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'since must be a non-negative integer, not "-3"' });
    const post = await fetch(`${url}/ui`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});
