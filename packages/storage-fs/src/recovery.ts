import { CorruptLogError, StorageError, type Logger } from '@consensus-kit/core';
import { HARD_STATE_FILE, TMP_SUFFIX, decodeHardState } from './atomic-file';
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
  const decoded = hardStateBytes === undefined ? undefined : decodeHardState(hardStateBytes, hardStatePath);
  // An empty payload is the marker written when the directory was created: no term or vote stored yet.
  const hardState = decoded !== undefined && decoded.length > 0 ? decoded : undefined;

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
    if (head === undefined && isLast && !scan.laterWriteFollows) {
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
      if (head === undefined) {
        throw new CorruptLogError({ file: path, offset: 0, lastGoodIndex: replayer.index.last }, 'segment is empty but is not the last one');
      }
      continue;
    }
    const { offset, reason } = scan.failure;
    if (isLast && !scan.laterWriteFollows) {
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
    const error = new CorruptLogError(
      { file: path, offset, lastGoodIndex: replayer.index.last },
      `${reason}${isLast ? ' (intact records of later writes follow, so this is not a torn tail)' : ' (not the last segment)'}`,
    );
    if (!allowCut) throw error;
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
  return {
    state: { index: ix, segments, writeEnd, hardState, snapshot: { meta: snapshotMeta, file: snapshotFile, path: snapshotPath } },
    ...(resetTo === undefined ? {} : { resetTo }),
  };
}
