import { pack, unpack } from 'msgpackr';
import { ConfigError, NotLeaderError } from '../errors';
import type { ClusterConfig, ConfigChange, Envelope, LogEntry, NodeId, Protocol, ProtocolModule, ProtocolOptions, Ready, Status } from '../types';
import { parseOptions } from '../options';
import { assertBytes, resolveProtocolOptions } from '../validate';

/**
 * A single-voter "consensus" protocol: the only node leads, and an entry commits as soon as it is durable.
 * It is not a protocol anyone should deploy; it exists so the host, its tests, its benchmark and the demo can
 * run the real `ConsensusNode` pipeline (persist -> send -> apply -> advance) without depending on a real
 * protocol package. It follows the `Protocol` contract exactly, including restart from storage.
 */
export class SoloProtocol implements Protocol {
  private readonly id: NodeId;
  private readonly config: ClusterConfig;
  private term: number;
  private leader = false;
  /** Entries appended but not yet handed out for persistence / not yet known durable. */
  private unstable: LogEntry[] = [];
  private lastIndex: number;
  private stableIndex: number;
  private commitIndex: number;
  private appliedIndex: number;
  /** Committed entries not yet handed to the host for applying. */
  private toApplyFrom: number;
  private readonly storage: ProtocolOptions['storage'];
  private reads: { ctx: Uint8Array; index: number }[] = [];
  private hardStateDirty = false;
  private statusDirty = true;
  private readonly electionTicks: number;
  private elapsed = 0;

  constructor(options: ProtocolOptions) {
    const o = resolveProtocolOptions(options);
    this.id = o.id;
    this.storage = options.storage;
    if (o.peers.length > 1) throw new ConfigError(`the solo protocol runs exactly one node, got peers ${o.peers.join(',')}`);
    this.config = { voters: [o.id], learners: [] };
    const hs = options.storage.initialState().hardState;
    const saved = hs === undefined ? { term: 0, commit: 0 } : (unpack(hs) as { term: number; commit: number });
    this.term = saved.term;
    this.lastIndex = options.storage.lastIndex();
    this.stableIndex = this.lastIndex;
    // Everything durable is committed: the only voter is a majority.
    this.commitIndex = this.lastIndex;
    this.appliedIndex = Math.max(o.applied, options.storage.firstIndex() - 1);
    this.toApplyFrom = this.appliedIndex + 1;
    this.electionTicks = o.electionTicks;
  }

  tick(): void {
    if (this.leader) return;
    // Become leader after one election timeout, like a real protocol would, so hosts see a role change.
    if (++this.elapsed < this.electionTicks) return;
    this.leader = true;
    this.term++;
    this.hardStateDirty = true;
    this.statusDirty = true;
    this.append('noop', new Uint8Array(0));
  }

  step(_envelope: Envelope): void {
    // No peers: any inbound message is foreign and ignored.
  }

  propose(data: Uint8Array): void {
    assertBytes(data, 'proposal');
    if (!this.leader) throw new NotLeaderError(undefined);
    this.append('command', data);
  }

  readIndex(ctx: Uint8Array): void {
    assertBytes(ctx, 'read context');
    if (!this.leader) throw new NotLeaderError(undefined);
    this.reads.push({ ctx, index: this.commitIndex });
  }

  proposeConfigChange(_change: ConfigChange): void {
    throw new ConfigError('the solo protocol has a fixed membership of one node');
  }

  transferLeadership(_to: NodeId): void {
    throw new ConfigError('the solo protocol cannot transfer leadership');
  }

  private append(type: LogEntry['type'], data: Uint8Array): void {
    this.unstable.push({ index: ++this.lastIndex, term: this.term, type, data });
  }

  hasReady(): boolean {
    return (
      this.unstable.length > 0 || this.hardStateDirty || this.statusDirty || this.reads.length > 0 || this.toApplyFrom <= this.commitIndex
    );
  }

  ready(): Ready {
    const committed = this.toApplyFrom <= this.commitIndex ? this.committedRange(this.toApplyFrom, this.commitIndex) : [];
    const rd: Ready = { entries: this.unstable, messages: [], committed, reads: this.reads };
    if (this.hardStateDirty) rd.hardState = pack({ term: this.term, commit: this.commitIndex });
    if (this.statusDirty) rd.status = this.status();
    this.unstable = [];
    this.reads = [];
    this.hardStateDirty = false;
    this.statusDirty = false;
    if (committed.length > 0) this.toApplyFrom = (committed[committed.length - 1] as LogEntry).index + 1;
    return rd;
  }

  private committedRange(lo: number, hi: number): LogEntry[] {
    // Committed entries are always durable, hence readable from storage.
    return this.storage.entries(lo, hi + 1);
  }

  advance(ready: Ready): void {
    if (ready.entries.length > 0) {
      this.stableIndex = (ready.entries[ready.entries.length - 1] as LogEntry).index;
      // A single voter: durable on this node means committed (a majority of one).
      this.commitIndex = this.stableIndex;
    }
    const lastApplied = ready.committed[ready.committed.length - 1];
    if (lastApplied !== undefined) this.appliedIndex = lastApplied.index;
  }

  status(): Status {
    return {
      id: this.id,
      role: this.leader ? 'leader' : 'follower',
      term: this.term,
      ...(this.leader ? { leader: this.id } : {}),
      commitIndex: this.commitIndex,
      appliedIndex: this.appliedIndex,
      lastIndex: this.lastIndex,
      config: this.config,
    };
  }
}

/** `ProtocolModule` of the single-node test protocol. */
export const solo: ProtocolModule<Record<string, never>> = {
  name: 'solo',
  options: {},
  parseOptions: (raw) => parseOptions('solo', {}, raw) as Record<string, never>,
  create: (options) => new SoloProtocol(options),
};
