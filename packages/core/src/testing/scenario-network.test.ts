import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDataDriven } from './datadriven';
import { ScenarioNetwork } from './scenario-network';
import { SoloProtocol } from './solo-protocol';

const enc = new TextEncoder();

function soloNet(): ScenarioNetwork<SoloProtocol> {
  const net = new ScenarioNetwork<SoloProtocol>(['a'], { create: (o) => new SoloProtocol(o) });
  net.tick('a', 10); // one election timeout
  return net;
}

describe('ScenarioNetwork', () => {
  it('drives any protocol through the shared Ready loop: persist, apply, release', () => {
    const net = soloNet();
    expect(net.leader()?.id).toBe('a');
    net.get('a').node.propose(enc.encode('x'));
    net.processAll();
    const a = net.get('a');
    expect(a.applied).toEqual(['x']);
    expect(a.storage.lastIndex()).toBe(a.appliedIndex);
  });

  it('restarts from storage, and from a snapshot after compaction', () => {
    const net = soloNet();
    for (const c of ['x', 'y']) net.get('a').node.propose(enc.encode(c));
    net.processAll();
    const at = net.snapshot('a');
    net.crash('a');
    net.restart('a');
    const a = net.get('a');
    expect(a.incarnation).toBe(2);
    expect(a.appliedIndex).toBe(at);
    expect(a.applied).toEqual(['x', 'y']);
    expect(a.storage.firstIndex()).toBe(at + 1);
  });

  it('a crash in the middle of a save keeps only a prefix of the pinned order', () => {
    const net = soloNet();
    const before = net.get('a').storage.lastIndex();
    net.get('a').node.propose(enc.encode('lost'));
    expect(net.crashMidSave('a', 0)).toBe(true);
    expect(net.get('a').up).toBe(false);
    expect(net.get('a').storage.lastIndex()).toBe(before);
    net.restart('a');
    expect(net.get('a').applied).not.toContain('lost');
  });

  it('drops messages on blocked links and to crashed replicas, delivers the rest in FIFO order', () => {
    const net = new ScenarioNetwork<SoloProtocol>(['a'], { create: (o) => new SoloProtocol(o), serialize: true });
    net.addNode('b', ['b']);
    net.block('a', 'b');
    net.queue.push({ from: 'a', to: 'b', msg: { n: 1 } }, { from: 'b', to: 'a', msg: { n: 2 } });
    const out = net.deliver();
    expect(out.map((d) => [d.env.from, d.dropped])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    net.heal();
    net.crash('b');
    net.queue.push({ from: 'a', to: 'b', msg: {} });
    expect(net.deliver()[0]?.dropped).toBe(true);
  });
});

describe('runDataDriven', () => {
  it('compares each command with its expected output and rewrites only when asked', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dd-')), 'x.txt');
    writeFileSync(file, '# header\n\necho a b\n----\na b\n\nfail\n----\nold\n');
    const run = (c: { name: string; args: string[] }) => {
      if (c.name === 'fail') throw new Error('boom');
      return c.args.join(' ');
    };
    const results = runDataDriven(file, run, { rewrite: false });
    expect(results.map((r) => [r.expected, r.actual])).toEqual([
      ['a b', 'a b'],
      ['old', 'error: boom'],
    ]);
    expect(readFileSync(file, 'utf8')).toContain('old');
    runDataDriven(file, run, { rewrite: true });
    expect(readFileSync(file, 'utf8')).toBe('# header\n\necho a b\n----\na b\n\nfail\n----\nerror: boom\n');
  });
});
