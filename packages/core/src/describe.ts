import { decodeClusterConfig } from './config';
import type { ClusterConfig, Envelope, LogEntry, Ready, Snapshot, Status } from './types';

/**
 * Stable one-line renderings used by tests, scenario scripts, simulator traces and the CLI. The format is part
 * of the test surface: change it only together with the scenario files that quote it.
 */

export function describeConfig(config: ClusterConfig): string {
  let s = `voters=(${config.voters.join(' ')})`;
  if (config.outgoing !== undefined) s += `&&(${config.outgoing.join(' ')})`;
  if (config.learners.length > 0) s += ` learners=(${config.learners.join(' ')})`;
  return s;
}

/** `3/2 command 5B`, `4/2 noop`, `5/2 config voters=(a b c)`. */
export function describeEntry(entry: LogEntry): string {
  const head = `${entry.index}/${entry.term} ${entry.type}`;
  switch (entry.type) {
    case 'noop':
      return head;
    case 'config':
      try {
        return `${head} ${describeConfig(decodeClusterConfig(entry.data))}`;
      } catch {
        return `${head} <malformed ${entry.data.length}B>`;
      }
    default:
      return `${head} ${entry.data.length}B`;
  }
}

export function describeEntries(entries: readonly LogEntry[]): string {
  return `[${entries.map(describeEntry).join(', ')}]`;
}

function isLogEntry(v: unknown): v is LogEntry {
  return typeof v === 'object' && v !== null && 'index' in v && 'term' in v && 'type' in v && 'data' in v;
}

/** A compact, stable rendering of any message field. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `<${value.length}B>`;
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every(isLogEntry)) return describeEntries(value);
    return `[${value.map(describeValue).join(' ')}]`;
  }
  if (typeof value === 'object') {
    if (isLogEntry(value)) return describeEntry(value);
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${describeValue(v)}`);
    return `{${parts.join(' ')}}`;
  }
  if (typeof value === 'string') return /^[^\s{}[\]=]+$/.test(value) ? value : JSON.stringify(value);
  return String(value);
}

/** `AppendEntries term=2 prevIndex=3 ...`: the `type` tag first, then the fields in their own order. */
export function describeMessage(msg: unknown): string {
  if (typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string') {
    const { type, ...rest } = msg as { type: string } & Record<string, unknown>;
    const fields = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${describeValue(v)}`);
    return fields.length === 0 ? type : `${type} ${fields.join(' ')}`;
  }
  return describeValue(msg);
}

/** `a->b AppendEntries term=2 ...` */
export function describeEnvelope(envelope: Envelope): string {
  return `${envelope.from}->${envelope.to} ${describeMessage(envelope.msg)}`;
}

export function describeSnapshot(snapshot: Snapshot): string {
  return `snapshot ${snapshot.index}/${snapshot.term} ${describeConfig(snapshot.config)} ${snapshot.data.length}B`;
}

/**
 * `a leader term=3 leader=a commit=10 applied=10 last=10 voters=(a b c)`, then the protocol's `details`, if
 * any, as `key=value` in key order (`transferringTo=b progress={b=replicate:10 c=probe:4}`). Core prints the
 * details but never interprets them: they belong to the protocol (DESIGN r2).
 */
export function describeStatus(status: Status): string {
  const parts = [
    status.id,
    status.role,
    `term=${status.term}`,
    `leader=${status.leader ?? '-'}`,
    `commit=${status.commitIndex}`,
    `applied=${status.appliedIndex}`,
    `last=${status.lastIndex}`,
    describeConfig(status.config),
  ];
  if (status.details !== undefined) {
    for (const key of Object.keys(status.details).sort()) {
      const value = status.details[key];
      if (value !== undefined) parts.push(`${key}=${describeValue(value)}`);
    }
  }
  return parts.join(' ');
}

/** One line per Ready: only the parts that are present. */
export function describeReady(ready: Ready): string {
  const parts: string[] = ['Ready'];
  if (ready.hardState !== undefined) parts.push(`hardState=<${ready.hardState.length}B>`);
  if (ready.snapshot !== undefined) parts.push(describeSnapshot(ready.snapshot));
  if (ready.truncateAfter !== undefined) parts.push(`truncateAfter=${ready.truncateAfter}`);
  if (ready.entries.length > 0) parts.push(`entries=${describeEntries(ready.entries)}`);
  if (ready.committed.length > 0) parts.push(`committed=${describeEntries(ready.committed)}`);
  if (ready.messages.length > 0) parts.push(`messages=${ready.messages.length}`);
  if (ready.reads.length > 0) parts.push(`reads=[${ready.reads.map((r) => `${describeValue(r.ctx)}@${r.index}`).join(' ')}]`);
  if (ready.status !== undefined) parts.push(`status=(${describeStatus(ready.status)})`);
  return parts.join(' ');
}
