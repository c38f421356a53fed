import { pino } from 'pino';
import { ConfigError, type Logger } from '@consensus-kit/core';
import { consoleLogger } from '@consensus-kit/core/host';
import type { NodeConfig } from './config';

export const LOG_FORMATS = ['text', 'json'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The environment variables that choose a node's log format and level (`--log-format` / `--log-level` set them). */
export const LOG_ENV = { format: 'CONSENSUS_LOG_FORMAT', level: 'CONSENSUS_LOG_LEVEL' } as const;

/**
 * A node's log format and level: the environment (set by `--log-format` / `--log-level`, inherited by the nodes
 * `start` spawns) wins over the node config's `logFormat` / `logLevel`; the defaults are text and info. A value
 * that is neither is a `ConfigError` naming the variable.
 */
export function resolveLogOptions(config: Pick<NodeConfig, 'logFormat' | 'logLevel'>, env: NodeJS.ProcessEnv = process.env): { format: LogFormat; level: LogLevel } {
  const format = env[LOG_ENV.format] ?? config.logFormat ?? 'text';
  const level = env[LOG_ENV.level] ?? config.logLevel ?? 'info';
  if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new ConfigError(`${LOG_ENV.format} must be one of ${LOG_FORMATS.join(', ')} (got ${JSON.stringify(format)})`);
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(`${LOG_ENV.level} must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(level)})`);
  return { format: format as LogFormat, level: level as LogLevel };
}

/**
 * The logger of one node process, on stderr. JSON: one object per line through pino,
 * `{"level":"info","time":"<ISO>","node":"<id>",...fields,"msg":"..."}` (level by name, time in ISO 8601).
 * Text: `<ISO time> level [id] msg key=value ...`, each value quoted logfmt-style when it holds a space, a quote
 * or `=` (core's `consoleLogger`).
 */
export function createNodeLogger(config: Pick<NodeConfig, 'id' | 'logFormat' | 'logLevel'>, destination: number | NodeJS.WritableStream = 2): Logger {
  const { format, level } = resolveLogOptions(config);
  if (format === 'text') return consoleLogger(config.id, level, { format: 'text' });
  const log = pino(
    {
      level,
      base: { node: config.id },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous writes: a node's last lines (why it stopped) must reach the file before the process exits.
    typeof destination === 'number' ? pino.destination({ dest: destination, sync: true }) : destination,
  );
  const at = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (fields === undefined) log[lvl](msg);
    else log[lvl](fields, msg);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
