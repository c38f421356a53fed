import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { UI_ACTION_NAMES, type UiFrame } from '@consensus-kit/ui';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectKv } from '../src/connect';
import { liveSource, shareLog, type LiveSource } from '../src/ui-live';
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
        return { ok: false, text: 'refused' };
      },
    });
    expect(source.hello().actions).toEqual([...UI_ACTION_NAMES]);
    expect(await source.act?.({ action: 'kill', node: 'n2' })).toEqual({ ok: true, text: 'n2 killed' });
    expect(await source.act?.({ action: 'heal' })).toEqual({ ok: false, text: 'no cluster' });
    expect(await source.act?.({ action: 'put', key: 'a', value: 'b' })).toEqual({ ok: false, text: 'refused' });
    expect(asked).toHaveLength(3);
    const f = await source.poll();
    expect(f.events.filter((e) => e.kind !== 'error' || e.node === undefined)).toEqual([
      expect.objectContaining({ kind: 'kill', node: 'n2', text: 'n2 killed' }),
      expect.objectContaining({ kind: 'error', text: 'no cluster' }),
      expect.objectContaining({ kind: 'error', text: 'refused' }),
    ]);
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
