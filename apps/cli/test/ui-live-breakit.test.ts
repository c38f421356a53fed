/**
 * Break-it pass (session 14) on the live source of `consensus-cli ui`: what a node's http port may answer
 * (a huge body, a redirect) and what may happen between two polls (a restart) must neither blow up the ui
 * process nor go unseen on the timeline. Each test failed before its fix.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeUiAnswer } from '../src/node-observe';
import { LIVE_ANSWER_MAX_BYTES, liveSource, type LiveSource } from '../src/ui-live';
import { cleanup, tempDir } from './helpers';

const servers: Server[] = [];
const dirs: string[] = [];
let source: LiveSource | undefined;

afterEach(async () => {
  await source?.close();
  source = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  for (const d of dirs.splice(0)) await cleanup(d);
});

function answer(id: string, pid: number, seq: number, extra: Record<string, unknown> = {}): NodeUiAnswer & Record<string, unknown> {
  return {
    id,
    pid,
    status: { id, role: 'leader', term: 2, leader: id, commitIndex: 3, appliedIndex: 3, lastIndex: 3, config: { voters: [id], learners: [] } },
    log: [{ index: 3, term: 2 }],
    firstIndex: 1,
    snapshotIndex: 0,
    partitioned: [],
    blocked: { outbound: [], inbound: [] },
    peers: {},
    messages: [],
    events: seq > 0 ? [{ seq, at: 1, kind: 'leader', text: `${id} leads (term 2), seq ${seq}` }] : [],
    seq,
    at: Date.now(),
    ...extra,
  };
}

/** One stand-in node on a real port whose `/ui` answers what `handler` says; the cluster file names it n1. */
async function node(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const dir = tempDir();
  dirs.push(dir);
  const httpPort = (server.address() as AddressInfo).port;
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ version: 1, clusterId: 'c', protocol: 'raft', nodes: [{ id: 'n1', host: '127.0.0.1', port: 1, httpPort }] }));
  return dir;
}

describe('liveSource break-it: what a node port answers', () => {
  it(`reads at most ${LIVE_ANSWER_MAX_BYTES} bytes of an answer: a larger one (valid JSON or not) is an error, the node shown down`, async () => {
    let closedEarly = false;
    const padding = 'x'.repeat(4 * 1024 * 1024);
    const dir = await node((req, res) => {
      // A valid answer with 48 MiB of padding, streamed without a length.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('close', () => (closedEarly = !res.writableFinished));
      const body = JSON.stringify(answer('n1', 4242, 1, { padding: Array.from({ length: 12 }, () => padding) }));
      let at = 0;
      const go = (): void => {
        while (at < body.length) {
          const chunk = body.slice(at, at + 1024 * 1024);
          at += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', go);
        }
        res.end();
      };
      go();
    });
    source = liveSource({ dir, timeoutMs: 20_000 });
    const f = await source.poll();
    expect(f.nodes[0]).toMatchObject({ id: 'n1', up: false });
    expect(f.events).toEqual([expect.objectContaining({ kind: 'error', node: 'n1', text: expect.stringContaining(`larger than ${LIVE_ANSWER_MAX_BYTES} bytes`) })]);
    await new Promise((r) => setTimeout(r, 50));
    expect(closedEarly).toBe(true);
  });

  it('does not follow a redirect away from the node: the answer is an error', async () => {
    let followed = false;
    const elsewhere = await node((req, res) => {
      followed = true;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer('n1', 4242, 1)));
    });
    const target = JSON.parse(readFileSync(join(elsewhere, 'cluster.json'), 'utf8')).nodes[0].httpPort as number;
    const dir = await node((req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${target}${req.url ?? '/ui'}` });
      res.end();
    });
    source = liveSource({ dir });
    const f = await source.poll();
    expect(followed).toBe(false);
    expect(f.nodes[0]).toMatchObject({ id: 'n1', up: false });
    expect(f.events).toEqual([expect.objectContaining({ kind: 'error', node: 'n1', text: expect.stringContaining('answered 307') })]);
  });
});

describe('liveSource break-it: a node restarted between two polls', () => {
  it('marks the restart on the timeline and keeps every event of the new process', async () => {
    let pid = 1001;
    let seq = 5;
    const dir = await node((req, res) => {
      const since = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('since') ?? 0);
      const a = answer('n1', pid, seq);
      // The new process's events: seq 1..seq, all kept; the answer lists those after `since`.
      a.events = Array.from({ length: seq }, (_, i) => ({ seq: i + 1, at: 1 + i, kind: 'leader' as const, text: `pid ${pid} event ${i + 1}` })).filter((e) => e.seq > since);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a));
    });
    source = liveSource({ dir });
    const first = await source.poll();
    expect(first.events.filter((e) => e.text.startsWith('pid 1001'))).toHaveLength(5);
    // Killed and started again between two polls; the new process has already counted past the old seq.
    pid = 1002;
    seq = 9;
    const next = await source.poll();
    expect(next.nodes[0]).toMatchObject({ up: true, pid: 1002 });
    expect(next.events.filter((e) => e.text.startsWith('pid 1002')).map((e) => e.text)).toEqual(Array.from({ length: 9 }, (_, i) => `pid 1002 event ${i + 1}`));
    expect(next.events).toContainEqual(expect.objectContaining({ kind: 'restart', node: 'n1', text: expect.stringContaining('1001') }));
  });
});
