import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeConfig, describeEnvelope, type LogEntry, type ConfigChangeOp, type NodeId } from '@consensus-kit/core';
import { runDataDriven, type DataDrivenCommand as Command } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { describeBallot } from '../src/ballot';
import { decodeHardState } from '../src/hard-state';
import { TestNetwork, type NodeOptions } from './network';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testdata');
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Interprets scenario commands against one TestNetwork of PaxosNodes. */
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
        const options: NodeOptions = { electionTicks: Number(c.kv.election ?? 10), heartbeatTicks: Number(c.kv.heartbeat ?? 1) };
        if (c.kv.window !== undefined) options.window = Number(c.kv.window);
        if (c.kv.maxBatch !== undefined) options.maxBatch = Number(c.kv.maxBatch);
        if (c.kv.q1 !== undefined) options.phase1Quorum = Number(c.kv.q1);
        if (c.kv.q2 !== undefined) options.phase2Quorum = Number(c.kv.q2);
        if (c.kv.lease !== undefined) options.leaseReads = c.kv.lease === 'true';
        try {
          this.net = new TestNetwork(c.args, options, Number(c.kv.seed ?? 1));
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
        return 'ok';
      }
      case 'add-node':
        for (const id of c.args) n().addNode(id, []);
        return 'ok';
      case 'campaign':
        // A scripted campaign is forced (as by a leadership transfer): acceptors answer even while they still
        // hear from a leader, so a script need not wait out their stickiness.
        for (const id of nodes()) n().get(id).node.campaign(true);
        n().processAll();
        return 'ok';
      case 'tick': {
        const times = Number(c.kv.n ?? 1);
        for (let i = 0; i < times; i++) for (const id of nodes()) n().tick(id);
        return 'ok';
      }
      case 'run': {
        const times = Number(c.kv.n ?? 1);
        for (let i = 0; i < times; i++) {
          for (const id of n().ids()) n().tick(id);
          n().deliver();
        }
        return 'ok';
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
        return out.length > 0 ? out.join('\n') : 'ok';
      }
      case 'config': {
        const [id] = c.args;
        const changes: ConfigChangeOp[] = [];
        for (const [op, list] of Object.entries(c.kv)) for (const node of list.split(',')) changes.push({ op: op as ConfigChangeOp['op'], node });
        try {
          n().get(id as NodeId).node.proposeConfigChange({ changes });
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
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
        try {
          n().get(id as NodeId).node.readIndex(enc.encode(ctx));
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
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
      case 'send': {
        // Inject a message: `send <from> <to> <Type> key=number...`.
        const [from, to, type] = c.args;
        const msg: Record<string, unknown> = { type };
        for (const [k, v] of Object.entries(c.kv)) msg[k] = Number(v);
        n().queue.push({ from: from as NodeId, to: to as NodeId, msg });
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
            return `${id} ${s.role} ballot=${describeBallot(s.term)} leader=${s.leader ?? '-'} commit=${s.commitIndex} last=${s.lastIndex} promised=${describeBallot(s.details.promised)} ${describeConfig(s.config)}`;
          })
          .join('\n');
      case 'log':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            const ents = n().entries(id).map(entry);
            return `${id}: commit=${r.node.commit} [${ents.join(', ')}]`;
          })
          .join('\n');
      case 'hardstate':
        return nodes()
          .map((id) => {
            const raw = n().get(id).storage.raw.hardState;
            if (raw === undefined) return `${id}: none`;
            const hs = decodeHardState(raw);
            return `${id}: promised=${describeBallot(hs.promised)} commit=${hs.commit}`;
          })
          .join('\n');
      case 'applied':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            return `${id}: ${r.appliedIndex} [${r.applied.join(' ')}]`;
          })
          .join('\n');
      default:
        throw new Error(`unknown command ${c.name}`);
    }
  }
}

/** `3:x@0.1` (slot, value, ballot); an empty slot is `3:-`. */
function entry(e: LogEntry): string {
  if (e.term === 0) return `${e.index}:-`;
  const v = e.type === 'command' ? dec.decode(e.data) : e.type === 'noop' ? 'noop' : 'config';
  return `${e.index}:${v}@${describeBallot(e.term)}`;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

describe('scenarios (testdata/*.txt)', () => {
  for (const f of files) {
    it(f.replace(/\.txt$/, ''), () => {
      const interp = new Interpreter();
      const results = runDataDriven(join(dir, f), (c) => interp.run(c));
      for (const r of results) expect(r.actual, `${f}:${r.command.line}: ${r.command.raw}`).toBe(r.expected);
    });
  }
});
