import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A tiny data-driven test format (after cockroachdb/datadriven, used by etcd/raft):
 *
 *   # comments and a header describing the scenario
 *   command arg key=value
 *   ----
 *   expected output lines
 *   (blank line ends the expected output)
 *
 * `runDataDriven` runs each command through `run` and compares its output with the expected text. With
 * REWRITE=1 in the environment the file is rewritten with the actual outputs instead (never automatically).
 */
export interface Command {
  line: number;
  name: string;
  args: string[];
  kv: Record<string, string>;
  raw: string;
}

interface Block {
  command: Command;
  expected: string;
  /** Text that precedes the command (comments, blank lines), preserved on rewrite. */
  prefix: string;
}

function parseCommand(raw: string, line: number): Command {
  const words = raw.trim().split(/\s+/);
  const name = words.shift() as string;
  const args: string[] = [];
  const kv: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) kv[w.slice(0, eq)] = w.slice(eq + 1);
    else args.push(w);
  }
  return { line, name, args, kv, raw: raw.trim() };
}

function parse(text: string, file: string): { blocks: Block[]; trailer: string } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let prefix = '';
  let i = 0;
  while (i < lines.length) {
    const l = lines[i] as string;
    if (l.trim() === '' || l.startsWith('#')) {
      prefix += `${l}\n`;
      i++;
      continue;
    }
    const command = parseCommand(l, i + 1);
    i++;
    if (lines[i] !== '----') throw new Error(`${file}:${i + 1}: expected ---- after command "${command.raw}"`);
    i++;
    const out: string[] = [];
    while (i < lines.length && (lines[i] as string).trim() !== '') {
      out.push(lines[i] as string);
      i++;
    }
    blocks.push({ command, expected: out.join('\n'), prefix });
    prefix = '';
  }
  return { blocks, trailer: prefix };
}

export interface DataDrivenResult {
  command: Command;
  expected: string;
  actual: string;
}

/** Runs a scenario file; returns every block's expected and actual output (rewriting the file if asked). */
export function runDataDriven(file: string, run: (cmd: Command) => string): DataDrivenResult[] {
  const { blocks, trailer } = parse(readFileSync(file, 'utf8'), file);
  const results: DataDrivenResult[] = [];
  for (const b of blocks) {
    let actual: string;
    try {
      actual = run(b.command).trimEnd();
    } catch (e) {
      actual = `error: ${(e as Error).message}`;
    }
    if (actual === '') actual = 'ok';
    results.push({ command: b.command, expected: b.expected, actual });
  }
  if (process.env.REWRITE === '1') {
    let text = '';
    blocks.forEach((b, k) => {
      text += `${b.prefix}${b.command.raw}\n----\n${(results[k] as DataDrivenResult).actual}\n`;
    });
    text += trailer.replace(/\n+$/, '');
    writeFileSync(file, `${text.replace(/\n+$/, '')}\n`);
  }
  return results;
}
