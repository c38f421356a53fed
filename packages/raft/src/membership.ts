import { decodeClusterConfig, isVoter, type ClusterConfig, type LogEntry } from '@consensus-kit/core';
import type { Raft } from './raft';

/** A configuration and the log index of the entry (or snapshot) that set it. */
export interface ConfigAt {
  index: number;
  config: ClusterConfig;
}

/**
 * The configurations in a node's log (thesis 4.1: a server uses the latest configuration in its log, committed
 * or not, so a truncated config entry takes its configuration with it). `base` is the configuration of the
 * snapshot (or of the first boot) under the log; `history` holds the configurations of config entries after
 * it, ascending by index. Only the latest committed one and those above it are kept.
 */
export class ConfigHistory {
  private history: ConfigAt[] = [];

  constructor(private base: ConfigAt) {}

  /** The configuration in force: the latest one in the log. */
  latest(): ConfigAt {
    return this.history[this.history.length - 1] ?? this.base;
  }

  /** The configuration before the latest one (the base when there is none before it). */
  previous(): ConfigAt {
    return this.history.length >= 2 ? (this.history[this.history.length - 2] as ConfigAt) : this.base;
  }

  /** Records a config entry; a malformed one changes nothing (returns false). */
  push(e: LogEntry): boolean {
    try {
      this.history.push({ index: e.index, config: decodeClusterConfig(e.data) });
      return true;
    } catch {
      return false;
    }
  }

  /** Forgets the configurations of entries at or after `index` (the log was overwritten from there). */
  truncateFrom(index: number): boolean {
    let changed = false;
    while (this.history.length > 0 && (this.history[this.history.length - 1] as ConfigAt).index >= index) {
      this.history.pop();
      changed = true;
    }
    return changed;
  }

  /** Forgets configurations that can no longer be truncated away, except the latest committed one. */
  forgetCommitted(committed: number): void {
    while (this.history.length > 1 && (this.history[1] as ConfigAt).index <= committed) this.history.shift();
  }

  /** A snapshot replaced the whole log (Figure 5.3 rules 6-8): its configuration is all there is. */
  restore(at: ConfigAt): void {
    this.base = { index: at.index, config: cloneConfig(at.config) };
    this.history = [];
  }
}

export function cloneConfig(c: ClusterConfig): ClusterConfig {
  const out: ClusterConfig = { voters: [...c.voters], learners: [...c.learners] };
  if (c.outgoing !== undefined) out.outgoing = [...c.outgoing];
  return out;
}

/**
 * Configuration bookkeeping for entries written to the log (RaftLog.onAppend: exactly what was written,
 * replacing everything from ents[0].index on). A configuration takes effect as soon as its entry is in the
 * log (thesis 4.1), and a truncated config entry takes its configuration with it.
 */
export function afterAppend(r: Raft, ents: readonly LogEntry[]): void {
  const first = (ents[0] as LogEntry).index;
  let changed = r.configs.truncateFrom(first);
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i] as LogEntry;
    if (e.type === 'config' && r.configs.push(e)) changed = true;
  }
  if (changed) applyConfig(r, r.configs.latest().config);
}

export function applyConfig(r: Raft, config: ClusterConfig): void {
  r.config = config;
  r.tracker.applyConfig(r.members(), config, r.log.lastIndex() + 1);
  if (r.role === 'leader') {
    if (r.leadTransferee !== undefined && !isVoter(config, r.leadTransferee)) r.abortLeaderTransfer();
    r.needCommitBroadcast = true;
  }
}
