/**
 * `GET /api/history` on the wire: a replay's or a long live history is tens of MB of JSON, fetched whole at page
 * load, so it goes brotli- or gzip-compressed when the browser accepts it, made once per distinct history.
 */
import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { brotliDecompressSync, createGunzip, gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { serveUi, type UiFrame, type UiServer } from '../src/index';
import { HistoryCache, parseHistoryWindow, pickEncoding } from '../src/server';
import { fakeSource, frame } from './helpers';

const servers: UiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A GET over node:http, which (unlike fetch) neither asks for nor undoes a content encoding by itself. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Frames like a replay's: 5 nodes with 48-entry log tails each. */
function bigHistory(count: number): UiFrame[] {
  const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
  return Array.from({ length: count }, (_, seq) =>
    frame(seq, {
      members: { voters: ids, learners: [], observers: [] },
      nodes: ids.map((id) => ({ id, up: true, role: id === 'n1' ? 'leader' : 'follower', term: 3, commitIndex: seq, appliedIndex: seq, lastIndex: seq + 47, log: Array.from({ length: 48 }, (_, k) => ({ index: seq + k, term: 3 })) })),
      events: seq % 50 === 0 ? [{ at: seq, kind: 'leader', node: 'n1', text: `n1 leads (term ${seq})` }] : [],
    }),
  );
}

describe('pickEncoding', () => {
  it('prefers brotli, then gzip, honours q=0 and *, and sends identity without a header', () => {
    expect(pickEncoding('gzip, deflate, br, zstd')).toBe('br');
    expect(pickEncoding('gzip, deflate')).toBe('gzip');
    expect(pickEncoding('br;q=0, gzip;q=0.5')).toBe('gzip');
    expect(pickEncoding('br;q=0, gzip;q=0')).toBe('identity');
    expect(pickEncoding('*')).toBe('br');
    expect(pickEncoding('*;q=0, gzip')).toBe('gzip');
    expect(pickEncoding('identity')).toBe('identity');
    expect(pickEncoding('')).toBe('identity');
    expect(pickEncoding(undefined)).toBe('identity');
  });
});

describe('GET /api/history on the wire', () => {
  it('is brotli- or gzip-compressed as the browser accepts, the same frames once decoded, and far smaller', async () => {
    const frames = bigHistory(400);
    const server = await serveUi({ source: fakeSource({ frames }) });
    servers.push(server);
    const url = `${server.url}api/history`;
    const plain = await get(url);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(plain.body.toString('utf8'))).toEqual(frames);

    const br = await get(url, { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.status).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(br.headers['content-length'])).toBe(br.body.length);
    expect(JSON.parse(brotliDecompressSync(br.body).toString('utf8'))).toEqual(frames);
    expect(br.body.length * 20).toBeLessThan(plain.body.length);

    const gz = await get(url, { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(gz.body).toString('utf8'))).toEqual(frames);
    expect(gz.body.length * 10).toBeLessThan(plain.body.length);

    // HEAD: the same headers, no body.
    const head = await get(url, { 'accept-encoding': 'br' }, 'HEAD');
    expect(head.headers['content-encoding']).toBe('br');
    expect(head.body.length).toBe(0);
    // fetch (the page's) undoes the encoding itself.
    expect(await (await fetch(url)).json()).toEqual(frames);
  });

  it('a small history goes as it is', async () => {
    const server = await serveUi({ source: fakeSource({ frames: [frame(0)] }) });
    servers.push(server);
    const answer = await get(`${server.url}api/history`, { 'accept-encoding': 'br, gzip' });
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(answer.body.toString('utf8'))).toEqual([frame(0)]);
  });

  it('is made once per history: the same bytes again without asking the source to serialise, remade after a new frame', async () => {
    const source = fakeSource({ frames: bigHistory(200) });
    const server = await serveUi({ source });
    servers.push(server);
    const url = `${server.url}api/history`;
    let serialised = 0;
    // The first frame counts every JSON.stringify of a history (toJSON runs once per serialisation).
    const first = source.frames[0] as UiFrame & { toJSON?: () => unknown };
    const { toJSON: _unused, ...plainFirst } = first;
    first.toJSON = () => {
      serialised++;
      return plainFirst;
    };
    const a = await get(url, { 'accept-encoding': 'br' });
    const b = await get(url, { 'accept-encoding': 'br' });
    const g = await get(url, { 'accept-encoding': 'gzip' });
    expect(serialised).toBe(1);
    expect(b.body.equals(a.body)).toBe(true);
    expect(JSON.parse(gunzipSync(g.body).toString('utf8'))).toHaveLength(200);
    source.emit(frame(200));
    const c = await get(url, { 'accept-encoding': 'br' });
    expect(serialised).toBe(2);
    const decoded = JSON.parse(brotliDecompressSync(c.body).toString('utf8')) as UiFrame[];
    expect(decoded).toHaveLength(201);
    expect(decoded.at(-1)).toEqual(frame(200));
  });
});

describe('GET /api/history?first=|last=|before=|after=', () => {
  it('answers the window asked for, with the source\'s newest seq whatever the window', async () => {
    const frames = Array.from({ length: 10 }, (_, i) => frame(i));
    const server = await serveUi({ source: fakeSource({ frames }) });
    servers.push(server);
    const seqs = async (query: string): Promise<{ seqs: number[]; newest: string | null }> => {
      const res = await fetch(`${server.url}api/history${query}`);
      expect(res.status).toBe(200);
      return { seqs: ((await res.json()) as UiFrame[]).map((f) => f.seq), newest: res.headers.get('x-ui-newest-seq') };
    };
    expect(await seqs('')).toEqual({ seqs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], newest: '9' });
    expect(await seqs('?last=3')).toEqual({ seqs: [7, 8, 9], newest: '9' });
    expect(await seqs('?first=3')).toEqual({ seqs: [0, 1, 2], newest: '9' });
    expect(await seqs('?before=7')).toEqual({ seqs: [0, 1, 2, 3, 4, 5, 6], newest: '9' });
    expect(await seqs('?after=6')).toEqual({ seqs: [7, 8, 9], newest: '9' });
    expect(await seqs('?after=2&before=5')).toEqual({ seqs: [3, 4], newest: '9' });
    expect(await seqs('?before=7&last=2')).toEqual({ seqs: [5, 6], newest: '9' });
    expect(await seqs('?after=-1&first=1')).toEqual({ seqs: [0], newest: '9' });
    expect(await seqs('?last=50')).toEqual({ seqs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], newest: '9' });
    for (const bad of ['?last=0', '?first=-1', '?last=x', '?before=1.5', '?first=1&last=1']) {
      const res = await fetch(`${server.url}api/history${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { ok: boolean }).ok).toBe(false);
    }
  });

  it('a window of a large history goes compressed too, and each window is kept once made', async () => {
    const source = fakeSource({ frames: bigHistory(300) });
    const server = await serveUi({ source });
    servers.push(server);
    const last = await get(`${server.url}api/history?last=100`, { 'accept-encoding': 'br' });
    expect(last.headers['content-encoding']).toBe('br');
    expect((JSON.parse(brotliDecompressSync(last.body).toString('utf8')) as UiFrame[]).map((f) => f.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 200 + i));
    const rest = await get(`${server.url}api/history?before=200`, { 'accept-encoding': 'br' });
    expect(JSON.parse(brotliDecompressSync(rest.body).toString('utf8'))).toHaveLength(200);
    const again = await get(`${server.url}api/history?last=100`, { 'accept-encoding': 'br' });
    expect(again.body.equals(last.body)).toBe(true);
    expect(parseHistoryWindow(new URLSearchParams('first=2&after=5'))).toEqual({ first: 2, after: 5 });
  });
});

describe('HistoryCache', () => {
  /** Frames whose serialisations are counted (toJSON of the first frame runs once per JSON.stringify). */
  function counted(count: number, from = 0): { frames: UiFrame[]; made: () => number } {
    let made = 0;
    const frames = Array.from({ length: count }, (_, i) => frame(from + i));
    const { ...plain } = frames[0] as UiFrame;
    (frames[0] as UiFrame & { toJSON: () => unknown }).toJSON = () => {
      made++;
      return plain;
    };
    return { frames, made: () => made };
  }

  it('keeps at most maxWindows windows and at most maxBytes of JSON, the newest always', async () => {
    const a = counted(10);
    const b = counted(10, 100);
    const cache = new HistoryCache(2, 1_000_000);
    await cache.get(a.frames, 'a', 'identity');
    await cache.get(a.frames, 'a', 'identity');
    expect(a.made()).toBe(1);
    await cache.get(b.frames, 'b', 'identity');
    await cache.get(a.frames, 'c', 'identity');
    // Three windows, two kept: 'a' went first.
    expect(a.made()).toBe(2);
    await cache.get(a.frames, 'a', 'identity');
    expect(a.made()).toBe(3);
    // A byte budget below one window's JSON keeps only the newest.
    const c = counted(10, 200);
    const d = counted(10, 300);
    const small = new HistoryCache(4, 100);
    await small.get(c.frames, 'c', 'identity');
    await small.get(d.frames, 'd', 'identity');
    await small.get(d.frames, 'd', 'identity');
    expect(d.made()).toBe(1);
    await small.get(c.frames, 'c', 'identity');
    expect(c.made()).toBe(2);
  });
});

describe('GET /api/stream on the wire', () => {
  it('gzipped, a stream that does not read still makes the server fold frames instead of queueing them', async () => {
    const source = fakeSource();
    const server = await serveUi({ source });
    servers.push(server);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${server.url}api/stream`, { headers: { 'accept-encoding': 'gzip' } }, (r) => resolve(r));
      req.on('error', reject);
      req.end();
    });
    expect(res.headers['content-encoding']).toBe('gzip');
    res.pause();
    const frames = 400; // 400 x 64 KiB of noise (gzip cannot shrink it) = 25 MiB if queued
    for (let seq = 0; seq < frames; seq++) {
      const f = frame(seq, { events: [{ at: seq, kind: 'action', text: `event ${seq}` }] });
      f.nodes[0]!.details = { noise: randomBytes(48 * 1024).toString('base64') };
      source.emit(f);
      if (seq % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const stats = server.stats();
    expect(stats.bufferedBytes).toBeLessThan(4 * 1024 * 1024);
    expect(stats.coalescedFrames).toBeGreaterThan(0);
    let text = '';
    const body = res.pipe(createGunzip());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('newest frame not received')), 10_000);
      body.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes(`id: ${frames - 1}\n`) && text.endsWith('\n\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const last = text.slice(text.lastIndexOf('event: frame'));
    expect((JSON.parse(last.split('\n')[2]?.slice('data: '.length) ?? 'null') as UiFrame).seq).toBe(frames - 1);
    res.destroy();
  });

  /** Opens the stream over node:http; collects the raw bytes and the decoded text (gunzipped when gzip). */
  function openStream(url: string, headers: Record<string, string>): Promise<{ encoding: string | undefined; bytes: () => number; text: () => string; close: () => void }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        let bytes = 0;
        let text = '';
        res.on('data', (c: Buffer) => (bytes += c.length));
        const encoding = res.headers['content-encoding'];
        const body = encoding === 'gzip' ? res.pipe(createGunzip()) : res;
        body.on('data', (c: Buffer) => (text += c.toString('utf8')));
        body.on('error', () => undefined);
        resolve({ encoding, bytes: () => bytes, text: () => text, close: () => req.destroy() });
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('is gzipped when the browser accepts it, each frame arriving whole at once, in a fraction of the bytes', async () => {
    const source = fakeSource({ frames: [] });
    const server = await serveUi({ source });
    servers.push(server);
    const zipped = await openStream(`${server.url}api/stream`, { 'accept-encoding': 'gzip, deflate, br' });
    const plain = await openStream(`${server.url}api/stream`, {});
    try {
      expect(zipped.encoding).toBe('gzip');
      expect(plain.encoding).toBeUndefined();
      const frames = bigHistory(40);
      // One frame: it arrives decoded whole, without waiting for more (flushed per event).
      source.emit(frames[0] as UiFrame);
      await vi.waitFor(() => expect(zipped.text()).toContain('id: 0\n'));
      expect(zipped.text()).toContain(': consensus-kit ui');
      for (const f of frames.slice(1)) source.emit(f);
      await vi.waitFor(() => expect(zipped.text()).toContain('id: 39\n'));
      await vi.waitFor(() => expect(plain.text()).toContain('id: 39\n'));
      expect(zipped.text()).toBe(plain.text());
      expect(zipped.bytes() * 5).toBeLessThan(plain.bytes());
    } finally {
      zipped.close();
      plain.close();
    }
  });
});
