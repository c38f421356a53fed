import { ConfigError } from '@consensus-kit/core';
import { DEFAULT_LIMITS, type ConnectionLimits } from './connection';
import { MAX_FRAME_SIZE_LIMIT } from './frame';

/** TLS material, PEM strings or buffers (node:tls). */
export interface TlsOptions {
  /** This side's certificate chain (servers always; clients for mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Trusted CA(s) for the other side's certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Acceptors require and verify a client certificate (mutual TLS). Default false. */
  mutual?: boolean;
  /** Dialers: the name to check the server certificate against, when dialing by IP with a DNS-only cert. */
  servername?: string;
}

export interface LimitOptions {
  maxFrameSize?: number;
  maxMessageSize?: number;
  partSize?: number;
  maxQueueBytes?: number;
  maxQueueMessages?: number;
  /** Close a connection whose socket has not drained for this long (default 10 s). */
  stallTimeoutMs?: number;
}

function positiveInt(v: unknown, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > max) {
    throw new ConfigError(`${name} must be a positive integer of at most ${max}, got ${String(v)}`);
  }
  return v;
}

export function resolveLimits(o: LimitOptions): ConnectionLimits {
  const maxFrameSize = positiveInt(o.maxFrameSize, 'maxFrameSize', DEFAULT_LIMITS.maxFrameSize, MAX_FRAME_SIZE_LIMIT);
  const partSize = positiveInt(o.partSize, 'partSize', Math.min(DEFAULT_LIMITS.partSize, maxFrameSize));
  if (partSize > maxFrameSize) throw new ConfigError(`partSize (${partSize}) must not exceed maxFrameSize (${maxFrameSize})`);
  if (partSize < 64) throw new ConfigError(`partSize must be at least 64 bytes, got ${partSize}`);
  const maxMessageSize = positiveInt(o.maxMessageSize, 'maxMessageSize', DEFAULT_LIMITS.maxMessageSize, 0xffff_ffff);
  const maxQueueBytes = positiveInt(o.maxQueueBytes, 'maxQueueBytes', Math.max(DEFAULT_LIMITS.maxQueueBytes, maxMessageSize + 1024 * 1024));
  const maxQueueMessages = positiveInt(o.maxQueueMessages, 'maxQueueMessages', DEFAULT_LIMITS.maxQueueMessages);
  const stallTimeoutMs = positiveInt(o.stallTimeoutMs, 'stallTimeoutMs', DEFAULT_LIMITS.stallTimeoutMs);
  return { maxFrameSize, maxMessageSize, partSize, maxQueueBytes, maxQueueMessages, stallTimeoutMs };
}

/** What a listener admits: client and handshake slots, per-address caps, idle clients, buffered requests. */
export interface ServerLimitOptions {
  /**
   * Client connections held at most (default 1024). Peers are not counted: a known peer (authenticated by the
   * cluster secret when there is one) always gets its connection, so clients can never lock peers out.
   */
  maxConnections?: number;
  /** Client connections held at most from one remote IP address (default 128). */
  maxConnectionsPerAddress?: number;
  /**
   * Connections still in their handshake (default 256). When a new one arrives and all are taken, the oldest
   * is closed: silent sockets cannot keep a peer or a client from getting through.
   */
  maxHandshakes?: number;
  /**
   * A client connection with no request in flight that sends nothing for this long is closed, also one that
   * stopped in the middle of sending a request (default 120000 ms; the check runs every `clientIdleTimeoutMs`,
   * so closing takes up to twice that).
   */
  clientIdleTimeoutMs?: number;
  /**
   * Bytes of client requests buffered node-wide, in partial frames and split requests being reassembled
   * (default max(128 MiB, maxMessageSize + maxFrameSize)). A connection that needs more waits, not read,
   * until bytes are released. Must be at least maxMessageSize + maxFrameSize.
   */
  maxInboundBytes?: number;
}

export interface ServerLimits {
  maxClients: number;
  maxClientsPerAddress: number;
  maxHandshakes: number;
  clientIdleTimeoutMs: number;
  maxInboundBytes: number;
}

export const DEFAULT_SERVER_LIMITS = {
  maxConnections: 1024,
  maxConnectionsPerAddress: 128,
  maxHandshakes: 256,
  clientIdleTimeoutMs: 120_000,
  maxInboundBytes: 128 * 1024 * 1024,
} as const;

export function resolveServerLimits(o: ServerLimitOptions, limits: ConnectionLimits): ServerLimits {
  const d = DEFAULT_SERVER_LIMITS;
  const least = limits.maxMessageSize + limits.maxFrameSize;
  const maxInboundBytes = positiveInt(o.maxInboundBytes, 'maxInboundBytes', Math.max(d.maxInboundBytes, least));
  if (maxInboundBytes < least) {
    throw new ConfigError(`maxInboundBytes (${maxInboundBytes}) must hold one largest message and a frame: at least maxMessageSize + maxFrameSize = ${least}`);
  }
  return {
    maxClients: positiveInt(o.maxConnections, 'maxConnections', d.maxConnections),
    maxClientsPerAddress: positiveInt(o.maxConnectionsPerAddress, 'maxConnectionsPerAddress', d.maxConnectionsPerAddress),
    maxHandshakes: positiveInt(o.maxHandshakes, 'maxHandshakes', d.maxHandshakes),
    clientIdleTimeoutMs: positiveInt(o.clientIdleTimeoutMs, 'clientIdleTimeoutMs', d.clientIdleTimeoutMs, 2 ** 31 - 1),
    maxInboundBytes,
  };
}

export function positiveOption(v: unknown, name: string, fallback: number): number {
  return positiveInt(v, name, fallback);
}

/** Parses 'host:port' (IPv6 as '[::1]:port'). */
export function parseAddress(address: string): { host: string; port: number } {
  if (typeof address !== 'string') throw new ConfigError(`address must be a 'host:port' string, got ${typeof address}`);
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new ConfigError(`address must look like 'host:port', got ${JSON.stringify(address)}`);
  return { host: (m[1] ?? m[2])!, port };
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
