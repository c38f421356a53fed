import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The one data-driven scenario runner (after cockroachdb/datadriven, which etcd/raft uses), for every
 * protocol's `testdata/*.txt`:
 *
 *   # comments and a header describing the scenario (which paper section it follows)
 *   command arg key=value
 *   ----
 *   expected output lines
 *   (blank line ends the expected output)
 *
 * `runDataDriven` runs each command through `run` and returns expected and actual output side by side; the
 * caller asserts with its own test runner (so this file needs none). Expected outputs are never rewritten
 * automatically: only with `rewrite: true`, or `REWRITE=1` in the environment, is the file rewritten with the
 * actual outputs, for the author to review as a diff.
 */
export interface DataDrivenCommand {
  /** 1-based line of the command in the file. */
  line: number;
  name: string;
  /** Positional arguments (words without `=`). */
  args: string[];
  /** `key=value` arguments. */
  kv: Record<string, string>;
  /** The command line as written. */
  raw: string;
}

export interface DataDrivenResult {
  command: DataDrivenCommand;
  expected: string;
  actual: string;
}

export interface DataDrivenOptions {
  /** Rewrite the file with the actual outputs. Default: `process.env.REWRITE === '1'`. */
  rewrite?: boolean;
}

interface Block {
  command: DataDrivenCommand;
  expected: string;
  /** Text that precedes the command (comments, blank lines), preserved on rewrite. */
  prefix: string;
}

/** Splits one command line into name, positional arguments and `key=value` arguments. */
export function parseDataDrivenCommand(raw: string, line: number): DataDrivenCommand {
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
    const command = parseDataDrivenCommand(l, i + 1);
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

/**
 * Runs a scenario file: each command's output (trailing whitespace trimmed, `ok` when empty, `error: <message>`
 * when it throws) next to the expected text. Rewrites the file only when asked (see `DataDrivenOptions`).
 */
export function runDataDriven(file: string, run: (cmd: DataDrivenCommand) => string, options: DataDrivenOptions = {}): DataDrivenResult[] {
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
  const rewrite = options.rewrite ?? (typeof process !== 'undefined' && process.env.REWRITE === '1');
  if (rewrite) {
    let text = '';
    blocks.forEach((b, k) => {
      text += `${b.prefix}${b.command.raw}\n----\n${(results[k] as DataDrivenResult).actual}\n`;
    });
    text += trailer.replace(/\n+$/, '');
    writeFileSync(file, `${text.replace(/\n+$/, '')}\n`);
  }
  return results;
}
