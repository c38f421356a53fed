import { describe, expect, it } from 'vitest';
import { UI_LOG_TAIL, type UiFrame } from '@consensus-kit/ui';
import type { FaultEvent } from './faults';
import { resolveProtocol } from './resolve-protocol';
import { simulate, type SimulateOptions } from './simulator';
import { simulateOptions } from './sweep';
import { toy, toyInvariants } from './toy/index';
import { recordRun, replaySource } from './ui-recorder';

const events = (frames: readonly UiFrame[]) => frames.flatMap((f) => f.events);

/** The first seed from 1 on whose run fails, for a protocol with a known bug. */
async function failingSeed(name: string): Promise<{ options: SimulateOptions; seed: number }> {
  const protocol = await resolveProtocol(name);
  for (let seed = 1; seed <= 40; seed++) {
    const options = simulateOptions({ protocol, faults: 'heavy' }, seed, false);
    if (!simulate(options).ok) return { options, seed };
  }
  throw new Error(`no failing seed of ${name} in 1..40`);
}

describe('recordRun', () => {
  const heavy = (seed: number, trace = false): SimulateOptions => ({ protocol: toy, seed, faults: 'heavy', nodes: 5, ticks: 300, snapshotEvery: 25, invariants: toyInvariants, trace });

  it('the same seed gives the same frames', () => {
    const a = recordRun(heavy(11));
    const b = recordRun(heavy(11));
    expect(a.frames.length).toBeGreaterThan(100);
    expect(JSON.stringify(a.frames)).toBe(JSON.stringify(b.frames));
    expect(a.frames.map((f) => f.seq)).toEqual(a.frames.map((_, i) => i));
    for (let i = 1; i < a.frames.length; i++) expect(a.frames[i]!.at).toBeGreaterThanOrEqual(a.frames[i - 1]!.at);
    // Another seed is another run.
    expect(JSON.stringify(recordRun(heavy(12)).frames)).not.toBe(JSON.stringify(a.frames));
  });

  it('does not change the run: same result, history and byte-identical trace as simulate alone', () => {
    for (const seed of [3, 8]) {
      const plain = simulate(heavy(seed, true));
      const recorded = recordRun(heavy(seed, true));
      expect(recorded.result.trace).toEqual(plain.trace);
      expect(recorded.result.history).toEqual(plain.history);
      expect(recorded.result.stats).toEqual(plain.stats);
      expect(recorded.result.ok).toBe(plain.ok);
      // Untraced too (the recorder turns the trace records on, not the trace).
      const untraced = recordRun(heavy(seed));
      expect(untraced.result.trace).toBeUndefined();
      expect(untraced.result.stats).toEqual(plain.stats);
      expect(untraced.steps).toBe(plain.stats.steps);
    }
  });

  it('frames carry each node, its log tail from storage, every link and the messages delivered, by protocol type', () => {
    const rec = recordRun(heavy(5));
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const types = new Set<string>();
    // Collected, not asserted one by one: thousands of frames.
    const wrong: string[] = [];
    for (const f of rec.frames) {
      if (f.nodes.map((n) => n.id).join(' ') !== ids.join(' ') || f.links.length !== 20) wrong.push(`frame ${f.seq}: nodes or links`);
      for (const n of f.nodes) {
        if (!n.up) {
          if (n.role !== undefined || n.log.length !== 0) wrong.push(`frame ${f.seq}: ${n.id} is down with a role or log`);
          continue;
        }
        if (n.log.length > UI_LOG_TAIL) wrong.push(`frame ${f.seq}: ${n.id} log of ${n.log.length}`);
        if (n.log.length > 0) {
          if (n.log.at(-1)!.index !== n.lastIndex) wrong.push(`frame ${f.seq}: ${n.id} log ends at ${n.log.at(-1)!.index}, lastIndex ${n.lastIndex}`);
          if (n.log.some((e, i) => e.index !== n.log[0]!.index + i)) wrong.push(`frame ${f.seq}: ${n.id} log not contiguous`);
          if (n.log[0]!.index < n.firstIndex!) wrong.push(`frame ${f.seq}: ${n.id} log below firstIndex`);
        }
        if (n.appliedIndex! > n.commitIndex!) wrong.push(`frame ${f.seq}: ${n.id} applied beyond commit`);
      }
      for (const m of f.messages) types.add(m.type);
      if (f.links.reduce((s, l) => s + l.rate, 0) < f.messages.length) wrong.push(`frame ${f.seq}: rates below the messages listed`);
    }
    expect(wrong).toEqual([]);
    expect([...types].sort()).toEqual(expect.arrayContaining(['Append', 'AppendResp', 'Vote', 'VoteResp']));
    // Someone led, and every node's term shows.
    expect(rec.frames.some((f) => f.nodes.some((n) => n.role === 'leader'))).toBe(true);
    expect(events(rec.frames).some((e) => e.kind === 'leader')).toBe(true);
    expect(events(rec.frames).some((e) => e.kind === 'election')).toBe(true);
    expect(events(rec.frames).some((e) => e.kind === 'snapshot')).toBe(true);
    expect(rec.frames.at(-1)!.members.voters).toEqual(ids);
  });

  it('a crash, a restart, a partition and the heal show in the frames at their steps', () => {
    const schedule: FaultEvent[] = [
      { at: 60, action: { type: 'isolate', node: 'n2' } },
      { at: 90, action: { type: 'crash', node: 'n3' } },
      { at: 140, action: { type: 'restart', node: 'n3' } },
      { at: 170, action: { type: 'heal' } },
    ];
    const rec = recordRun({ protocol: toy, seed: 2, ticks: 220, faults: { kind: 'scripted', events: schedule }, invariants: toyInvariants });
    expect(rec.result.ok).toBe(true);
    const f = rec.frames;
    const at = (kind: string) => f.findIndex((fr) => fr.events.some((e) => e.kind === kind));
    const cut = at('partition');
    expect(f[cut]!.at).toBe(60);
    expect(f[cut]!.events.find((e) => e.kind === 'partition')!.text).toBe('isolate n2');
    expect(f[cut]!.nodes.find((n) => n.id === 'n2')!.partitioned).toEqual(['n1', 'n3']);
    expect(f[cut]!.links.filter((l) => l.blocked).map((l) => `${l.from}>${l.to}`).sort()).toEqual(['n1>n2', 'n2>n1', 'n2>n3', 'n3>n2']);
    expect(f[cut - 1]!.links.every((l) => !l.blocked)).toBe(true);
    const crash = at('crash');
    expect(Math.floor(f[crash]!.at)).toBe(90);
    expect(f[crash]!.events.find((e) => e.kind === 'crash')).toMatchObject({ node: 'n3', text: expect.stringMatching(/^n3 crashed/) });
    const down = f[crash]!.nodes.find((n) => n.id === 'n3')!;
    expect(down).toEqual({ id: 'n3', up: false, log: [], partitioned: ['n2'] });
    const restart = at('restart');
    expect(f[restart]!.at).toBe(140);
    expect(f[restart]!.nodes.find((n) => n.id === 'n3')!.up).toBe(true);
    for (let i = crash; i < restart; i++) expect(f[i]!.nodes.find((n) => n.id === 'n3')!.up).toBe(false);
    const heal = at('heal');
    expect(f[heal]!.at).toBe(170);
    expect(f[heal]!.links.every((l) => !l.blocked)).toBe(true);
    expect(f[heal]!.nodes.every((n) => n.partitioned === undefined)).toBe(true);
    // While the partition is in force, every message to or from n2 is listed as dropped, and some at the cut.
    let droppedAtCut = 0;
    for (let i = cut + 1; i < heal; i++) {
      for (const m of f[i]!.messages) {
        if (m.from !== 'n2' && m.to !== 'n2') continue;
        // (n3 is down from 90 to 140: what reaches it then is lost there.)
        expect(['partitioned', 'receiver-down']).toContain(m.dropped);
        if (m.dropped === 'partitioned') droppedAtCut++;
      }
    }
    expect(droppedAtCut).toBeGreaterThan(0);
    // Delivered messages carry no `dropped`.
    expect(f.flatMap((fr) => fr.messages).some((m) => m.dropped === undefined && 'dropped' in m)).toBe(false);
  });

  it('a pause and a resume show as pause and resume events, not as a crash and a restart', () => {
    const schedule: FaultEvent[] = [
      { at: 60, action: { type: 'pause', node: 'n2' } },
      { at: 100, action: { type: 'resume', node: 'n2' } },
    ];
    const rec = recordRun({ protocol: toy, seed: 2, ticks: 150, faults: { kind: 'scripted', events: schedule }, invariants: toyInvariants });
    const all = events(rec.frames);
    expect(all.filter((e) => e.kind === 'pause')).toEqual([{ at: 60, kind: 'pause', node: 'n2', text: 'n2 paused (its process stalls: no ticks, messages wait)' }]);
    expect(all.filter((e) => e.kind === 'resume')).toEqual([{ at: 100, kind: 'resume', node: 'n2', text: 'n2 resumes (the ticks it missed arrive at once)' }]);
    expect(all.some((e) => e.kind === 'crash' || e.kind === 'restart')).toBe(false);
  });

  it("every event about a node names it in its text (the page does not print the node again)", () => {
    const rec = recordRun(heavy(5));
    const wrong = events(rec.frames).filter((e) => e.node !== undefined && !new RegExp(`(^|[^\\w])${e.node}([^\\w]|$)`).test(e.text));
    expect(wrong).toEqual([]);
    expect(events(rec.frames).filter((e) => e.node !== undefined).length).toBeGreaterThan(10);
    // Worded as the live cluster's events are ("n1 leads (term 2)", node-observe.ts).
    const leads = events(rec.frames).filter((e) => e.kind === 'leader' && e.text.includes(' leads '));
    expect(leads.length).toBeGreaterThan(0);
    for (const e of leads) expect(e.text).toMatch(new RegExp(`^${e.node} leads \\(term \\d+\\)$`));
  });

  it('a known-failing toy seed ends with the invariant violation, its text, at the step it happened', async () => {
    const { options } = await failingSeed('toy-commit-one-ack');
    const rec = recordRun(options);
    const v = rec.result.violation!;
    expect(v.kind).toBe('invariant');
    const all = events(rec.frames).filter((e) => e.kind === 'violation');
    expect(all).toHaveLength(1);
    const last = rec.frames.at(-1)!;
    expect(last.events.at(-1)).toEqual({ at: v.time / rec.result.tickUs, kind: 'violation', text: `invariant violation (${v.name}): ${v.message}` });
    expect(last.at).toBe(v.time / rec.result.tickUs);
  });

  it('a linearizability failure is marked at the step its counterexample completed', async () => {
    const { options } = await failingSeed('toy-local-reads');
    const rec = recordRun(options);
    const v = rec.result.violation!;
    expect(v.kind).toBe('linearizability');
    const i = rec.frames.findIndex((f) => f.events.some((e) => e.kind === 'violation'));
    expect(i).toBeGreaterThanOrEqual(0);
    const e = rec.frames[i]!.events.find((x) => x.kind === 'violation')!;
    expect(e.text).toBe(`linearizability violation (linearizability): ${v.message}`);
    expect(rec.frames[i]!.at).toBeLessThanOrEqual(e.at);
    if (i + 1 < rec.frames.length) expect(rec.frames[i + 1]!.at).toBeGreaterThan(e.at);
  });

  it('stays within maxFrames, says how it thinned, and loses no event', () => {
    const full = recordRun(heavy(7));
    expect(full.thinned).toBeUndefined();
    expect(full.frames.length).toBe(full.changingSteps);
    for (const max of [full.frames.length - 1, 300, 40]) {
      const thin = recordRun(heavy(7), { maxFrames: max });
      expect(thin.frames.length).toBeLessThanOrEqual(max);
      expect(thin.thinned).toMatch(new RegExp(`^${full.changingSteps} changing steps, more than ${max} frames or 64 MB: `));
      expect(thin.frames.map((f) => f.seq)).toEqual(thin.frames.map((_, i) => i));
      expect(events(thin.frames)).toEqual(events(full.frames));
      expect(thin.frames.at(-1)!.nodes).toEqual(full.frames.at(-1)!.nodes);
      // Link rates still count every message sent, delivered or dropped.
      const rate = (fs: UiFrame[]) => fs.reduce((s, f) => s + f.links.reduce((a, l) => a + l.rate, 0), 0);
      expect(rate(thin.frames)).toBe(rate(full.frames));
      expect(rate(full.frames)).toBe(full.result.stats.messagesDelivered + full.result.stats.messagesDropped);
    }
    expect(recordRun(heavy(7), { maxFrames: 40 }).thinned).toMatch(/one frame per \d+ ticks$/);
    expect(() => recordRun(heavy(7), { maxFrames: 1 })).toThrow(/maxFrames must be an integer >= 2/);
  });

  it('stays within maxBytes of JSON, estimated from above', () => {
    const full = recordRun(heavy(7));
    const size = JSON.stringify(full.frames).length;
    expect(size).toBeGreaterThan(1_000_000);
    for (const maxBytes of [Math.floor(size * 0.9), 1_000_000, 200_000]) {
      const thin = recordRun(heavy(7), { maxBytes });
      expect(JSON.stringify(thin.frames).length).toBeLessThanOrEqual(maxBytes);
      expect(thin.thinned).toMatch(new RegExp(`frames or ${maxBytes / 1e6} MB: `));
      expect(events(thin.frames)).toEqual(events(full.frames));
    }
    expect(() => recordRun(heavy(7), { maxBytes: 10 })).toThrow(/maxBytes must be an integer >= 100000/);
  });

  it('at most maxMessagesPerFrame messages are listed in a frame', () => {
    const rec = recordRun(heavy(7), { maxFrames: 40, maxMessagesPerFrame: 5 });
    expect(Math.max(...rec.frames.map((f) => f.messages.length))).toBe(5);
  });
});

describe('replaySource', () => {
  it('serves the recording: replay mode, ticks, every frame as history, no actions', () => {
    const rec = recordRun({ protocol: toy, seed: 1, ticks: 60 });
    const source = replaySource(rec, { protocol: 'toy', title: 'toy seed 1', replayCommand: 'pnpm sim replay 1 --protocol toy --ticks 60 --ui', electionTimeout: 10 });
    expect(source.hello()).toEqual({
      mode: 'replay',
      protocol: 'toy',
      title: 'toy seed 1',
      timeUnit: 'tick',
      actions: [],
      electionTimeout: 10,
      replayCommand: 'pnpm sim replay 1 --protocol toy --ticks 60 --ui',
    });
    expect(source.history()).toBe(rec.frames);
    expect(source.act).toBeUndefined();
    const unsubscribe = source.subscribe(() => {
      throw new Error('a recording sends no new frame');
    });
    unsubscribe();
  });
});
