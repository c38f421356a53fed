import type { Logger, NodeId } from '@consensus-kit/core';
import { tcpTransport, type TcpTransport, type TcpTransportOptions } from '../transport';
import { collector, type Collector } from '@consensus-kit/core/testing';

/** A logger that keeps every line, for tests that check what was logged. */
export interface MemoryLogger extends Logger {
  readonly lines: Array<{ level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> | undefined }>;
  /** Lines whose `fields.code` equals `code`. */
  withCode(code: string): MemoryLogger['lines'];
}

export function memoryLogger(): MemoryLogger {
  const lines: MemoryLogger['lines'] = [];
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
    lines.push({ level, msg, fields });
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    withCode: (code) => lines.filter((l) => l.fields?.code === code),
  };
}

export interface TcpCluster {
  transports: Record<NodeId, TcpTransport>;
  handlers: Record<NodeId, Collector>;
  /** 'host:port' of each node. */
  endpoints: Record<NodeId, string>;
  stop(): Promise<void>;
}

/**
 * Starts one started tcpTransport per id on 127.0.0.1 with ephemeral ports, wired to each other, each with a
 * `collector()` handler. `options(id)` adds per-node options.
 */
export async function startTcpCluster(
  ids: NodeId[],
  clusterId = 'test-cluster',
  options: (id: NodeId) => Partial<TcpTransportOptions> = () => ({}),
): Promise<TcpCluster> {
  const transports: Record<NodeId, TcpTransport> = {};
  const handlers: Record<NodeId, Collector> = {};
  const endpoints: Record<NodeId, string> = {};
  try {
    for (const id of ids) {
      transports[id] = tcpTransport({ id, clusterId, listen: { host: '127.0.0.1', port: 0 }, peers: {}, ...options(id) });
      handlers[id] = collector();
      await transports[id].start(handlers[id]);
      endpoints[id] = transports[id].endpoint();
    }
    for (const id of ids) transports[id]!.setPeers(endpoints);
  } catch (e) {
    for (const t of Object.values(transports)) await t.stop();
    throw e;
  }
  return {
    transports,
    handlers,
    endpoints,
    async stop() {
      for (const t of Object.values(transports)) await t.stop();
    },
  };
}
