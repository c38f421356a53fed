/**
 * The cap on open event streams (session 15): each `GET /api/stream` holds a socket, a gzip context and a queued
 * frame for as long as the client keeps it, so a script (or many tabs) could hold any number.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serveUi, UiOptionsError, UI_MAX_STREAMS, type UiServer } from '../src/index';
import { fakeSource, frame, raw, StreamReader } from './helpers';

const servers: UiServer[] = [];
const readers: StreamReader[] = [];

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function openStream(url: string): Promise<StreamReader> {
  const reader = await StreamReader.open(`${url}api/stream`);
  readers.push(reader);
  return reader;
}

describe('serveUi caps the open event streams', () => {
  it('refuses the stream past maxStreams with 503 and Retry-After, and a closed stream frees its slot', async () => {
    const source = fakeSource({ frames: [frame(0)] });
    const server = await serveUi({ source, maxStreams: 3 });
    servers.push(server);
    const open = await Promise.all([0, 1, 2].map(() => openStream(server.url)));
    for (const r of open) expect(r.res?.statusCode).toBe(200);
    expect(server.stats().clients).toBe(3);

    const refused = await raw(`${server.url}api/stream`, { headers: { accept: 'text/event-stream' } });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.body)).toMatchObject({ ok: false, text: expect.stringContaining('3 event streams are open already') });
    expect(server.stats()).toMatchObject({ clients: 3, refusedStreams: 1 });

    // The open streams still get frames.
    source.emit(frame(1));
    await Promise.all(open.map((r) => r.until((x) => x.frames.some((f) => f.seq === 1))));

    // One closes: its slot is free again once the server sees the socket go.
    (open[0] as StreamReader).close();
    for (let i = 0; i < 200 && server.stats().clients > 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.stats().clients).toBe(2);
    const again = await openStream(server.url);
    expect(again.res?.statusCode).toBe(200);
    source.emit(frame(2));
    await again.until((x) => x.frames.some((f) => f.seq === 2));
    expect(server.stats().clients).toBe(3);
  });

  it('keeps UI_MAX_STREAMS (32) by default; HEAD and the other paths are not counted', async () => {
    expect(UI_MAX_STREAMS).toBe(32);
    const source = fakeSource({ frames: [frame(0)] });
    const server = await serveUi({ source });
    servers.push(server);
    const open = await Promise.all(Array.from({ length: UI_MAX_STREAMS }, () => openStream(server.url)));
    expect(open.every((r) => r.res?.statusCode === 200)).toBe(true);
    expect((await raw(`${server.url}api/stream`)).status).toBe(503);
    expect((await raw(`${server.url}api/stream`, { method: 'HEAD' })).status).toBe(200);
    expect((await raw(`${server.url}api/hello`)).status).toBe(200);
    expect((await raw(`${server.url}api/history`)).status).toBe(200);
  });

  it('refuses a maxStreams that is not a positive integer', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '8' as unknown as number]) {
      await expect(serveUi({ source: fakeSource(), maxStreams: bad })).rejects.toThrow(UiOptionsError);
    }
  });
});
