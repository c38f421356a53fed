import { ConfigError, decodeClusterConfig, type ClusterConfig, type LogEntry, type NodeId } from '@consensus-kit/core';
import { RANK_SPACE } from './ballot';

/** A decided configuration: decided in `slot`, in force for slots >= `from`. */
export interface ConfigRecord {
  slot: number;
  from: number;
  config: ClusterConfig;
}

/** A node's ballot rank, assigned when the configuration that first named it was decided in `slot`. */
export interface RankRecord {
  id: NodeId;
  rank: number;
  slot: number;
}

/** Plain, msgpack-encodable form (hard state, snapshot messages). */
export interface MembershipWire {
  c: [number, number, NodeId[], NodeId[]][];
  r: [NodeId, number, number][];
}

const EMPTY: ClusterConfig = { voters: [], learners: [] };

/**
 * Which configuration governs which slot, and every member's ballot rank (PMMC section 4, reconfiguration: "a
 * configuration decided in slot s takes effect in slot s + WINDOW", so no slot inside the window is decided
 * under two configurations; the leader never proposes beyond commit + WINDOW, so the configuration of every slot
 * it proposes is known). The configuration in slot 1 is the initial one and is in force from slot 1.
 *
 * Ranks: the initial voters get 1 + their position in the sorted voter list; a node first named by a later
 * configuration gets the next free rank when that configuration is decided. Decisions are applied in slot
 * order on every replica, so every replica derives the same ranks.
 */
export class Membership {
  configs: ConfigRecord[];
  ranks: RankRecord[];

  constructor(configs: ConfigRecord[] = [], ranks: RankRecord[] = []) {
    this.configs = configs;
    this.ranks = ranks;
  }

  /** The membership of a first boot with `voters`: what the configuration in slot 1 will say. */
  static initial(voters: readonly NodeId[]): Membership {
    const m = new Membership();
    if (voters.length > 0) m.decide(1, { voters: [...voters].sort(), learners: [] }, 0);
    return m;
  }

  /** The configuration governing `slot`. */
  configAt(slot: number): ClusterConfig {
    let found: ClusterConfig = EMPTY;
    for (const c of this.configs) if (c.from <= slot) found = c.config;
    return found;
  }

  /** Distinct configurations governing slots in [lo, hi]. */
  configsIn(lo: number, hi: number): ClusterConfig[] {
    const out: ClusterConfig[] = [this.configAt(lo)];
    for (const c of this.configs) if (c.from > lo && c.from <= hi) out.push(c.config);
    return out;
  }

  /** The first slot > `slot` at which a different configuration takes over, or Infinity. */
  nextChange(slot: number): number {
    for (const c of this.configs) if (c.from > slot) return c.from;
    return Number.POSITIVE_INFINITY;
  }

  /** The newest decided configuration (what the state machine's apply step holds, and snapshots record). */
  latest(): ClusterConfig {
    return this.configs.at(-1)?.config ?? EMPTY;
  }

  /** Every node any known configuration names, sorted. */
  members(): NodeId[] {
    const s = new Set<NodeId>();
    for (const c of this.configs) for (const id of [...c.config.voters, ...c.config.learners]) s.add(id);
    return [...s].sort();
  }

  rank(id: NodeId): number | undefined {
    return this.ranks.find((r) => r.id === id)?.rank;
  }

  /** A decided entry in `slot`: a config entry changes the membership (WINDOW slots later). */
  decideEntry(entry: LogEntry, window: number): void {
    if (entry.type !== 'config') return;
    let config: ClusterConfig;
    try {
      config = decodeClusterConfig(entry.data);
    } catch {
      return; // a config entry that is no configuration changes nothing (ApplyStep reports it)
    }
    this.decide(entry.index, config, window);
  }

  private decide(slot: number, config: ClusterConfig, window: number): void {
    if (slot === 1) this.configs = [{ slot: 1, from: 1, config }];
    else if (!this.configs.some((c) => c.slot === slot)) this.configs.push({ slot, from: slot + window, config });
    let max = 0;
    for (const r of this.ranks) max = Math.max(max, r.rank);
    for (const id of [...config.voters, ...config.learners].sort()) {
      if (this.ranks.some((r) => r.id === id)) continue;
      if (max + 1 >= RANK_SPACE) throw new ConfigError(`paxos: no ballot rank left for ${id} (at most ${RANK_SPACE - 1} members over a cluster's life)`);
      this.ranks.push({ id, rank: ++max, slot });
    }
  }

  /** Forgets configurations superseded at or before `slot` (the compaction point). */
  prune(slot: number): void {
    let keepFrom = 0;
    for (let i = 0; i < this.configs.length; i++) if ((this.configs[i] as ConfigRecord).from <= slot + 1) keepFrom = i;
    if (keepFrom > 0) this.configs = this.configs.slice(keepFrom);
  }

  /** The membership as it was once slots <= `slot` were decided (shipped with a snapshot at `slot`). */
  asOf(slot: number): Membership {
    return new Membership(
      this.configs.filter((c) => c.slot <= slot),
      this.ranks.filter((r) => r.slot <= slot),
    );
  }

  toWire(): MembershipWire {
    return {
      c: this.configs.map((c) => [c.slot, c.from, c.config.voters, c.config.learners]),
      r: this.ranks.map((r) => [r.id, r.rank, r.slot]),
    };
  }

  static fromWire(w: unknown): Membership | undefined {
    if (typeof w !== 'object' || w === null) return undefined;
    const { c, r } = w as Partial<MembershipWire>;
    if (!Array.isArray(c) || !Array.isArray(r)) return undefined;
    const ids = (x: unknown): x is NodeId[] => Array.isArray(x) && x.every((s) => typeof s === 'string' && s.length > 0);
    const configs: ConfigRecord[] = [];
    for (const x of c) {
      if (!Array.isArray(x) || !Number.isSafeInteger(x[0]) || !Number.isSafeInteger(x[1]) || !ids(x[2]) || !ids(x[3])) return undefined;
      configs.push({ slot: x[0] as number, from: x[1] as number, config: { voters: x[2], learners: x[3] } });
    }
    const ranks: RankRecord[] = [];
    for (const x of r) {
      if (!Array.isArray(x) || typeof x[0] !== 'string' || !Number.isSafeInteger(x[1]) || !Number.isSafeInteger(x[2])) return undefined;
      ranks.push({ id: x[0], rank: x[1] as number, slot: x[2] as number });
    }
    return new Membership(configs, ranks);
  }

  clone(): Membership {
    return new Membership([...this.configs], [...this.ranks]);
  }
}
