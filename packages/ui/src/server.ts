/**
 * `serveUi`: the visualizer's HTTP server (node:http, no framework). It serves the built page and a small API
 * over one `UiSource`: `GET /api/hello`, `GET /api/history`, `GET /api/stream` (Server-Sent Events) and
 * `POST /api/action`. It listens on 127.0.0.1 unless told otherwise and refuses requests whose Host is not
 * its own (DNS rebinding) and POSTs from another origin, so another web site cannot drive the cluster.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import { parseUiAction } from './action';
import { UiActionError, UiOptionsError } from './errors';
import type { UiActionResult, UiFrame, UiSource } from './model';
import { loadPage, type PageFiles } from './page-build';
import { SseClient } from './sse';

/** The largest `POST /api/action` body accepted (64 KiB); a larger one is answered 413. */
export const UI_ACTION_BODY_LIMIT = 64 * 1024;

/** Event streams (`GET /api/stream`) open at once by default; one more is answered 503 with a Retry-After. */
export const UI_MAX_STREAMS = 32;
/** Seconds a refused stream is told to wait (`Retry-After`); the page retries on its own backoff (1 s, doubling to 8 s). */
const STREAM_RETRY_AFTER_S = 5;

export interface ServeUiOptions {
  source: UiSource;
  /** Interface to listen on; 127.0.0.1 unless given. A non-loopback host exposes the actions to that network. */
  host?: string;
  /** 0 (the default) picks a free port; `url` says which. */
  port?: number;
  /** Milliseconds between the comment pings on each event stream (15 s). */
  pingIntervalMs?: number;
  /**
   * Event streams open at once (UI_MAX_STREAMS, 32). Each holds a socket, a gzip context and a queued frame: one
   * past the cap is answered 503 with `Retry-After`, and a stream that closes frees its slot.
   */
  maxStreams?: number;
}

export interface UiServerStats {
  /** Open event streams. */
  clients: number;
  /** Bytes written to the streams' sockets and not yet taken by the kernel, over all streams. */
  bufferedBytes: number;
  /** Frames folded into a later one for a slow stream instead of queued. */
  coalescedFrames: number;
  /** Streams refused (503) because `maxStreams` were open. */
  refusedStreams: number;
}

export interface UiServer {
  /** `http://127.0.0.1:<port>/` */
  url: string;
  stats(): UiServerStats;
  /** Ends every event stream and stops listening. The source is the caller's: close it yourself. */
  close(): Promise<void>;
}

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** How a history answer is encoded on the wire: what the browser accepts, brotli first. */
export type HistoryEncoding = 'br' | 'gzip' | 'identity';

/**
 * The encoding to send for `Accept-Encoding: <header>`: brotli when accepted, else gzip, else none. A coding
 * with `q=0` is refused; `*` stands for any coding not named.
 */
export function pickEncoding(header: string | undefined): HistoryEncoding {
  const accepted = acceptedCodings(header);
  if (accepted('br')) return 'br';
  if (accepted('gzip') || accepted('x-gzip')) return 'gzip';
  return 'identity';
}

/** Whether `Accept-Encoding: <header>` accepts a coding (named with q > 0, or by a `*` with q > 0). */
function acceptedCodings(header: string | undefined): (name: string) => boolean {
  if (header === undefined) return () => false;
  const q = new Map<string, number>();
  for (const part of header.toLowerCase().split(',')) {
    const [name, ...params] = part.split(';').map((x) => x.trim());
    if (!name) continue;
    const qParam = params.find((p) => p.startsWith('q='));
    const value = qParam === undefined ? 1 : Number(qParam.slice(2));
    q.set(name, Number.isFinite(value) ? value : 0);
  }
  return (name: string): boolean => (q.get(name) ?? q.get('*') ?? 0) > 0;
}

/** Histories smaller than this go as they are: compressing them saves less than it costs. */
const COMPRESS_MIN_BYTES = 1024;

/**
 * The `/api/history` answer of one history, JSON and compressed, made once per distinct history and kept for
 * the next request (a replay's history never changes; a live one changes with every frame, so its answer is
 * remade only when a page asks after a new frame). Frames are never changed once made, so a history is known
 * by its length and its first and last `seq`.
 */
export class HistoryCache {
  constructor(
    private readonly maxWindows = HISTORY_CACHE_WINDOWS,
    private readonly maxBytes = HISTORY_CACHE_BYTES,
  ) {}

  /** Per window asked for (`''`: the whole history): the history it was made of, its JSON and encodings. */
  private readonly entries = new Map<string, { key: string; json: Buffer; encoded: Map<HistoryEncoding, Promise<Buffer>> }>();

  /**
   * The answer for `frames` (the part `window` names of the history) in `encoding` (identity when small): made
   * now, or kept from an earlier request. A few windows are kept (a page asks for one, then the rest).
   */
  async get(frames: readonly UiFrame[], window: string, encoding: HistoryEncoding): Promise<{ body: Buffer; encoding: HistoryEncoding }> {
    const key = `${frames.length}:${frames[0]?.seq ?? ''}:${frames.at(-1)?.seq ?? ''}`;
    let entry = this.entries.get(window);
    if (entry === undefined || entry.key !== key) {
      entry = { key, json: Buffer.from(JSON.stringify(frames)), encoded: new Map() };
      this.entries.delete(window);
      this.entries.set(window, entry);
      // The oldest go while more than a few are kept or their JSON passes the byte budget (a live page asks for
      // `before=<seq>` with another seq every time); the newest always stays.
      let bytes = 0;
      for (const e of this.entries.values()) bytes += e.json.length;
      for (const [name, e] of this.entries) {
        if (this.entries.size <= 1 || (this.entries.size <= this.maxWindows && bytes <= this.maxBytes)) break;
        this.entries.delete(name);
        bytes -= e.json.length;
      }
    }
    const { json, encoded } = entry;
    if (encoding === 'identity' || json.length < COMPRESS_MIN_BYTES) return { body: json, encoding: 'identity' };
    let body = encoded.get(encoding);
    if (body === undefined) {
      body = compress(json, encoding);
      const made = body;
      made.catch(() => {
        if (encoded.get(encoding) === made) encoded.delete(encoding);
      });
      encoded.set(encoding, body);
    }
    return { body: await body, encoding };
  }
}

/** Windows of the history whose answers are kept at once, and the most bytes of JSON they keep together. */
const HISTORY_CACHE_WINDOWS = 4;
const HISTORY_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * The part of the history `GET /api/history` was asked for: frames with `seq > after` and `seq < before`, then the
 * oldest `first` or the newest `last` of them. A page fetches a window it can draw at once, then the rest.
 */
export interface HistoryWindow {
  first?: number;
  last?: number;
  before?: number;
  after?: number;
}

/** The window named by `?first=&last=&before=&after=`, or the text of a 400 for a bad one. */
export function parseHistoryWindow(params: URLSearchParams): HistoryWindow | string {
  const window: HistoryWindow = {};
  for (const name of ['first', 'last', 'before', 'after'] as const) {
    const raw = params.get(name);
    if (raw === null) continue;
    const counted = name === 'first' || name === 'last';
    if (!(counted ? /^\d{1,9}$/ : /^-?\d{1,15}$/).test(raw) || (counted && Number(raw) < 1)) {
      return `${name} must be ${counted ? 'a positive integer (a number of frames)' : 'an integer (a frame seq)'}, not ${JSON.stringify(raw.slice(0, 40))}`;
    }
    window[name] = Number(raw);
  }
  if (window.first !== undefined && window.last !== undefined) return 'ask for first or last, not both';
  return window;
}

/** The frames of `frames` (in seq order) that `window` names. */
export function applyHistoryWindow(frames: readonly UiFrame[], window: HistoryWindow): readonly UiFrame[] {
  let out = frames;
  const { before, after } = window;
  if (before !== undefined || after !== undefined) out = out.filter((f) => (after === undefined || f.seq > after) && (before === undefined || f.seq < before));
  if (window.first !== undefined) return out.slice(0, window.first);
  if (window.last !== undefined) return out.slice(-window.last);
  return out;
}

/** Brotli at quality 5 (about as fast as gzip's default on frames, and a third of its size), or gzip at 6. */
function compress(json: Buffer, encoding: 'br' | 'gzip'): Promise<Buffer> {
  return encoding === 'br'
    ? brotliAsync(json, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: json.length } })
    : gzipAsync(json, { level: 6 });
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...extra,
  });
  res.end(text);
}

function fail(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body: UiActionResult = { ok: false, text };
  sendJson(res, status, body, extra);
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      resolve('too-large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function validateOptions(options: ServeUiOptions): void {
  if (typeof options !== 'object' || options === null) throw new UiOptionsError('serveUi needs an options object');
  const { source } = options;
  if (typeof source !== 'object' || source === null || typeof source.hello !== 'function' || typeof source.history !== 'function' || typeof source.subscribe !== 'function') {
    throw new UiOptionsError('options.source must be a UiSource (hello, history, subscribe)');
  }
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)) {
    throw new UiOptionsError(`options.port must be an integer from 0 to 65535, got ${String(options.port)}`);
  }
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host.length === 0)) {
    throw new UiOptionsError('options.host must be a non-empty string');
  }
  if (options.pingIntervalMs !== undefined && (!Number.isInteger(options.pingIntervalMs) || options.pingIntervalMs < 1)) {
    throw new UiOptionsError('options.pingIntervalMs must be a positive integer');
  }
  if (options.maxStreams !== undefined && (!Number.isSafeInteger(options.maxStreams) || options.maxStreams < 1)) {
    throw new UiOptionsError(`options.maxStreams must be a positive integer, got ${String(options.maxStreams)}`);
  }
}

/** Serves the visualizer for `source`; resolves once it listens. */
export async function serveUi(options: ServeUiOptions): Promise<UiServer> {
  validateOptions(options);
  const { source } = options;
  const host = options.host ?? '127.0.0.1';
  const page: PageFiles = await loadPage();
  const clients = new Set<SseClient>();
  const maxStreams = options.maxStreams ?? UI_MAX_STREAMS;
  let refusedStreams = 0;
  let port = 0;
  let closing: Promise<void> | undefined;

  const allowedHosts = (): Set<string> => {
    const names = new Set(LOOPBACK_NAMES);
    names.add(hostForUrl(host));
    return new Set([...names].map((name) => `${name}:${port}`.toLowerCase()));
  };
  let allowed = new Set<string>();

  const machineName = hostname().toLowerCase();
  /** The Host header names this server (not a DNS name rebound to 127.0.0.1 by another site). */
  const hostOk = (req: IncomingMessage): boolean => {
    const header = req.headers.host?.toLowerCase();
    if (header === undefined) return false;
    if (allowed.has(header)) return true;
    if (!WILDCARD_HOSTS.has(host)) return false;
    // On every interface: any address of this machine as an IP literal, or its own name, on this port. Any other
    // name may be another site's, rebound to this machine, and is refused as on loopback.
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(header);
    if (m === null || Number(m[2]) !== port) return false;
    const name = m[1] as string;
    return isIP(name.startsWith('[') ? name.slice(1, -1) : name) !== 0 || name === machineName;
  };
  /** A POST from a browser carries Origin; it must be this server's own. */
  const originOk = (req: IncomingMessage): boolean => {
    const origin = req.headers.origin;
    return origin === undefined || origin.toLowerCase() === `http://${req.headers.host?.toLowerCase() ?? ''}`;
  };

  const history = new HistoryCache();
  /** `GET /api/history`: the frames as JSON, brotli- or gzip-compressed when the browser accepts it. */
  const sendHistory = async (req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> => {
    const window = parseHistoryWindow(url.searchParams);
    if (typeof window === 'string') {
      fail(res, 400, window);
      return;
    }
    const all = source.history();
    const spec = [window.first, window.last, window.before, window.after].map((n) => n ?? '').join(',');
    const { body, encoding } = await history.get(applyHistoryWindow(all, window), spec === ',,,' ? '' : spec, pickEncoding(req.headers['accept-encoding']));
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      vary: 'accept-encoding',
      // The source's newest frame, whatever the window: a page that asked for the first frames follows the stream from it.
      'x-ui-newest-seq': String(all.at(-1)?.seq ?? -1),
      'content-length': body.length,
      ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
    });
    res.end(method === 'HEAD' ? undefined : body);
  };

  const stream = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const sinceText = url.searchParams.get('since') ?? req.headers['last-event-id'];
    const since = typeof sinceText === 'string' && /^-?\d+$/.test(sinceText) ? Number(sinceText) : undefined;
    if (sinceText !== undefined && sinceText !== null && since === undefined) {
      fail(res, 400, 'since must be an integer (a frame seq)');
      return;
    }
    // A slot per open stream: without a cap, every tab (or a script) held a socket and a gzip context for good.
    if (clients.size >= maxStreams) {
      refusedStreams++;
      fail(res, 503, `${maxStreams} event streams are open already (the most this server keeps): close a tab of this page, or try again later`, {
        'retry-after': String(STREAM_RETRY_AFTER_S),
      });
      return;
    }
    // Gzip (each event flushed as written) when the browser takes it: a frame is mostly what the last one said.
    const gzip = acceptedCodings(req.headers['accept-encoding'])('gzip');
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.flushHeaders();
    const client = new SseClient(res, { gzip });
    clients.add(client);
    res.on('close', () => {
      clients.delete(client);
      client.close();
    });
    client.comment('consensus-kit ui');
    // Without `since`, the stream starts with the next frame; with it, with every kept frame after it.
    if (since !== undefined) for (const frame of source.history()) if (frame.seq > since) client.send(frame);
  };

  const act = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!source.act) {
      fail(res, 404, 'this source takes no actions (a replay)');
      return;
    }
    const body = await readBody(req, UI_ACTION_BODY_LIMIT);
    if (body === 'too-large') {
      fail(res, 413, `the body is larger than ${UI_ACTION_BODY_LIMIT} bytes`, { connection: 'close' });
      res.on('finish', () => req.destroy());
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      fail(res, 400, 'the body is not JSON');
      return;
    }
    let action;
    try {
      action = parseUiAction(parsed);
    } catch (error) {
      if (error instanceof UiActionError) {
        fail(res, 400, error.message);
        return;
      }
      throw error;
    }
    if (!source.hello().actions.includes(action.action)) {
      fail(res, 400, `this source does not offer the action "${action.action}"`);
      return;
    }
    let result: UiActionResult;
    try {
      result = await source.act(action);
    } catch (error) {
      fail(res, 500, error instanceof Error ? error.message : String(error));
      return;
    }
    sendJson(res, 200, result);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostOk(req)) {
      fail(res, 403, `unknown Host: ask for ${WILDCARD_HOSTS.has(host) ? "this machine's IP address or its name" : 'the URL the server printed'} on port ${port} (another name may be a web site rebound to this machine)`);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      fail(res, 400, 'the request target is not a URL path');
      return;
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';
    if (path === '/api/action') {
      if (method !== 'POST') {
        fail(res, 405, 'use POST', { allow: 'POST' });
        return;
      }
      if (!originOk(req)) {
        fail(res, 403, 'cross-origin request refused');
        return;
      }
      await act(req, res);
      return;
    }
    const known = path === '/api/hello' || path === '/api/history' || path === '/api/stream' || path === '/' || page.has(path);
    if (!known) {
      fail(res, 404, `no such path ${path}`);
      return;
    }
    if (!readOnly) {
      fail(res, 405, 'use GET', { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/api/hello') sendJson(res, 200, source.hello());
    else if (path === '/api/history') await sendHistory(req, res, method, url);
    else if (path === '/api/stream') {
      if (method === 'HEAD') {
        res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
        res.end();
      } else stream(req, res, url);
    }
    else {
      const file = page.get(path === '/' ? '/index.html' : path);
      if (!file) {
        fail(res, 404, `no such path ${path}`);
        return;
      }
      res.writeHead(200, {
        ...COMMON_HEADERS,
        'content-type': file.type,
        'content-length': file.body.length,
        'cache-control': 'no-cache',
        'content-security-policy': PAGE_POLICY,
      });
      res.end(method === 'HEAD' ? undefined : file.body);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) fail(res, 500, error instanceof Error ? error.message : String(error));
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  const unsubscribe = source.subscribe((frame: UiFrame) => {
    // A frame that cannot be sent (not JSON) is skipped here rather than thrown into the source's loop.
    try {
      for (const client of clients) client.send(frame);
    } catch {
      // The history answer shows the same frame's fault (500) to whoever asks.
    }
  });
  const pinger = setInterval(() => {
    for (const client of clients) client.ping();
  }, options.pingIntervalMs ?? 15_000);
  pinger.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    clearInterval(pinger);
    unsubscribe();
    throw error;
  }
  port = (server.address() as AddressInfo).port;
  allowed = allowedHosts();
  const shownHost = WILDCARD_HOSTS.has(host) ? '127.0.0.1' : hostForUrl(host);

  return {
    url: `http://${shownHost}:${port}/`,
    stats: () => {
      let bufferedBytes = 0;
      let coalescedFrames = 0;
      for (const client of clients) {
        bufferedBytes += client.bufferedBytes;
        coalescedFrames += client.coalesced;
      }
      return { clients: clients.size, bufferedBytes, coalescedFrames, refusedStreams };
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(pinger);
        unsubscribe();
        for (const client of clients) client.close();
        clients.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
