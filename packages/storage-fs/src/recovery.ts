import { CorruptLogError, StorageError, type Logger } from '@consensus-kit/core';
import { HARD_STATE_FILE, NO_DURABLE_POINT, TMP_SUFFIX, decodeHardStateFile, pointBefore, type DataDirIdentity, type DurablePoint } from './atomic-file';
import { DURABLE_FILE, decodeDurableFile } from './durable-file';
import { LostWalError } from './errors';
import { readAllSync, readWholeFile, unlinkIfExists, type FileSystem, type FsFile } from './file-system';
import type { LogIndex } from './log-index';
import { RecordKind, scanSegment } from './record';
import { reconcile } from './reconcile';
import { Replayer } from './replay';
import { parseSegmentFileName, segmentFileName, type Segment } from './segment';
import { parseSnapshotFileName, readSnapshotChunks, readSnapshotMeta, type SnapshotFileMeta } from './snapshot-file';
import type { RecoveredSnapshot } from './snapshot-store';

/** What `recover` found, handed to the storage. */
export interface Recovered {
  index: LogIndex;
  segments: Segment[];
  /** End of the intact records in the last segment: where writes go on. */
  writeEnd: number;
  hardState: Uint8Array | undefined;
  snapshot: RecoveredSnapshot;
  /** Where the recovered WAL ends: the durable point from here on. */
  durable: DurablePoint;
  /** The durable point the hard-state file records (none: `NO_DURABLE_POINT`). */
  recordedDurable: DurablePoint;
  /** The directory's identity, if its hard-state file records one. */
  identity: DataDirIdentity | undefined;
  /** The durable-point file's newest slot counter (0: none). */
  durableCounter: number;
}

/** The later of two durable points by WAL position (either may be missing; seq 0 means none). */
export function laterPoint(a: DurablePoint | undefined, b: DurablePoint | undefined): DurablePoint | undefined {
  const x = a !== undefined && a.seq > 0 ? a : undefined;
  const y = b !== undefined && b.seq > 0 ? b : undefined;
  if (x === undefined) return y;
  if (y === undefined) return x;
  return pointBefore(x, y) ? y : x;
}

/**
 * The first place where the WAL found on disk falls short of the durable point `d`, if it does; `ends` maps
 * each segment present to the end of its intact records, `last` is the newest segment present (0: none).
 * Shared by recovery and `inspect`.
 */
export function durableShortfall(
  d: DurablePoint | undefined,
  ends: ReadonlyMap<number, number>,
  last: number,
): { seq: number; offset: number; missing: boolean } | undefined {
  if (d === undefined || d.seq === 0) return undefined;
  if (last < d.seq) return { seq: last === 0 ? d.seq : last + 1, offset: 0, missing: true };
  const end = ends.get(d.seq);
  if (end !== undefined && end < d.end) return { seq: d.seq, offset: end, missing: false };
  return undefined;
}

/**
 * Recovers a data directory (the caller holds its lock): removes leftovers of interrupted atomic writes, reads
 * the hard state, verifies the newest snapshot end to end, replays the WAL segments (last writer wins per
 * index, see `Replayer`), truncates a torn tail with a warning, refuses (`CorruptLogError`) a bad record
 * anywhere before it unless `allowCut`, and reconciles the log with the snapshot (completing an interrupted
 * install: `resetTo` asks the caller to record it). Files it opens are listed in `opened` until it returns.
 */
export async function recover(
  fsys: FileSystem,
  dir: string,
  logger: Logger,
  allowCut: boolean,
  opened: FsFile[],
): Promise<{ state: Recovered; resetTo?: { index: number; term: number } }> {
  const names = await fsys.readdir(dir);

  // Leftovers of atomic writes that never reached their rename.
  let removedTmp = false;
  for (const name of names) {
    if (name.endsWith(TMP_SUFFIX)) removedTmp = (await unlinkIfExists(fsys, fsys.join(dir, name))) || removedTmp;
  }
  if (removedTmp) await fsys.syncDir(dir);

  const hardStatePath = fsys.join(dir, HARD_STATE_FILE);
  const hardStateBytes = await readWholeFile(fsys, hardStatePath);
  const hsFile = hardStateBytes === undefined ? undefined : decodeHardStateFile(hardStateBytes, hardStatePath);
  const decoded = hsFile?.data;
  // An empty payload is the marker written when the directory was created: no term or vote stored yet.
  const hardState = decoded !== undefined && decoded.length > 0 ? decoded : undefined;
  // How far the WAL was durable: nothing below it may be missing. The later of what the hard state recorded
  // (synced, when it was last written) and what the durable-point file holds (updated after every group).
  const durableFile = await readWholeFile(fsys, fsys.join(dir, DURABLE_FILE));
  const fromFile = durableFile === undefined ? undefined : decodeDurableFile(durableFile);
  const durable = laterPoint(hsFile?.durable, fromFile?.point);
  if (durableFile === undefined && hsFile?.version === 2) {
    // Created on open before any such hard state is written: it was deleted. The hard state's point still holds.
    logger.warn('the durable-point file is missing (deleted?); recovery checks the WAL against the hard state\'s point and recreates it', {
      file: fsys.join(dir, DURABLE_FILE),
    });
  }
  if (fromFile?.problem !== undefined) {
    // It only ever narrows what is checked (an older point, never a newer one): go on, but say so.
    logger.warn('the durable-point file is torn or damaged; recovery checks the WAL against the older point it still has', {
      file: fsys.join(dir, DURABLE_FILE),
      problem: fromFile.problem,
    });
  }
  const belowDurable = (seq: number, offset: number): boolean => durable !== undefined && pointBefore({ seq, end: offset }, durable);
  let cutBelowDurable = false;

  // The newest snapshot, verified end to end (chunk by chunk, so memory stays bounded).
  const snaps = names
    .map((name) => ({ name, parsed: parseSnapshotFileName(name) }))
    .filter((s): s is { name: string; parsed: { index: number; term: number } } => s.parsed !== undefined)
    .sort((a, b) => b.parsed.index - a.parsed.index || b.parsed.term - a.parsed.term);
  let snapshotMeta: SnapshotFileMeta | undefined;
  let snapshotFile: FsFile | undefined;
  let snapshotPath: string | undefined;
  const newest = snaps[0];
  if (newest !== undefined) {
    snapshotPath = fsys.join(dir, newest.name);
    snapshotFile = await fsys.open(snapshotPath, 'read');
    opened.push(snapshotFile);
    snapshotMeta = readSnapshotMeta(snapshotFile, snapshotPath).meta;
    for (const _ of readSnapshotChunks(snapshotFile, snapshotPath)) {
      // verified chunk by chunk
    }
    if (snapshotMeta.index !== newest.parsed.index || snapshotMeta.term !== newest.parsed.term) {
      throw new CorruptLogError({ file: snapshotPath, offset: 0, lastGoodIndex: 0 }, 'snapshot meta does not match its file name');
    }
  }

  // Segments must form one unbroken run of sequence numbers.
  const seqs = names
    .map(parseSegmentFileName)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  for (let k = 1; k < seqs.length; k++) {
    if (seqs[k] !== (seqs[k - 1] as number) + 1) {
      throw new CorruptLogError(
        { file: fsys.join(dir, segmentFileName((seqs[k - 1] as number) + 1)), offset: 0, lastGoodIndex: 0 },
        `segment ${(seqs[k - 1] as number) + 1} is missing between ${seqs[k - 1]} and ${seqs[k]}`,
      );
    }
  }

  const replayer = new Replayer(seqs[0] ?? 1);
  const segments: Segment[] = [];
  const goodEnds = new Map<number, number>();
  const writable = new Set<FsFile>();
  /** Removes a segment file entirely (it holds nothing intact), keeping the directory change durable. */
  const removeSegment = async (path: string, file: FsFile): Promise<void> => {
    await file.close();
    opened.splice(opened.indexOf(file), 1);
    await unlinkIfExists(fsys, path);
    await fsys.syncDir(dir);
  };
  for (let k = 0; k < seqs.length; k++) {
    const seq = seqs[k] as number;
    const name = segmentFileName(seq);
    const path = fsys.join(dir, name);
    const isLast = k === seqs.length - 1;
    const file = await fsys.open(path, isLast ? 'append' : 'read');
    opened.push(file);
    if (isLast) writable.add(file);
    const buf = readAllSync(file);
    const scan = scanSegment(buf, seq);
    const head = scan.records[0];
    if (head !== undefined && (head.kind !== RecordKind.SEGMENT || head.index !== seq)) {
      throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: replayer.index.last }, 'segment does not start with its header');
    }
    // The previous segment was sealed where this header says: records missing from its end were durable.
    const prevSeq = seq - 1;
    const prevEnd = goodEnds.get(prevSeq);
    if (head?.prevEnd !== undefined && head.prevEnd > 0 && prevEnd !== undefined && prevEnd < head.prevEnd) {
      const prevPath = fsys.join(dir, segmentFileName(prevSeq));
      const error = new LostWalError(
        { file: prevPath, offset: prevEnd, lastGoodIndex: replayer.index.last, durableIndex: Math.max(durable?.lastIndex ?? 0, replayer.index.last) },
        `the sealed segment's records end at offset ${prevEnd}, but ${name} records that they ended at ${head.prevEnd}: ` +
          `${head.prevEnd - prevEnd} bytes of durable records are missing`,
      );
      if (!allowCut) throw error;
      logger.error('CORRUPT LOG: cutting the log at the last good index as the operator asked; everything after it is DISCARDED', {
        error: error.message,
        discardedSegments: seqs.slice(k).map((s) => segmentFileName(s)),
      });
      cutBelowDurable = true;
      await file.close();
      opened.splice(opened.indexOf(file), 1);
      writable.delete(file);
      for (const s of seqs.slice(k).reverse()) {
        await unlinkIfExists(fsys, fsys.join(dir, segmentFileName(s)));
        await fsys.syncDir(dir);
      }
      seqs.length = k;
      break;
    }
    if (head === undefined && isLast && !scan.laterWriteFollows && !belowDurable(seq, 0)) {
      // The segment was being created when the process stopped: nothing in it was ever acknowledged.
      logger.warn('removing a segment whose creation was interrupted (a torn write)', { file: path, bytes: buf.length });
      await removeSegment(path, file);
      break;
    }
    for (const r of scan.records) replayer.apply(seq, r);
    // Writes go on after the last intact record; zeros after it are preallocated space (see scanSegment).
    segments.push({ seq, name, path, file, allocEnd: buf.length });
    goodEnds.set(seq, scan.goodEnd);
    if (scan.failure === undefined) {
      if (head === undefined && !belowDurable(seq, scan.goodEnd)) {
        throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: replayer.index.last }, 'segment is empty but is not the last one');
      }
      // Intact records end here (zeros or nothing after them): below the durable point, records are missing.
      if (durable === undefined || seq !== durable.seq || scan.goodEnd >= durable.end) continue;
    }
    const offset = scan.failure?.offset ?? scan.goodEnd;
    const short = belowDurable(seq, offset);
    const reason = [
      scan.failure?.reason ?? 'the intact records end here',
      ...(short ? [`below the durable point (offset ${(durable as DurablePoint).end} of ${segmentFileName((durable as DurablePoint).seq)}, index ${(durable as DurablePoint).lastIndex})`] : []),
    ].join('; ');
    if (isLast && !scan.laterWriteFollows && !short) {
      logger.warn('truncating a torn write at the tail of the log', {
        file: path,
        offset,
        bytesDropped: buf.length - offset,
        reason,
        lastIndex: replayer.index.last,
      });
      await file.truncate(offset);
      await file.datasync();
      (segments.at(-1) as Segment).allocEnd = offset;
      break;
    }
    const error = short
      ? new LostWalError(
          { file: path, offset, lastGoodIndex: replayer.index.last, durableIndex: (durable as DurablePoint).lastIndex },
          `${reason}: fsynced records were lost, so this is not a torn tail`,
        )
      : new CorruptLogError(
          { file: path, offset, lastGoodIndex: replayer.index.last },
          `${reason}${isLast ? ' (intact records of later writes follow, so this is not a torn tail)' : ' (not the last segment)'}`,
        );
    if (!allowCut) throw error;
    if (short) cutBelowDurable = true;
    logger.error('CORRUPT LOG: cutting the log at the last good index as the operator asked; everything after it is DISCARDED', {
      error: error.message,
      file: path,
      offset,
      lastGoodIndex: replayer.index.last,
      discardedBytesInFile: buf.length - offset,
      discardedSegments: seqs.slice(k + 1).map((s) => segmentFileName(s)),
      note: 'entries after lastGoodIndex are gone from this node; the hard state may refer to them',
    });
    // Newest first, so a crash part-way leaves an unbroken run of segments.
    for (const s of seqs.slice(k + 1).reverse()) {
      await unlinkIfExists(fsys, fsys.join(dir, segmentFileName(s)));
      await fsys.syncDir(dir);
    }
    if (head === undefined) {
      segments.pop();
      await removeSegment(path, file);
    } else {
      const rw = isLast ? file : await fsys.open(path, 'append');
      if (!isLast) {
        await file.close();
        opened.splice(opened.indexOf(file), 1, rw);
        writable.add(rw);
        (segments.at(-1) as Segment).file = rw;
      }
      await rw.truncate(offset);
      await rw.datasync();
      (segments.at(-1) as Segment).allocEnd = offset;
    }
    break;
  }
  // The tail segment takes the next writes: make sure its handle can write.
  const tail = segments.at(-1);
  if (tail !== undefined && !writable.has(tail.file as FsFile)) {
    const ro = tail.file as FsFile;
    const rw = await fsys.open(tail.path, 'append');
    await ro.close();
    opened.splice(opened.indexOf(ro), 1, rw);
    tail.file = rw;
  }
  const writeEnd = tail === undefined ? 0 : (goodEnds.get(tail.seq) as number);

  // Whole segments missing at the end (or every segment): the WAL ends before the durable point's segment.
  const lastSeq = tail?.seq ?? 0;
  const lost = cutBelowDurable ? undefined : durableShortfall(durable, goodEnds, lastSeq);
  if (lost !== undefined && durable !== undefined) {
    const file = fsys.join(dir, segmentFileName(lost.seq));
    const error = new LostWalError(
      { file, offset: lost.offset, lastGoodIndex: replayer.index.last, durableIndex: durable.lastIndex },
      lost.missing
        ? `${segmentFileName(lost.seq)} is missing: the WAL ${lastSeq === 0 ? 'has no segment at all' : `ends in ${segmentFileName(lastSeq)}`}, ` +
            `but it was durable through offset ${durable.end} of ${segmentFileName(durable.seq)}`
        : `the intact records end at offset ${lost.offset}, below the durable point (offset ${durable.end})`,
    );
    if (!allowCut) throw error;
    logger.error('CORRUPT LOG: opening a WAL that lost durable records, as the operator asked; they are GONE from this node', {
      error: error.message,
    });
  }

  const ix = replayer.index;
  let resetTo: { index: number; term: number } | undefined;
  const replayed = { first: ix.first, last: ix.last };
  const reconciled = reconcile(replayer, snapshotMeta);
  if (reconciled.kind === 'reset') {
    // An installed snapshot whose RESET record never reached the WAL: the install stopped in between.
    // Complete it (the log is replaced by the snapshot), as installSnapshot would have.
    logger.warn('completing a snapshot install that was interrupted before the log was reset', {
      snapshotIndex: reconciled.index,
      logFirstIndex: replayed.first,
      logLastIndex: replayed.last,
    });
    resetTo = { index: reconciled.index, term: reconciled.term };
  } else if (reconciled.kind === 'problem') {
    const file = reconciled.reason === 'snapshot-behind-log' ? (snapshotPath as string) : (segments[0]?.path ?? dir);
    throw new CorruptLogError({ file, offset: 0, lastGoodIndex: reconciled.lastGoodIndex }, reconciled.message);
  }
  if (hardStateBytes === undefined && (snapshotMeta !== undefined || ix.last > 0)) {
    // The term and vote are written before any entry can be (an empty marker when the directory is made), so
    // a log without them lost them: starting at term 0 with no vote could vote twice in one term, which
    // Raft's safety rests on never happening (thesis 3.6, 3.8). Refuse rather than guess.
    throw new StorageError(
      `${hardStatePath} is missing, but the log holds entries up to ${ix.last}: this node's term and vote are lost. ` +
        'Restore the file, or remove the node from the cluster and add it back with an empty data directory',
    );
  }
  opened.length = 0;
  const here: DurablePoint = { seq: lastSeq, end: writeEnd, lastIndex: ix.last, lastTerm: ix.termOf(ix.last) };
  return {
    state: {
      index: ix,
      segments,
      writeEnd,
      hardState,
      snapshot: { meta: snapshotMeta, file: snapshotFile, path: snapshotPath },
      durable: here,
      recordedDurable: durable ?? NO_DURABLE_POINT,
      identity: hsFile?.identity,
      durableCounter: fromFile?.counter ?? 0,
    },
    ...(resetTo === undefined ? {} : { resetTo }),
  };
}
