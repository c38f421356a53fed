import { parseOptions, type LogEntry, type NodeId, type Protocol, type ProtocolModule, type ProtocolOptions, type Ready, type Status } from '@consensus-kit/core';

/**
 * A protocol that does nothing but count its ticks and append one entry per tick (never committed): it makes
 * the simulator's clocks, pauses and persistence visible to tests. Not a consensus protocol.
 */
export class ProbeNode implements Protocol {
  ticks = 0;
  readonly bootLastIndex: number;
  private log: number;
  private unstable: LogEntry[] = [];
  readonly id: NodeId;

  constructor(options: ProtocolOptions) {
    this.id = options.id;
    this.log = options.storage.lastIndex();
    this.bootLastIndex = this.log;
  }
  tick(): void {
    this.ticks++;
    this.log++;
    this.unstable.push({ index: this.log, term: 1, type: 'noop', data: new Uint8Array(0) });
  }
  step(): void {}
  propose(): void {}
  readIndex(): void {}
  proposeConfigChange(): void {}
  transferLeadership(): void {}
  hasReady(): boolean {
    return this.unstable.length > 0;
  }
  ready(): Ready {
    const rd: Ready = { entries: this.unstable, messages: [], committed: [], reads: [] };
    this.unstable = [];
    return rd;
  }
  advance(): void {}
  status(): Status {
    return { id: this.id, role: 'follower', term: 1, commitIndex: 0, appliedIndex: 0, lastIndex: this.log, config: { voters: [this.id], learners: [] } };
  }
}

/** A module with no options of its own around `create` (tests' one-off protocols). */
export function moduleOf(name: string, create: (options: ProtocolOptions) => Protocol): ProtocolModule {
  return { name, options: {}, parseOptions: (raw) => parseOptions(name, {}, raw), create };
}

export const probe: ProtocolModule = moduleOf('probe', (o) => new ProbeNode(o));
