import { EventEmitter } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { MemoryStorage, type Envelope, type Status, type TransportHandler } from '@consensus-kit/core';
import { UI_ACTION_NAMES, type UiFrame } from '@consensus-kit/ui';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectKv } from '../src/connect';
import { NodeObserver } from '../src/node-observe';
import { liveSource, namesNode, shareLog, type LiveSource } from '../src/ui-live';
import { cleanup, cli, freeBase, killPids, tempDir, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

/** Polls until `pred` holds for a frame (returned), failing after `timeoutMs`. */
async function pollUntil(source: LiveSource, what: string, pred: (f: UiFrame) => boolean, timeoutMs = 15_000): Promise<UiFrame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = await source.poll();
    if (pred(f)) return f;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last frame: ${JSON.stringify({ ...f, nodes: f.nodes.map((n) => ({ ...n, log: n.log.length, details: undefined })) })}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const leaderIn = (f: UiFrame) => {
  const leaders = f.nodes.filter((n) => n.up && n.role === 'leader');
  return leaders.length === 1 && f.nodes.filter((n) => n.up).every((n) => n.leader === leaders[0]?.id && n.term === leaders[0]?.term) ? leaders[0] : undefined;
};

describe('liveSource on a real 3-node raft cluster', () => {
  const dir = useStartedCluster('raft');
  let source: LiveSource;
  beforeAll(() => {
    source = liveSource({ dir: dir(), intervalMs: 100, timeoutMs: 1000 });
  });
  afterAll(async () => {
    await source.close();
  });

  it('shows one leader, logs with terms, links with rates and sampled messages while writes run', async () => {
    const hello = source.hello();
    expect(hello).toMatchObject({ mode: 'live', protocol: 'raft', timeUnit: 'ms', actions: [] });
    expect(hello.electionTimeout).toBeGreaterThan(0);

    const f = await pollUntil(source, 'one leader all agree on', (x) => x.nodes.length === 3 && x.nodes.every((n) => n.up) && leaderIn(x) !== undefined);
    const leader = leaderIn(f)!;
    expect(f.members).toEqual({ voters: ['n1', 'n2', 'n3'], learners: [], observers: [] });
    for (const n of f.nodes) {
      expect(n.log.length).toBeGreaterThan(0);
      expect(n.log.every((e) => e.term >= 1 && e.term <= (leader.term ?? 0))).toBe(true);
      expect(n.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(n.pid).toBeGreaterThan(0);
      expect(n.lag).toBeGreaterThanOrEqual(0);
    }
    expect(f.links).toHaveLength(6);

    // Writes for a while, then the leader's links carry AppendEntries at a rate.
    const { kv } = connectKv(dir());
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await kv.put(`k${written % 20}`, `v${written}`);
        written++;
      }
    })();
    try {
      const busy = await pollUntil(source, 'rates on the leader links and sampled AppendEntries', (x) => {
        const out = x.links.filter((l) => l.from === leader.id);
        return out.length === 2 && out.every((l) => l.rate > 0 && !l.blocked) && x.messages.some((m) => m.from === leader.id && m.type === 'AppendEntries');
      });
      const lead = busy.nodes.find((n) => n.id === leader.id)!;
      expect(lead.lastIndex).toBeGreaterThan(f.nodes.find((n) => n.id === leader.id)!.lastIndex!);
      expect(lead.log.at(-1)?.index).toBe(lead.lastIndex);
      expect(busy.messages.length).toBeGreaterThan(0);
      expect(busy.messages.length).toBeLessThanOrEqual(256);
    } finally {
      writing = false;
      await writer;
      await kv.close();
    }
    expect(written).toBeGreaterThan(0);
  });

  it('shows a killed leader down at the next poll, then a new leader, with the events', async () => {
    const before = await pollUntil(source, 'a leader', (x) => leaderIn(x) !== undefined);
    const old = leaderIn(before)!;
    await killPids([old.pid!]);
    const next = await source.poll();
    const gone = next.nodes.find((n) => n.id === old.id)!;
    expect(gone.up).toBe(false);
    expect(gone.role).toBeUndefined();
    expect(gone.log).toEqual([]);
    expect(next.events).toContainEqual(expect.objectContaining({ kind: 'crash', node: old.id }));
    expect(next.links.filter((l) => l.from === old.id).every((l) => l.rate === 0)).toBe(true);

    const seen: UiFrame[] = [];
    const after = await pollUntil(source, 'a new leader', (x) => {
      seen.push(x);
      const l = leaderIn(x);
      return l !== undefined && l.id !== old.id;
    });
    const fresh = leaderIn(after)!;
    expect(fresh.term).toBeGreaterThan(old.term!);
    const events = seen.flatMap((x) => x.events);
    expect(events).toContainEqual(expect.objectContaining({ kind: 'leader', node: fresh.id, text: expect.stringContaining(`after ${old.id}`) }));
    // The survivors' own accounts of the election come along.
    expect(events.some((e) => e.kind === 'election' && e.node !== old.id)).toBe(true);

    // Brought back, it is up again (a new process: its seq and counters start over).
    expect((await cli('restart', old.id, '--dir', dir())).code).toBe(0);
    const back = await pollUntil(source, `${old.id} up again`, (x) => x.nodes.find((n) => n.id === old.id)?.up === true);
    expect(back.nodes.find((n) => n.id === old.id)?.pid).not.toBe(old.pid);
    expect(back.events).toContainEqual(expect.objectContaining({ kind: 'restart', node: old.id }));
  });

  it('shows a partition as blocked links and a partitioned node, and the heal', async () => {
    const f = await pollUntil(source, 'a leader', (x) => leaderIn(x) !== undefined && x.nodes.every((n) => n.up));
    const victim = f.nodes.find((n) => n.role !== 'leader')!.id;
    const cut = await cli('partition', victim, '--dir', dir());
    expect(cut.code).toBe(0);
    const seen: UiFrame[] = [];
    const blocked = await pollUntil(source, 'blocked links', (x) => {
      seen.push(x);
      return x.links.filter((l) => l.blocked).length === 4;
    });
    for (const l of blocked.links) expect(l.blocked).toBe(l.from === victim || l.to === victim);
    expect(blocked.nodes.find((n) => n.id === victim)?.partitioned).toEqual(['n1', 'n2', 'n3'].filter((id) => id !== victim));
    expect(seen.flatMap((x) => x.events)).toContainEqual(expect.objectContaining({ kind: 'partition', node: victim }));

    expect((await cli('heal', '--dir', dir())).code).toBe(0);
    const healed = await pollUntil(source, 'no blocked links', (x) => x.links.every((l) => !l.blocked));
    expect(healed.nodes.every((n) => (n.partitioned ?? []).length === 0)).toBe(true);
  });

  it('keeps a bounded history of its frames', () => {
    const h = source.history();
    expect(h.length).toBeGreaterThan(5);
    expect(h.map((x) => x.seq)).toEqual(h.map((_, i) => (h[0]?.seq ?? 0) + i));
  });
});

describe('liveSource without a healthy cluster', () => {
  let dir = '';
  let server: Server | undefined;
  let answer: (url: string) => { code: number; body: string } = () => ({ code: 200, body: 'not json' });
  beforeAll(async () => {
    dir = tempDir();
    server = createServer((req, res) => {
      const a = answer(req.url ?? '/');
      res.writeHead(a.code, { 'content-type': 'application/json' });
      res.end(a.body);
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const free = await freeBase();
    const nodes = [
      { id: 'n1', host: '127.0.0.1', port: free + 1, httpPort: port },
      // Nothing listens here: a node that is down.
      { id: 'n2', host: '127.0.0.1', port: free + 2, httpPort: free + 102 },
    ];
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ version: 1, clusterId: 'c', protocol: 'zab', nodes }));
    mkdirSync(join(dir, 'n1'));
    writeFileSync(join(dir, 'n1', 'node.json'), '{ not a config');
  });
  afterAll(async () => {
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
    await cleanup(dir);
  });
  let source: LiveSource | undefined;
  afterEach(async () => {
    await source?.close();
    source = undefined;
  });

  it('shows a node answering nonsense down with one error event, and a silent one down', async () => {
    source = liveSource({ dir });
    expect(source.hello()).toMatchObject({ mode: 'live', protocol: 'zab', actions: [] });
    expect(source.hello().electionTimeout).toBeUndefined();
    const f = await source.poll();
    expect(f.nodes.map((n) => [n.id, n.up])).toEqual([
      ['n1', false],
      ['n2', false],
    ]);
    expect(f.members.voters).toEqual(['n1', 'n2']);
    expect(f.events).toEqual([expect.objectContaining({ kind: 'error', node: 'n1', text: expect.stringContaining('not JSON') })]);
    // The same problem is not reported again on every poll.
    expect((await source.poll()).events).toEqual([]);
    answer = () => ({ code: 200, body: JSON.stringify({ id: 'n7', status: {} }) });
    expect((await source.poll()).events).toEqual([expect.objectContaining({ kind: 'error', node: 'n1', text: expect.stringContaining('another node') })]);
    answer = () => ({ code: 500, body: '{"error":"boom"}' });
    expect((await source.poll()).events).toEqual([expect.objectContaining({ kind: 'error', text: expect.stringContaining('answered 500') })]);
    answer = () => ({ code: 503, body: '{}' });
    const starting = await source.poll();
    expect(starting.events).toEqual([]);
    expect(starting.nodes[0]?.up).toBe(false);
  });

  it('shows a slow node down once its timeout passes', async () => {
    answer = () => ({ code: 200, body: 'x' });
    const slow = createServer(() => undefined); // never answers
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (slow.address() as AddressInfo).port;
      const d2 = tempDir();
      writeFileSync(join(d2, 'cluster.json'), JSON.stringify({ version: 1, clusterId: 'c', protocol: 'raft', nodes: [{ id: 'n1', host: '127.0.0.1', port: 1, httpPort: port }] }));
      source = liveSource({ dir: d2, timeoutMs: 150 });
      const began = Date.now();
      const f = await source.poll();
      expect(Date.now() - began).toBeLessThan(1000);
      expect(f.nodes[0]?.up).toBe(false);
      await cleanup(d2);
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  it('keeps at most historyLimit frames, pushes each frame to subscribers and polls by itself once started', async () => {
    source = liveSource({ dir, intervalMs: 20, historyLimit: 3 });
    const got: number[] = [];
    const off = source.subscribe((f) => got.push(f.seq));
    source.start();
    const deadline = Date.now() + 5000;
    while (got.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    off();
    expect(got.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    const h = source.history();
    expect(h).toHaveLength(3);
    expect(h.map((x) => x.seq)).toEqual([h[0]!.seq, h[0]!.seq + 1, h[0]!.seq + 2]);
    await source.close();
    const last = source.history().at(-1)?.seq;
    await new Promise((r) => setTimeout(r, 100));
    expect(source.history().at(-1)?.seq).toBe(last);
  });

  it('runs actions through act, names them in hello, and marks their results on the timeline', async () => {
    const asked: unknown[] = [];
    source = liveSource({
      dir,
      act: async (a) => {
        asked.push(a);
        if (a.action === 'kill') return { ok: true, text: `${a.node} killed` };
        if (a.action === 'heal') throw new Error('no cluster');
        if (a.action === 'restart') return { ok: false, text: 'timed out after 5 s' };
        return { ok: false, text: 'refused' };
      },
    });
    expect(source.hello().actions).toEqual([...UI_ACTION_NAMES]);
    expect(await source.act?.({ action: 'kill', node: 'n2' })).toEqual({ ok: true, text: 'n2 killed' });
    expect(await source.act?.({ action: 'heal' })).toEqual({ ok: false, text: 'no cluster' });
    expect(await source.act?.({ action: 'put', key: 'a', value: 'b' })).toEqual({ ok: false, text: 'refused' });
    // A result that does not name its node gets it in front: the page prints an event's text, not its node.
    expect(await source.act?.({ action: 'restart', node: 'n3' })).toEqual({ ok: false, text: 'timed out after 5 s' });
    expect(asked).toHaveLength(4);
    const f = await source.poll();
    expect(f.events.filter((e) => e.kind !== 'error' || e.node === undefined || e.node === 'n3')).toEqual([
      expect.objectContaining({ kind: 'kill', node: 'n2', text: 'n2 killed' }),
      expect.objectContaining({ kind: 'error', text: 'no cluster' }),
      expect.objectContaining({ kind: 'error', text: 'refused' }),
      expect.objectContaining({ kind: 'error', node: 'n3', text: 'restart n3: timed out after 5 s' }),
    ]);
    expect(namesNode('n2 killed', 'n2')).toBe(true);
    expect(namesNode('cut n2 off from n1', 'n2')).toBe(true);
    expect(namesNode('n21 killed', 'n2')).toBe(false);
    expect(namesNode('node-a2 up', 'a2')).toBe(false);
    const narrow = liveSource({ dir, act: async () => ({ ok: true, text: '' }), actions: ['put', 'get'] });
    expect(narrow.hello().actions).toEqual(['put', 'get']);
    await narrow.close();
  });
});

describe('shareLog', () => {
  const tail = (from: number, to: number, term = (_: number) => 1) => Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term: term(from + i), type: 'command' as const }));

  it('keeps the previous tail when nothing changed, and its unchanged entries when it moved', () => {
    const a = tail(1, 48);
    expect(shareLog(a, tail(1, 48))).toBe(a);
    const moved = shareLog(a, tail(5, 52));
    expect(moved).not.toBe(a);
    expect(moved.map((e) => e.index)).toEqual(tail(5, 52).map((e) => e.index));
    expect(moved[0]).toBe(a[4]);
    expect(moved[43]).toBe(a[47]);
    // An entry rewritten in the middle (a Paxos slot accepted again under a higher ballot) is not shared.
    const rewritten = shareLog(a, tail(1, 48, (i) => (i === 20 ? 2 : 1)));
    expect(rewritten).not.toBe(a);
    expect(rewritten[19]).toEqual({ index: 20, term: 2, type: 'command' });
    expect(rewritten[18]).toBe(a[18]);
    expect(shareLog([], tail(1, 3))).toEqual(tail(1, 3));
    expect(shareLog(a, [])).toEqual([]);
  });
});

describe('liveSource against stand-in nodes (real observers behind real http servers)', () => {
  let clock = 1_000_000;
  const servers: Server[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
    for (const d of dirs) await cleanup(d);
  });

  async function standIn(id: string, status: Partial<Status>, blocked = { outbound: [] as string[], inbound: [] as string[] }) {
    const obs = new NodeObserver({ id, timer: false, now: () => clock });
    let handler: TransportHandler | undefined;
    const t = obs.watchTransport({ start: async (h) => void (handler = h), send: () => undefined, stop: async () => undefined });
    await t.start({ deliver: () => undefined });
    const node = Object.assign(new EventEmitter(), {
      current: { id, role: 'follower', term: 1, commitIndex: 10, appliedIndex: 10, lastIndex: 10, config: { voters: ['n1', 'n2'], learners: ['n3'] }, ...status } as Status,
      status(): Status {
        return this.current;
      },
    });
    const storage = new MemoryStorage();
    await storage.save({ entries: Array.from({ length: 10 }, (_, i) => ({ index: i + 1, term: 1, type: 'command' as const, data: new Uint8Array() })) });
    obs.attach({ node, storage, faults: { blocked: () => blocked } });
    const server = createServer((req, res) => obs.serve(req, res));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { id, obs, send: (e: Envelope) => t.send([e]), deliver: (e: Envelope) => handler?.deliver(e), port: (server.address() as AddressInfo).port };
  }

  it('follows the cluster file, agrees on a leader by majority, computes lag, rates and blocked links, and shows each message once', async () => {
    const n1Blocked = { outbound: ['n2'], inbound: [] as string[] };
    const n1 = await standIn('n1', { role: 'leader', leader: 'n1' }, n1Blocked);
    const n2 = await standIn('n2', { leader: 'n1', appliedIndex: 7, commitIndex: 9 });
    const dir = tempDir();
    dirs.push(dir);
    const file = (nodes: { id: string; port: number }[]) =>
      writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ version: 1, clusterId: 'c', protocol: 'zab', nodes: nodes.map((n, i) => ({ id: n.id, host: '127.0.0.1', port: 40_000 + i, httpPort: n.port })) }));
    file([n1]);
    const source = liveSource({ dir });
    try {
      const f1 = await source.poll();
      expect(f1.nodes.map((n) => n.id)).toEqual(['n1']);
      // ZAB's non-voting members are its observers.
      expect(f1.members).toEqual({ voters: ['n1', 'n2'], learners: [], observers: ['n3'] });
      // One of two voters is no majority: no agreed leader yet.
      expect(f1.events.filter((e) => e.text.includes("cluster's leader"))).toEqual([]);
      expect(f1.events).toContainEqual(expect.objectContaining({ kind: 'leader', node: 'n1', text: 'n1 leads (term 1)' }));
      // What a node says of itself is its own view: every relayed event is marked so (the page lists them on request).
      expect(f1.events.filter((e) => e.text.startsWith('n1 ')).every((e) => e.scope === 'node')).toBe(true);

      file([n1, n2]);
      const f2 = await source.poll();
      expect(f2.nodes.map((n) => [n.id, n.up, n.lag])).toEqual([
        ['n1', true, 0],
        ['n2', true, 3],
      ]);
      const agreed = f2.events.find((e) => e.text === "n1 is the cluster's leader (term 1)");
      expect(agreed).toEqual({ at: expect.any(Number), kind: 'leader', node: 'n1', text: "n1 is the cluster's leader (term 1)" });
      // The cut link, as the cluster has it, is one event of the cluster.
      expect(f2.events).toContainEqual({ at: expect.any(Number), kind: 'partition', text: 'links cut: n1 -> n2' });

      // 50 messages each way in 500 ms (the observers' clock): 100 per second. One sampled message travels
      // n1 -> n2 and is seen by both ends: the frame shows it once.
      for (let i = 0; i < 50; i++) {
        n1.send({ from: 'n1', to: 'n2', msg: { type: 'Proposal' } });
        n2.deliver({ from: 'n1', to: 'n2', msg: { type: 'Proposal' } });
        n2.send({ from: 'n2', to: 'n1', msg: { type: 'Ack' } });
      }
      clock += 500;
      const f3 = await source.poll();
      expect(f3.links).toEqual([
        { from: 'n1', to: 'n2', rate: 100, blocked: true },
        { from: 'n2', to: 'n1', rate: 100, blocked: false },
      ]);
      expect(f3.messages.map((m) => `${m.from}>${m.to}:${m.type}`).sort()).toEqual(['n1>n2:Proposal', 'n1>n2:Proposal', 'n2>n1:Ack', 'n2>n1:Ack']);
      // n1 drops what it sends to n2: those messages never arrive.
      expect(f3.messages.map((m) => `${m.from}>${m.to}:${m.dropped ?? 'arrives'}`).sort()).toEqual(['n1>n2:partitioned', 'n1>n2:partitioned', 'n2>n1:arrives', 'n2>n1:arrives']);
      expect(f3.events.filter((e) => e.kind === 'partition' || e.kind === 'heal')).toEqual([]);
      expect(f3.nodes[0]?.partitioned).toEqual(['n2']);
      expect(f3.nodes[0]?.log.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

      // The receiver cuts the other way: what n2 sends to n1 never arrives either (n2 cannot know; the source does).
      n1Blocked.inbound.push('n2');
      n2.obs.nextWindow();
      n2.send({ from: 'n2', to: 'n1', msg: { type: 'Ack' } });
      clock += 200;
      const f4 = await source.poll();
      expect(f4.messages.map((m) => `${m.from}>${m.to}:${m.dropped ?? 'arrives'}`)).toEqual(['n2>n1:partitioned']);
      expect(f4.events).toContainEqual({ at: expect.any(Number), kind: 'partition', text: 'links cut: n1 <-> n2' });
      n1Blocked.outbound.length = 0;
      n1Blocked.inbound.length = 0;
      expect((await source.poll()).events).toContainEqual({ at: expect.any(Number), kind: 'heal', text: 'every link restored' });

      // Dropped from the file: no longer shown.
      file([n2]);
      expect((await source.poll()).nodes.map((n) => n.id)).toEqual(['n2']);
    } finally {
      await source.close();
    }
  });
});
