import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  describeConfig,
  describeEntry,
  describeEnvelope,
  describeStatus,
  type ConfigChangeOp,
  type NodeId,
} from '@consensus-kit/core';
import { runDataDriven, type DataDrivenCommand as Command } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { decodeHardState } from '../src/hard-state';
import type { RaftNode } from '../src/rawnode';
import { TestNetwork, type NodeOptions } from './network';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testdata');
const enc = new TextEncoder();
const dec = new TextDecoder();

function bool(v: string | undefined, fallback: boolean): boolean {
  return v === undefined ? fallback : v === 'true';
}

/** Interprets scenario commands against one TestNetwork. */
class Interpreter {
  net: TestNetwork | undefined;

  private get n(): TestNetwork {
    if (this.net === undefined) throw new Error('no cluster: start with `cluster a b c`');
    return this.net;
  }

  run(c: Command): string {
    const n = () => this.n;
    const nodes = (): NodeId[] => (c.args.length > 0 ? c.args : n().ids());
    switch (c.name) {
      case 'cluster': {
        const options: NodeOptions = {
          preVote: bool(c.kv.preVote, true),
          checkQuorum: bool(c.kv.checkQuorum, true),
          electionTicks: Number(c.kv.election ?? 10),
          heartbeatTicks: Number(c.kv.heartbeat ?? 1),
          // Transcripts show the commit index reaching followers at once (etcd's way), so every step of a
          // scenario is visible; the default, 'next-message', has a scenario of its own (5.3-commit-notify).
          commitNotify: (c.kv.commitNotify ?? 'immediate') as 'next-message' | 'immediate',
        };
        if (c.kv.readOnly !== undefined) options.readOnly = c.kv.readOnly as 'safe' | 'lease';
        if (c.kv.maxInflight !== undefined) options.maxInflightMsgs = Number(c.kv.maxInflight);
        if (c.kv.maxSizePerMsg !== undefined) options.maxSizePerMsg = Number(c.kv.maxSizePerMsg);
        if (c.kv.chunk !== undefined) options.snapshotChunkBytes = Number(c.kv.chunk);
        if (c.kv.maxUncommitted !== undefined) options.maxUncommittedBytes = Number(c.kv.maxUncommitted);
        this.net = new TestNetwork(c.args, options, Number(c.kv.seed ?? 1));
        return 'ok';
      }
      case 'add-node': {
        // A fresh node that knows no configuration yet; it learns it from the leader.
        for (const id of c.args) n().addNode(id, []);
        return 'ok';
      }
      case 'campaign':
        for (const id of nodes()) n().get(id).node.campaign();
        n().processAll();
        return 'ok';
      case 'tick': {
        const times = Number(c.kv.n ?? 1);
        for (let i = 0; i < times; i++) for (const id of nodes()) n().tick(id);
        return 'ok';
      }
      case 'run': {
        // K rounds of: every live node ticks once, then every message is delivered (a quiet, fast network).
        const times = Number(c.kv.n ?? 1);
        let delivered = 0;
        let dropped = 0;
        for (let i = 0; i < times; i++) {
          for (const id of n().ids()) n().tick(id);
          for (const d of n().deliver()) {
            if (d.dropped) dropped++;
            else delivered++;
          }
        }
        return c.kv.quiet === 'true' ? 'ok' : `${delivered} delivered, ${dropped} dropped`;
      }
      case 'deliver': {
        let out;
        if (c.kv.n !== undefined) {
          n().processAll();
          out = [];
          for (let i = 0; i < Number(c.kv.n); i++) {
            const d = n().deliverOne();
            if (d === undefined) break;
            out.push(d);
          }
        } else {
          out = n().deliver();
        }
        if (c.kv.verbose !== 'true') return `${out.filter((d) => !d.dropped).length} delivered, ${out.filter((d) => d.dropped).length} dropped`;
        return out.map((d) => `${d.dropped ? 'dropped ' : ''}${describeEnvelope(d.env)}`).join('\n');
      }
      case 'propose': {
        const [id, ...cmds] = c.args;
        const out: string[] = [];
        for (const cmd of cmds) {
          try {
            n().get(id as NodeId).node.propose(enc.encode(cmd));
          } catch (e) {
            out.push(`${cmd}: ${(e as Error).name}: ${(e as Error).message}`);
          }
        }
        n().processAll();
        return out.join('\n');
      }
      case 'config': {
        const [id] = c.args;
        const changes: ConfigChangeOp[] = [];
        for (const [op, list] of Object.entries(c.kv)) {
          for (const node of list.split(',')) changes.push({ op: op as ConfigChangeOp['op'], node });
        }
        n().get(id as NodeId).node.proposeConfigChange({ changes });
        n().processAll();
        return 'ok';
      }
      case 'transfer': {
        const [id, to] = c.args;
        n().get(id as NodeId).node.transferLeadership(to as NodeId);
        n().processAll();
        return 'ok';
      }
      case 'read': {
        const [id, ctx] = c.args;
        n().get(id as NodeId).node.readIndex(enc.encode(ctx));
        n().processAll();
        return 'ok';
      }
      case 'reads':
        return nodes()
          .map((id) => `${id}: [${n().get(id).reads.map((r) => `${dec.decode(r.ctx)}@${r.index}`).join(' ')}]`)
          .join('\n');
      case 'partition':
        n().partition(c.args);
        return 'ok';
      case 'block':
        n().block(c.args[0] as NodeId, c.args[1] as NodeId);
        return 'ok';
      case 'drop': {
        // Drop the next `n` messages from args[0] to args[1] (of `type`, if given).
        const [from, to] = c.args;
        let left = Number(c.kv.n ?? 1);
        const prev = n().filter;
        n().filter = (env) => {
          if (left > 0 && env.from === from && env.to === to && (c.kv.type === undefined || (env.msg as { type: string }).type === c.kv.type)) {
            left--;
            return false;
          }
          return prev === undefined ? true : prev(env);
        };
        return 'ok';
      }
      case 'heal':
        n().heal();
        return 'ok';
      case 'crash':
        for (const id of c.args) n().crash(id);
        return 'ok';
      case 'restart':
        for (const id of c.args) {
          n().crash(id);
          n().restart(id);
        }
        return 'ok';
      case 'snapshot':
        return c.args.map((id) => `${id}: snapshot at ${n().snapshot(id)}, first index ${n().get(id).storage.firstIndex()}`).join('\n');
      case 'status':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            if (!r.up) return `${id} down`;
            const s = r.node.status();
            const lines = [describeRaftStatus(s)];
            const progress = s.details.progress;
            if (c.kv.progress === 'true' && progress !== undefined) {
              for (const [p, pr] of Object.entries(progress)) {
                lines.push(`  ${p}: match=${pr.match} next=${pr.next} ${pr.state} inflight=${pr.inflight}${pr.learner ? ' learner' : ''}${pr.active ? ' active' : ''}`);
              }
            }
            return lines.join('\n');
          })
          .join('\n');
      case 'log':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            const ents = n().entries(id);
            return `${id}: first=${r.node.firstIndex()} commit=${r.node.status().commitIndex} [${ents.map(describeEntry).join(', ')}]`;
          })
          .join('\n');
      case 'hardstate':
        return nodes()
          .map((id) => {
            const raw = n().get(id).storage.raw.hardState;
            if (raw === undefined) return `${id}: none`;
            const hs = decodeHardState(raw);
            return `${id}: term=${hs.term} vote=${hs.vote ?? '-'} commit=${hs.commit}`;
          })
          .join('\n');
      case 'applied':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            return `${id}: ${r.appliedIndex} [${r.applied.join(' ')}] ${describeConfig(r.appliedConfig)}`;
          })
          .join('\n');
      default:
        throw new Error(`unknown command ${c.name}`);
    }
  }
}

/**
 * Core's neutral status line, then what Raft adds to it: the pre-vote phase of a candidate (thesis 9.6) and a
 * leadership transfer under way (thesis 3.10). Per-peer progress prints with `status progress=true`.
 */
function describeRaftStatus(s: ReturnType<RaftNode['status']>): string {
  const { details, ...neutral } = s;
  let line = describeStatus(neutral);
  if (details.phase === 'pre-candidate') line += ' phase=pre-candidate';
  if (details.transferringTo !== undefined) line += ` transferring-to=${details.transferringTo}`;
  return line;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

describe('scenarios (testdata/*.txt)', () => {
  for (const f of files) {
    it(f.replace(/\.txt$/, ''), () => {
      const interp = new Interpreter();
      const results = runDataDriven(join(dir, f), (c) => interp.run(c));
      for (const r of results) {
        expect(r.actual, `${f}:${r.command.line}: ${r.command.raw}`).toBe(r.expected);
      }
    });
  }
});
