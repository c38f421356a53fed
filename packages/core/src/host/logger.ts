import type { Logger } from '../types';

const noop = () => undefined;

/** Discards everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

const ORDER = { debug: 0, info: 1, warn: 2, error: 3 } as const;

/**
 * A value as logfmt writes it: bare when it is a plain word, else in double quotes with `"` and `\` escaped and
 * control characters written as escapes, so a value with a space, a quote or `=` cannot be misread as the
 * start of another field. Non-string values are written as JSON first.
 */
export function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : v instanceof Error ? v.message : (JSON.stringify(v) ?? String(v));
  if (s !== '' && !/[\s"=\\\p{Cc}]/u.test(s)) return s;
  return JSON.stringify(s);
}

/** One record as a JSON line: `{"level","time","node","msg",...fields}` (pino's shape, level as its name). */
export function jsonLogLine(level: LogLevel, name: string, msg: string, fields?: Record<string, unknown>, time = new Date()): string {
  const record: Record<string, unknown> = { level, time: time.toISOString(), node: name };
  if (fields !== undefined) for (const [k, v] of Object.entries(fields)) if (!(k in record)) record[k] = v instanceof Error ? v.message : v;
  record.msg = msg;
  return `${JSON.stringify(record)}\n`;
}

/** One record as a text line: `<ISO time> level [name] msg key=value ...`, the values logfmt-quoted. */
export function textLogLine(level: LogLevel, name: string, msg: string, fields?: Record<string, unknown>, time = new Date()): string {
  let kv = '';
  if (fields !== undefined) for (const [k, v] of Object.entries(fields)) kv += ` ${k}=${logfmtValue(v)}`;
  return `${time.toISOString()} ${level} [${name}] ${msg}${kv}\n`;
}

/**
 * One line per record on stderr, as text (`<ISO time> level [name] msg key=value ...`, values logfmt-quoted) or
 * as JSON (`format: 'json'`). The environment wins over the arguments, so an operator chooses without code:
 * `CONSENSUS_LOG_FORMAT` (text | json) and `CONSENSUS_LOG_LEVEL` (debug | info | warn | error); an unknown value
 * there is ignored.
 */
export function consoleLogger(name: string, level: LogLevel = 'info', options: { format?: LogFormat } = {}): Logger {
  const envLevel = process.env.CONSENSUS_LOG_LEVEL;
  const envFormat = process.env.CONSENSUS_LOG_FORMAT;
  const min = ORDER[envLevel !== undefined && envLevel in ORDER ? (envLevel as LogLevel) : level];
  const format: LogFormat = envFormat === 'json' || envFormat === 'text' ? envFormat : (options.format ?? 'text');
  const render = format === 'json' ? jsonLogLine : textLogLine;
  const line = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    process.stderr.write(render(lvl, name, msg, fields));
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}
