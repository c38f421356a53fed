/**
 * Break-it pass (session 14): what a hostile client, another web site or a malformed request does to serveUi.
 * Each test here failed before the fix it names.
 */
import { connect } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { serveUi, type UiServer } from '../src/index';
import { fakeSource, frame, raw } from './helpers';

const servers: UiServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** One request written byte for byte (node:http refuses to send a malformed request line). */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (out += chunk));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no answer in 5 s; got ${JSON.stringify(out)}`));
    });
    socket.write(text);
  });
}

describe('serveUi break-it: DNS rebinding when listening on every interface', () => {
  it('on 0.0.0.0 refuses a Host that is a DNS name of another site, accepts IP literals, localhost and this machine', async () => {
    const source = fakeSource({ frames: [frame(0)] });
    const server = await serveUi({ source, host: '0.0.0.0' });
    servers.push(server);
    const port = new URL(server.url).port;
    const history = (host: string) => raw(`${server.url}api/history`, { headers: { host } }).then((r) => r.status);
    // evil.example resolves to 127.0.0.1 after the page loaded (rebinding): the browser sends its own name.
    expect(await history(`evil.example:${port}`)).toBe(403);
    const refused = await raw(`${server.url}api/history`, { headers: { host: `evil.example:${port}` } });
    expect(JSON.parse(refused.body)).toEqual({ ok: false, text: expect.stringContaining("this machine's IP address or its name") });
    expect(await history(`127.0.0.1.nip.io:${port}`)).toBe(403);
    const rebound = await raw(`${server.url}api/action`, {
      method: 'POST',
      headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'heal' }),
    });
    expect(rebound.status).toBe(403);
    expect(source.acted).toEqual([]);
    // Another port is another origin.
    expect(await history(`127.0.0.1:1`)).toBe(403);
    // What a person on this machine or the network types: an address, localhost, the machine's name.
    expect(await history(`127.0.0.1:${port}`)).toBe(200);
    expect(await history(`localhost:${port}`)).toBe(200);
    expect(await history(`[::1]:${port}`)).toBe(200);
    expect(await history(`${hostname()}:${port}`)).toBe(200);
    const lan = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === 'IPv4');
    if (lan) expect(await history(`${lan.address}:${port}`)).toBe(200);
    expect(await history(`10.1.2.3:${port}`)).toBe(200);
  });
});

describe('serveUi break-it: malformed requests', () => {
  it('answers 400, not 500, to a request target that is not a URL', async () => {
    const server = await serveUi({ source: fakeSource() });
    servers.push(server);
    const port = Number(new URL(server.url).port);
    const answer = await rawRequest(port, `GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(answer).toContain('"ok":false');
  });
});
