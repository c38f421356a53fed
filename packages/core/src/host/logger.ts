import type { Logger } from '../types';

const noop = () => undefined;

/** Discards everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** One line per record on stderr: `<ISO time> level [name] msg key=value ...`. */
export function consoleLogger(name: string, level: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const;
  const min = order[level];
  const line = (lvl: keyof typeof order) => (msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < min) return;
    const kv = fields === undefined ? '' : ` ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`;
    process.stderr.write(`${new Date().toISOString()} ${lvl} [${name}] ${msg}${kv}\n`);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}
