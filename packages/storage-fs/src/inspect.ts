import { isConsensusError } from '@consensus-kit/core';
import { HARD_STATE_FILE, TMP_SUFFIX, decodeHardStateFile, pointBefore, type DataDirIdentity, type DurablePoint } from './atomic-file';
import { errorCode, nodeFileSystem, readAllSync, readWholeFile, type FileSystem } from './file-system';
import { LOCK_FILE, parseLock } from './lock';
import { processRunning } from './process-identity';
import { RecordKind, scanSegment } from './record';
import { reconcile } from './reconcile';
import { durableShortfall, laterPoint } from './recovery';
import { DURABLE_FILE, decodeDurableFile } from './durable-file';
import { Replayer } from './replay';
import { parseSegmentFileName, segmentFileName } from './segment';
import { parseSnapshotFileName, readSnapshotChunks, readSnapshotMeta } from './snapshot-file';

export interface InspectSegment {
  file: string;
  seq: number;
  /** The file's size. */
  bytes: number;
  /** Zeros after the last record: space preallocated for writes to come (part of `bytes`). */
  preallocatedBytes: number;
  /** Intact records, the segment header included. */
  records: number;
  /** ENTRY and OVERWRITE records. */
  entryRecords: number;
  /** OVERWRITE records among them: an entry written over an existing index (DESIGN r2). */
  overwrites: number;
  /** Index range of the entry records in this file (some may be superseded by later records). */
  firstEntryIndex?: number;
  lastEntryIndex?: number;
  truncations: number;
  compactions: number;
  resets: number;
  /** Where reading stopped, if it did: a torn tail (recovery truncates it) or corruption (recovery refuses). */
  problem?: { offset: number; reason: string; kind: 'torn-tail' | 'corrupt' };
}

export interface InspectSnapshot {
  file: string;
  index: number;
  term: number;
  dataBytes?: number;
  voters?: string[];
  ok: boolean;
  error?: string;
}

export interface InspectReport {
  dir: string;
  /** True when every checksum holds and recovery would open the directory without cutting anything. */
  ok: boolean;
  lock?: { pid?: number; alive: boolean };
  hardState?: { bytes: number; ok: boolean; error?: string };
  /**
   * The durable point the hard-state file records: the WAL was fsynced through `offset` of `file`, with the
   * log ending at `lastIndex` (term `lastTerm`). A WAL that ends below it lost records the node may have
   * acknowledged: the next open refuses (`LostWalError`).
   */
  durable?: { file: string; offset: number; lastIndex: number; lastTerm: number };
  /** Who the directory belongs to, as its hard-state file records it. */
  identity?: DataDirIdentity;
  snapshots: InspectSnapshot[];
  segments: InspectSegment[];
  /** The live log as recovery would rebuild it from the segments (before reconciling with the snapshot). */
  log: { firstIndex: number; lastIndex: number; baseTerm: number; baseKnown: boolean };
  leftoverTempFiles: string[];
  problems: string[];
}

export interface InspectOptions {
  fileSystem?: FileSystem;
}

function message(e: unknown): string {
  return isConsensusError(e) || e instanceof Error ? e.message : String(e);
}

/**
 * Reads a data directory without changing it and verifies every checksum: segments (index ranges, record
 * counts, where a torn tail or corruption sits), hard state, snapshots, lock holder. Never throws for damage:
 * it is listed in `problems`.
 */
export async function inspect(dir: string, options: InspectOptions = {}): Promise<InspectReport> {
  const fsys = options.fileSystem ?? nodeFileSystem();
  const problems: string[] = [];
  let names: string[];
  try {
    names = await fsys.readdir(dir);
  } catch (e) {
    return {
      dir,
      ok: false,
      snapshots: [],
      segments: [],
      log: { firstIndex: 1, lastIndex: 0, baseTerm: 0, baseKnown: true },
      leftoverTempFiles: [],
      problems: [`cannot read directory: ${errorCode(e) ?? message(e)}`],
    };
  }
  names.sort();
  const report: InspectReport = {
    dir,
    ok: true,
    snapshots: [],
    segments: [],
    log: { firstIndex: 1, lastIndex: 0, baseTerm: 0, baseKnown: true },
    leftoverTempFiles: names.filter((n) => n.endsWith(TMP_SUFFIX)),
    problems,
  };

  const lockBytes = await readWholeFile(fsys, fsys.join(dir, LOCK_FILE));
  if (lockBytes !== undefined) {
    const holder = parseLock(lockBytes);
    report.lock = holder === undefined ? { alive: false } : { pid: holder.pid, alive: processRunning(holder.pid, holder.identity) };
  }

  const hsPath = fsys.join(dir, HARD_STATE_FILE);
  const hsBytes = await readWholeFile(fsys, hsPath);
  let durable: DurablePoint | undefined;
  if (hsBytes !== undefined) {
    try {
      const hs = decodeHardStateFile(hsBytes, hsPath);
      report.hardState = { bytes: hsBytes.length, ok: true };
      durable = hs.durable;
      if (hs.identity !== undefined) report.identity = hs.identity;
    } catch (e) {
      report.hardState = { bytes: hsBytes.length, ok: false, error: message(e) };
      problems.push(message(e));
    }
  }

  // The durable point: the later of the hard state's and the durable-point file's (as recovery takes it).
  const dfBytes = await readWholeFile(fsys, fsys.join(dir, DURABLE_FILE));
  if (dfBytes === undefined && report.hardState?.ok === true && hsBytes !== undefined && decodeHardStateFile(hsBytes, hsPath).version === 2) {
    problems.push(`${DURABLE_FILE} is missing (deleted?); the next open warns and recreates it`);
  }
  if (dfBytes !== undefined) {
    const df = decodeDurableFile(dfBytes);
    durable = laterPoint(durable, df.point);
    if (df.problem !== undefined) problems.push(`${DURABLE_FILE}: ${df.problem}; the next open warns and checks the WAL against an older durable point`);
  }
  if (durable !== undefined) {
    report.durable = { file: segmentFileName(durable.seq), offset: durable.end, lastIndex: durable.lastIndex, lastTerm: durable.lastTerm };
  }

  /** Whether each readable snapshot file was installed from a leader (recovery's reconciliation needs it). */
  const installed = new Map<string, boolean>();
  for (const name of names) {
    const parsed = parseSnapshotFileName(name);
    if (parsed === undefined) continue;
    const path = fsys.join(dir, name);
    const entry: InspectSnapshot = { file: name, index: parsed.index, term: parsed.term, ok: true };
    try {
      const file = await fsys.open(path, 'read');
      try {
        const { meta } = readSnapshotMeta(file, path);
        installed.set(name, meta.installed);
        entry.dataBytes = meta.dataBytes;
        entry.voters = meta.config.voters;
        for (const _ of readSnapshotChunks(file, path)) {
          // every chunk verified
        }
      } finally {
        await file.close();
      }
    } catch (e) {
      entry.ok = false;
      entry.error = message(e);
      problems.push(message(e));
    }
    report.snapshots.push(entry);
  }

  const seqs = names
    .map(parseSegmentFileName)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  for (let k = 1; k < seqs.length; k++) {
    if (seqs[k] !== (seqs[k - 1] as number) + 1) problems.push(`segment ${(seqs[k - 1] as number) + 1} is missing`);
  }
  const replayer = new Replayer(seqs[0] ?? 1);
  const goodEnds = new Map<number, number>();
  for (let k = 0; k < seqs.length; k++) {
    const seq = seqs[k] as number;
    const name = segmentFileName(seq);
    const file = await fsys.open(fsys.join(dir, name), 'read');
    let buf: Uint8Array;
    try {
      buf = readAllSync(file);
    } finally {
      await file.close();
    }
    const scan = scanSegment(buf, seq);
    const seg: InspectSegment = {
      file: name,
      seq,
      bytes: buf.length,
      preallocatedBytes: scan.preallocated,
      records: scan.records.length,
      entryRecords: 0,
      overwrites: 0,
      truncations: 0,
      compactions: 0,
      resets: 0,
    };
    for (const r of scan.records) {
      replayer.apply(seq, r);
      if (r.kind === RecordKind.ENTRY || r.kind === RecordKind.OVERWRITE) {
        seg.entryRecords++;
        if (r.kind === RecordKind.OVERWRITE) seg.overwrites++;
        seg.firstEntryIndex = Math.min(seg.firstEntryIndex ?? r.index, r.index);
        seg.lastEntryIndex = Math.max(seg.lastEntryIndex ?? r.index, r.index);
      } else if (r.kind === RecordKind.TRUNCATE) seg.truncations++;
      else if (r.kind === RecordKind.COMPACT) seg.compactions++;
      else if (r.kind === RecordKind.RESET) seg.resets++;
    }
    const head = scan.records[0];
    if (head !== undefined && (head.kind !== RecordKind.SEGMENT || head.index !== seq)) {
      problems.push(`${name}: does not start with its segment header`);
    }
    goodEnds.set(seq, scan.goodEnd);
    const prevEnd = goodEnds.get(seq - 1);
    if (head?.prevEnd !== undefined && head.prevEnd > 0 && prevEnd !== undefined && prevEnd < head.prevEnd) {
      problems.push(
        `${segmentFileName(seq - 1)}: DURABLE RECORDS LOST: its records end at offset ${prevEnd}, but ${name} records that they ended at ${head.prevEnd}; the next open refuses to start`,
      );
    }
    const below = durable !== undefined && scan.failure !== undefined && pointBefore({ seq, end: scan.failure.offset }, durable);
    if (scan.failure !== undefined) {
      const torn = k === seqs.length - 1 && !scan.laterWriteFollows && !below;
      seg.problem = { offset: scan.failure.offset, reason: scan.failure.reason, kind: torn ? 'torn-tail' : 'corrupt' };
      if (torn) {
        problems.push(`${name}: torn tail at offset ${scan.failure.offset} (${scan.failure.reason}); the next open truncates it`);
      } else {
        const why = below ? `${scan.failure.reason}, below the durable point: fsynced records are lost` : scan.failure.reason;
        problems.push(`${name}: CORRUPT record at offset ${scan.failure.offset} (${why}); the next open refuses to start`);
      }
    }
    report.segments.push(seg);
  }
  const lastSeq = seqs.at(-1) ?? 0;
  const short = durableShortfall(durable, goodEnds, lastSeq);
  if (short !== undefined && durable !== undefined) {
    const failed = report.segments.find((s) => s.seq === short.seq)?.problem !== undefined;
    if (short.missing) {
      problems.push(
        `${segmentFileName(short.seq)} is MISSING: the WAL ${lastSeq === 0 ? 'has no segment' : `ends in ${segmentFileName(lastSeq)}`}, but it was durable ` +
          `through offset ${durable.end} of ${segmentFileName(durable.seq)} (index ${durable.lastIndex}): durable records are lost; the next open refuses to start`,
      );
    } else if (!failed) {
      problems.push(
        `${segmentFileName(short.seq)}: DURABLE RECORDS LOST: its intact records end at offset ${short.offset}, below the durable point (offset ${durable.end}, ` +
          `index ${durable.lastIndex}); the next open refuses to start`,
      );
    }
  }
  const ix = replayer.index;
  report.log = { firstIndex: ix.first, lastIndex: ix.last, baseTerm: ix.baseTerm, baseKnown: replayer.resolved };
  // Recovery reconciles the log with the newest snapshot (a damaged newest snapshot is listed above already).
  const newest = [...report.snapshots].sort((a, b) => b.index - a.index || b.term - a.term)[0];
  if (newest === undefined || newest.ok) {
    const snap = newest === undefined ? undefined : { index: newest.index, term: newest.term, installed: installed.get(newest.file) === true };
    const reconciled = reconcile(replayer, snap);
    if (reconciled.kind === 'problem') problems.push(`${reconciled.message}; the next open refuses to start`);
  }
  if (hsBytes === undefined && (ix.last > 0 || report.snapshots.length > 0)) {
    problems.push(`${HARD_STATE_FILE} is missing, but the log holds entries up to ${ix.last}: the node's term and vote are lost; the next open refuses to start`);
  }
  if (report.leftoverTempFiles.length > 0) {
    problems.push(`leftover temporary files (an interrupted atomic write; removed on open): ${report.leftoverTempFiles.join(', ')}`);
  }
  report.ok =
    problems.length === 0 ||
    problems.every((p) => p.startsWith('leftover temporary files'));
  return report;
}

/** A stable, human-readable rendering of an `InspectReport` (used by `consensus-cli inspect`). */
export function describeInspectReport(report: InspectReport): string {
  const lines: string[] = [];
  lines.push(`data directory ${report.dir}: ${report.ok ? 'OK' : 'PROBLEMS FOUND'}`);
  if (report.lock !== undefined) {
    lines.push(`lock: held by pid ${report.lock.pid ?? '?'} (${report.lock.alive ? 'running' : 'not running: stale'})`);
  } else {
    lines.push('lock: free');
  }
  if (report.hardState === undefined) lines.push('hard state: none');
  else lines.push(`hard state: ${report.hardState.bytes} bytes, ${report.hardState.ok ? 'checksum ok' : `BAD: ${report.hardState.error}`}`);
  if (report.identity !== undefined) {
    lines.push(`identity: node ${report.identity.nodeId} of cluster ${report.identity.clusterId} (incarnation ${report.identity.incarnation})`);
  }
  if (report.durable !== undefined) {
    const d = report.durable;
    lines.push(`durable point: ${d.file} offset ${d.offset}, index ${d.lastIndex} term ${d.lastTerm}`);
  }
  if (report.snapshots.length === 0) lines.push('snapshots: none');
  for (const s of report.snapshots) {
    const size = s.dataBytes === undefined ? '' : `, ${s.dataBytes} bytes`;
    const voters = s.voters === undefined ? '' : `, voters ${s.voters.join(',')}`;
    lines.push(`snapshot ${s.file}: index ${s.index} term ${s.term}${size}${voters}, ${s.ok ? 'checksums ok' : `BAD: ${s.error}`}`);
  }
  if (report.segments.length === 0) lines.push('segments: none');
  for (const s of report.segments) {
    const range = s.firstEntryIndex === undefined ? 'no entries' : `entries ${s.firstEntryIndex}..${s.lastEntryIndex}`;
    const extra = [
      s.overwrites > 0 ? `${s.overwrites} overwrites` : '',
      s.truncations > 0 ? `${s.truncations} truncations` : '',
      s.compactions > 0 ? `${s.compactions} compactions` : '',
      s.resets > 0 ? `${s.resets} snapshot installs` : '',
      s.preallocatedBytes > 0 ? `${s.preallocatedBytes} bytes preallocated` : '',
    ].filter(Boolean);
    const state = s.problem === undefined ? 'checksums ok' : `${s.problem.kind === 'torn-tail' ? 'torn tail' : 'CORRUPT'} at offset ${s.problem.offset}: ${s.problem.reason}`;
    lines.push(`segment ${s.file}: ${s.bytes} bytes, ${s.records} records, ${range}${extra.length > 0 ? `, ${extra.join(', ')}` : ''}; ${state}`);
  }
  const log = report.log;
  lines.push(
    log.lastIndex < log.firstIndex
      ? `log: empty, next index ${log.firstIndex}${log.baseKnown ? '' : ' (base unknown)'}`
      : `log: indexes ${log.firstIndex}..${log.lastIndex} (base term ${log.baseTerm}${log.baseKnown ? '' : ', base unknown'})`,
  );
  for (const p of report.problems) lines.push(`problem: ${p}`);
  return lines.join('\n');
}
