import { request, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { serveUi, UI_ACTION_BODY_LIMIT, UiOptionsError, type UiServer } from '../src/index';
import { COALESCED_EVENTS_MAX, coalesceFrames, formatFrame } from '../src/sse';
import { fakeSource, frame, raw, StreamReader, type FakeSource } from './helpers';

const servers: UiServer[] = [];
const readers: StreamReader[] = [];

async function start(source: FakeSource, options: { pingIntervalMs?: number } = {}): Promise<UiServer> {
  const server = await serveUi({ source, ...options });
  servers.push(server);
  return server;
}

async function open(url: string, headers?: Record<string, string>): Promise<StreamReader> {
  const reader = await StreamReader.open(url, headers);
  readers.push(reader);
  return reader;
}

function post(server: UiServer, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return raw(`${server.url}api/action`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('serveUi: page and reads', () => {
  it('listens on 127.0.0.1 with a free port by default', async () => {
    const server = await start(fakeSource());
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('serves the page: index.html naming app.js and app.css, both served, under a strict content policy', async () => {
    const server = await start(fakeSource());
    const index = await fetch(server.url);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await index.text();
    expect(html).toContain('src="/app.js"');
    expect(html).toContain('href="/app.css"');
    const js = await fetch(`${server.url}app.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('data-testid');
    const css = await fetch(`${server.url}app.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('GET /api/hello is the source hello; GET /api/history its frames', async () => {
    const source = fakeSource({ frames: [frame(0), frame(1)] });
    const server = await start(source);
    expect(await (await fetch(`${server.url}api/hello`)).json()).toEqual(source.hello());
    const history = await fetch(`${server.url}api/history`);
    expect(history.headers.get('cache-control')).toBe('no-store');
    expect(await history.json()).toEqual([frame(0), frame(1)]);
  });

  it('answers 404 for unknown paths and 405 for writes to read-only ones', async () => {
    const server = await start(fakeSource());
    expect((await fetch(`${server.url}nope`)).status).toBe(404);
    expect((await fetch(`${server.url}api/nope`)).status).toBe(404);
    const put = await fetch(`${server.url}api/hello`, { method: 'POST', body: '{}' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD');
    const getAction = await fetch(`${server.url}api/action`);
    expect(getAction.status).toBe(405);
    expect(getAction.headers.get('allow')).toBe('POST');
  });

  it('refuses bad options with a typed error', async () => {
    await expect(serveUi({ source: {} as never })).rejects.toBeInstanceOf(UiOptionsError);
    await expect(serveUi({ source: fakeSource(), port: 70000 })).rejects.toThrow(/port/);
    await expect(serveUi({ source: fakeSource(), port: 1.5 })).rejects.toBeInstanceOf(UiOptionsError);
  });
});

describe('serveUi: the event stream', () => {
  it('frames each UiFrame as "event: frame", its seq as id, its JSON on one data line', () => {
    const f = frame(7, { events: [{ at: 1, kind: 'action', text: 'two\nlines' }] });
    const text = formatFrame(f);
    expect(text).toBe(`event: frame\nid: 7\ndata: ${JSON.stringify(f)}\n\n`);
    expect(text.split('\n')).toHaveLength(5);
  });

  it('sends the kept frames after ?since=, then new frames in order, none twice', async () => {
    const source = fakeSource({ frames: [frame(0), frame(1), frame(2)] });
    const server = await start(source);
    const stream = await open(`${server.url}api/stream?since=0`);
    expect(stream.res?.headers['content-type']).toMatch(/^text\/event-stream/);
    await stream.until((r) => r.frames.length === 2);
    source.emit(frame(3));
    source.emit(frame(4));
    // A source repeating a frame (or one older than the newest sent) is not sent again.
    for (const listener of [frame(4), frame(2)]) source.frames.push(listener);
    await stream.until((r) => r.frames.length === 4);
    expect(stream.frames.map((f) => f.seq)).toEqual([1, 2, 3, 4]);
    expect(stream.events.filter((e) => e.event === 'frame').map((e) => e.id)).toEqual(['1', '2', '3', '4']);
  });

  it('without since starts with the next frame; Last-Event-ID resumes like since', async () => {
    const source = fakeSource({ frames: [frame(0), frame(1)] });
    const server = await start(source);
    const fresh = await open(`${server.url}api/stream`);
    const resumed = await open(`${server.url}api/stream`, { 'last-event-id': '0' });
    await resumed.until((r) => r.frames.length === 1);
    source.emit(frame(2));
    await fresh.until((r) => r.frames.length === 1);
    await resumed.until((r) => r.frames.length === 2);
    expect(fresh.frames.map((f) => f.seq)).toEqual([2]);
    expect(resumed.frames.map((f) => f.seq)).toEqual([1, 2]);
  });

  it('answers HEAD on the stream with its headers only', async () => {
    const server = await start(fakeSource());
    const res = await raw(`${server.url}api/stream`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(server.stats().clients).toBe(0);
  });

  it('answers 400 to a since that is not an integer', async () => {
    const server = await start(fakeSource());
    const res = await raw(`${server.url}api/stream?since=abc`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ ok: false, text: expect.stringMatching(/since/) });
  });

  it('skips a frame it cannot serialise without throwing into the source, and goes on', async () => {
    const source = fakeSource();
    const server = await start(source);
    const stream = await open(`${server.url}api/stream`);
    await stream.until((r) => r.events.length > 0);
    const bad = frame(0) as ReturnType<typeof frame> & { self?: unknown };
    bad.self = bad;
    expect(() => source.emit(bad)).not.toThrow();
    source.emit(frame(1));
    await stream.until((r) => r.frames.length === 1);
    expect(stream.frames[0]?.seq).toBe(1);
  });

  it('pings with a comment line', async () => {
    const server = await start(fakeSource(), { pingIntervalMs: 20 });
    const stream = await open(`${server.url}api/stream`);
    await stream.until((r) => r.events.some((e) => e.comment === 'ping'));
  });

  it('close() ends every open stream and stops listening', async () => {
    const source = fakeSource();
    const server = await serveUi({ source });
    const a = await open(`${server.url}api/stream`);
    const b = await open(`${server.url}api/stream`);
    await a.until((r) => r.events.length > 0);
    expect(server.stats().clients).toBe(2);
    expect(source.listeners).toBe(1);
    await server.close();
    await a.until((r) => r.ended);
    await b.until((r) => r.ended);
    expect(source.listeners).toBe(0);
    await expect(fetch(`${server.url}api/hello`)).rejects.toThrow();
  });

  it('forgets a stream the browser closed', async () => {
    const server = await start(fakeSource());
    const stream = await open(`${server.url}api/stream`);
    await stream.until((r) => r.events.length > 0);
    stream.close();
    for (let i = 0; i < 100 && server.stats().clients > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.stats().clients).toBe(0);
  });

  it('coalesces frames for a stream that does not read: memory stays bounded, the newest frame arrives', async () => {
    const source = fakeSource();
    const server = await start(source);
    const url = new URL(`${server.url}api/stream`);
    // A client that reads nothing after the headers: the socket's buffers fill, the server must not queue.
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, (r) => resolve(r));
      req.on('error', reject);
      req.end();
    });
    res.pause();
    const big = 'x'.repeat(64 * 1024);
    const frames = 400; // 400 x 64 KiB = 25 MiB if queued
    for (let seq = 0; seq < frames; seq++) {
      const f = frame(seq, { events: [{ at: seq, kind: 'action', text: `event ${seq}` }] });
      f.nodes[0]!.details = { big };
      source.emit(f);
      if (seq % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const stats = server.stats();
    // The socket's own buffer plus at most one frame; far below the 25 MiB queued without coalescing.
    expect(stats.bufferedBytes).toBeLessThan(4 * 1024 * 1024);
    expect(stats.coalescedFrames).toBeGreaterThan(0);
    // Reading again, the client gets the newest frame, carrying the events of the frames folded into it (capped).
    let text = '';
    res.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('newest frame not received')), 10_000);
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes(`id: ${frames - 1}\n`) && text.endsWith('\n\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      res.resume();
    });
    const last = text.slice(text.lastIndexOf('event: frame'));
    const parsed = JSON.parse(last.split('\n')[2]?.slice('data: '.length) ?? 'null') as ReturnType<typeof frame>;
    expect(parsed.seq).toBe(frames - 1);
    expect(parsed.events.length).toBeGreaterThan(1);
    expect(parsed.events.length).toBeLessThanOrEqual(COALESCED_EVENTS_MAX);
    expect(parsed.events.at(-1)?.at).toBe(frames - 1);
    res.destroy();
  });

  it('coalesceFrames keeps the newest picture and both frames events, capped', () => {
    const a = frame(1, { events: [{ at: 1, kind: 'kill', text: 'a' }], messages: [{ from: 'n1', to: 'n2', type: 'X', at: 1 }] });
    const b = frame(2, { events: [{ at: 2, kind: 'restart', text: 'b' }] });
    const merged = coalesceFrames(a, b);
    expect(merged.seq).toBe(2);
    expect(merged.messages).toEqual([]);
    expect(merged.events.map((e) => e.text)).toEqual(['a', 'b']);
    const many = frame(3, { events: Array.from({ length: COALESCED_EVENTS_MAX + 10 }, (_, i) => ({ at: i, kind: 'action' as const, text: String(i) })) });
    expect(coalesceFrames(a, many).events).toHaveLength(COALESCED_EVENTS_MAX);
    expect(coalesceFrames(a, many).events.at(-1)?.text).toBe(String(COALESCED_EVENTS_MAX + 9));
  });
});

describe('serveUi: actions', () => {
  it('routes a valid action to the source and answers its result', async () => {
    const source = fakeSource();
    const server = await start(source);
    const res = await post(server, { action: 'partition', node: 'n1', peer: 'n2' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ok: true, text: 'did partition' });
    expect(source.acted).toEqual([{ action: 'partition', node: 'n1', peer: 'n2' }]);
  });

  it('passes a failed result through with 200 and ok:false', async () => {
    const server = await start(fakeSource({ act: async () => ({ ok: false, text: 'n9 is not a member' }) }));
    const res = await post(server, { action: 'kill', node: 'n9' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ok: false, text: 'n9 is not a member' });
  });

  it('answers 500 with ok:false when the source throws', async () => {
    const server = await start(
      fakeSource({
        act: async () => {
          throw new Error('boom');
        },
      }),
    );
    const res = await post(server, { action: 'heal' });
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body)).toEqual({ ok: false, text: 'boom' });
  });

  it.each([
    ['not JSON', '{nope', /not JSON/],
    ['an array', '[]', /object/],
    ['an unknown action', { action: 'explode' }, /unknown action "explode"/],
    ['a missing field', { action: 'kill' }, /needs "node"/],
    ['an extra field', { action: 'heal', node: 'n1' }, /no field "node"/],
    ['a wrong type', { action: 'put', key: 'a', value: 1 }, /"value" must be a string/],
    ['a bad node id', { action: 'kill', node: 'a b' }, /node id/],
    ['a bad role', { action: 'add-member', role: 'king' }, /"role"/],
    ['a bad bench', { action: 'bench', seconds: 0 }, /"seconds"/],
  ])('answers 400 {ok:false,text} to %s', async (_name, body, message) => {
    const source = fakeSource();
    const server = await start(source);
    const res = await post(server, body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ ok: false, text: expect.stringMatching(message) });
    expect(source.acted).toEqual([]);
  });

  it('answers 400 to an action the source does not offer', async () => {
    const source = fakeSource({ hello: { actions: ['put'] } });
    const server = await start(source);
    const res = await post(server, { action: 'kill', node: 'n1' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).text).toMatch(/does not offer/);
  });

  it('answers 404 in replay (a source without act)', async () => {
    const server = await start(fakeSource({ act: false, hello: { mode: 'replay', actions: [] } }));
    const res = await post(server, { action: 'heal' });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({ ok: false, text: expect.stringMatching(/no actions/) });
  });

  it(`answers 413 to a body over ${UI_ACTION_BODY_LIMIT} bytes, declared or streamed`, async () => {
    const source = fakeSource();
    const server = await start(source);
    const big = JSON.stringify({ action: 'put', key: 'k', value: 'v'.repeat(UI_ACTION_BODY_LIMIT) });
    const declared = await post(server, big);
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).ok).toBe(false);
    const streamed = await raw(`${server.url}api/action`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: big });
    expect(streamed.status).toBe(413);
    expect(source.acted).toEqual([]);
    // Just under the limit is read (and refused for its field size, not its body size).
    const fits = await post(server, { action: 'put', key: 'k', value: 'v'.repeat(UI_ACTION_BODY_LIMIT - 100) });
    expect(fits.status).toBe(400);
    expect(JSON.parse(fits.body).text).toMatch(/longer than/);
  });
});

describe('serveUi: another web site cannot drive the cluster', () => {
  it('refuses a POST whose Origin is another site, accepts its own origin and none', async () => {
    const source = fakeSource();
    const server = await start(source);
    const own = server.url.slice(0, -1);
    expect((await post(server, { action: 'heal' }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(server, { action: 'heal' }, { origin: 'null' })).status).toBe(403);
    expect(source.acted).toEqual([]);
    expect((await post(server, { action: 'heal' }, { origin: own })).status).toBe(200);
    expect((await post(server, { action: 'heal' })).status).toBe(200);
    expect(source.acted).toHaveLength(2);
  });

  it('refuses requests for another Host name (DNS rebinding), accepts localhost names on its port', async () => {
    const source = fakeSource({ frames: [frame(0)] });
    const server = await start(source);
    const port = new URL(server.url).port;
    expect((await raw(`${server.url}api/history`, { headers: { host: `evil.example:${port}` } })).status).toBe(403);
    expect((await raw(`${server.url}api/history`, { headers: { host: `127.0.0.1:1` } })).status).toBe(403);
    expect((await post(server, { action: 'heal' }, { host: `evil.example:${port}`, origin: `http://evil.example:${port}` })).status).toBe(403);
    expect(source.acted).toEqual([]);
    expect((await raw(`${server.url}api/history`, { headers: { host: `localhost:${port}` } })).status).toBe(200);
    expect((await raw(`${server.url}api/history`)).status).toBe(200);
  });
});
