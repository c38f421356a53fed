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
