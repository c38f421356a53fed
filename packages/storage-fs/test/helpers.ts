import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@consensus-kit/core';

export type RecordingLogger = Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] };

/** A logger that keeps what it was told, for tests that check warnings and errors. */
export function recordingLogger(): RecordingLogger {
  const lines: RecordingLogger['lines'] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, ...(fields ? { fields } : {}) });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Temp directories made by `make()`, removed by `cleanup()` (call it from `afterEach`). */
export function tempDirs(prefix: string): { make(): Promise<string>; cleanup(): Promise<void> } {
  const dirs: string[] = [];
  return {
    async make() {
      const d = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    async cleanup() {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}
