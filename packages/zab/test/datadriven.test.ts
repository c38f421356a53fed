import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogEntry, NodeId } from '@consensus-kit/core';
import { runDataDriven, type DataDrivenCommand as Command, type ScenarioNetwork } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import type { ZabNode } from '../src/index';
import type { Sync, ZabMessage } from '../src/messages';
import { network } from './helpers';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testdata');
const enc = new TextEncoder();
const dec = new TextDecoder();

/** `3:x@1` (index, value, epoch). */
const entry = (e: LogEntry) => `${e.index}:${e.type === 'command' ? dec.decode(e.data) : e.type}@${e.term}`;

/** Interprets scenario commands against one ScenarioNetwork of ZabNodes. */
class Interpreter {
  net: ScenarioNetwork<ZabNode> | undefined;
  /** Every Sync a node sent, described, once its Ready was durable. */
  syncs: string[] = [];

  private get n(): ScenarioNetwork<ZabNode> {
    if (this.net === undefined) throw new Error('no cluster: start with `cluster a b c`');
    return this.net;
  }

  run(c: Command): string {
    const n = () => this.n;
    const nodes = (): NodeId[] => (c.args.length > 0 ? c.args : n().ids());
    switch (c.name) {
      case 'cluster': {
        const options: Record<string, unknown> = {};
        if (c.kv.counterLimit !== undefined) options.counterLimit = Number(c.kv.counterLimit);
        if (c.kv.maxBatch !== undefined) options.maxBatch = Number(c.kv.maxBatch);
        if (c.kv.chunk !== undefined) options.snapshotChunkBytes = Number(c.kv.chunk);
        this.net = network(c.args, options, {
          onPersisted: (_r, rd) => {
            for (const m of rd.messages) {
              const msg = m.msg as ZabMessage;
              if (msg.type === 'SnapChunk') this.syncs.push(`${m.from}->${m.to} snap at=${msg.index} bytes=${msg.offset}+${msg.data.length}/${msg.total}`);
              if (msg.type !== 'Sync') continue;
              const s = msg as Sync;
              const how = s.mode === 'trunc' ? `trunc to=${s.truncateTo}` : s.mode === 'snap' ? `snap at=${s.snapshot?.index}` : 'diff';
              this.syncs.push(`${m.from}->${m.to} ${how} entries=[${s.entries.map(entry).join(' ')}]`);
            }
          },
        });
        return 'ok';
      }
      case 'run': {
        for (let i = 0; i < Number(c.kv.n ?? 1); i++) {
          n().tickAll();
          n().deliver();
        }
        return 'ok';
      }
      case 'propose':
        try {
          for (const v of c.args.slice(1)) n().get(c.args[0] as string).node.propose(enc.encode(v));
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
        n().processAll();
        return 'ok';
      case 'crash':
        for (const id of c.args) n().crash(id);
        return 'ok';
      case 'restart':
        for (const id of c.args) n().restart(id);
        return 'ok';
      case 'partition':
        n().partition(c.args);
        return 'ok';
      case 'heal':
        n().heal();
        return 'ok';
      case 'snapshot':
        return c.args.map((id) => `${id}: snapshot at ${n().snapshot(id)}`).join('\n');
      case 'syncs': {
        const out = this.syncs.length === 0 ? 'none' : this.syncs.join('\n');
        this.syncs = [];
        return out;
      }
      case 'status':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            if (!r.up) return `${id} down`;
            const s = r.node.status();
            return `${id} ${s.role} epoch=${s.term} leader=${s.leader ?? '-'} commit=${s.commitIndex} last=${s.details.lastZxid} accepted=${s.details.acceptedEpoch} current=${s.details.currentEpoch}`;
          })
          .join('\n');
      case 'log':
        return nodes()
          .map((id) => {
            const r = n().get(id);
            const first = r.storage.firstIndex();
            return `${id}: [${r.storage.entries(first, r.storage.lastIndex() + 1).map(entry).join(' ')}]`;
          })
          .join('\n');
      case 'applied':
        return nodes()
          .map((id) => `${id}: [${n().get(id).applied.join(' ')}]`)
          .join('\n');
      default:
        throw new Error(`unknown command ${c.name}`);
    }
  }
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
