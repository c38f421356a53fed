import { EventEmitter } from 'node:events';
import { StoppedError, TransportError, type LogEntry } from '@consensus-kit/core';
import { ManualClock } from '@consensus-kit/core/host';
import { describe, expect, it } from 'vitest';
import type { KvRequest, KvResult } from './commands';
import { RevisionCompactedError } from './errors';
import { KvStateMachine } from './kv-state-machine';
import type { KvEvent } from './mvcc-store';
import { createKvService } from './service';
import { watchKeys, type WatchBatch } from './watch-client';
import { WatchHub } from './watch-hub';
import type { KvSubscribeChannel, KvWatchRequest, PushSink, WatchPush } from './wire';

let index = 0;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });

/** A replica: a state machine and the 'apply'/'snapshot' events a ConsensusNode would emit. */
class Replica extends EventEmitter {
  readonly sm = new KvStateMachine();
  apply(req: KvRequest): KvResult {
    const r = this.sm.apply(entry(), req);
    this.emit('apply', { entry: undefined, result: r });
    return r;
  }
  put(key: string, value: string): KvResult {
    return this.apply({ cmd: { op: 'put', key, value } });
  }
  restore(data: Uint8Array): void {
    this.sm.restore(data);
    this.emit('snapshot', 0);
  }
}

/** A push sink that records what it gets. */
function sink(): PushSink & { pushes: WatchPush[]; controller: AbortController; events(): KvEvent[] } {
  const controller = new AbortController();
  const pushes: WatchPush[] = [];
  return {
    pushes,
    controller,
    signal: controller.signal,
    push(v) {
      if (controller.signal.aborted) return false;
      pushes.push(v as WatchPush);
      return true;
    },
    events: () => pushes.flatMap((p) => ('events' in p ? p.events : [])),
  };
}

/** Lets the hub's coalesced step (a microtask, then setImmediate continuations) run. */
const settle = async (turns = 3) => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
};

const req = (key: string, o: Partial<KvWatchRequest> = {}): KvWatchRequest => ({ t: 'kv.watch', key, ...o });
const revs = (events: KvEvent[]) => events.map((e) => e.revision);
const keys = (events: KvEvent[]) => events.map((e) => (e.type === 'put' ? e.kv.key : e.key));

describe('WatchHub (etcd watch: key or prefix, from a revision, then live)', () => {
  it('replays history from the start revision, then delivers live events, in revision order', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    r.put('a', '1'); // 1
    r.put('b', '1'); // 2
    r.put('a', '2'); // 3
    const s = sink();
    void hub.watch(req('a', { startRevision: 1 }), s);
    await settle();
    expect(s.pushes[0]).toEqual({ created: true, revision: 0, compactRevision: 0 });
    expect(revs(s.events())).toEqual([1, 3]);
    r.put('b', '2'); // 4
    r.put('a', '3'); // 5
    r.apply({ cmd: { op: 'delete', key: 'a' } }); // 6
    await settle();
    expect(revs(s.events())).toEqual([1, 3, 5, 6]);
    expect(s.events().map((e) => e.type)).toEqual(['put', 'put', 'put', 'delete']);
    // Each push says the watch is complete up to its revision.
    const last = s.pushes[s.pushes.length - 1]!;
    expect(last).toMatchObject({ revision: 6 });
  });

  it('without a start revision, a watch begins after the current revision', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    r.put('a', '1');
    const s = sink();
    void hub.watch(req('a'), s);
    expect(s.pushes[0]).toEqual({ created: true, revision: 1, compactRevision: 0 });
    r.put('a', '2');
    await settle();
    expect(revs(s.events())).toEqual([2]);
  });

  it('a prefix watch sees every key under it and nothing else; prevKv only when asked', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    const plain = sink();
    const withPrev = sink();
    void hub.watch(req('jobs/', { prefix: true }), plain);
    void hub.watch(req('jobs/', { prefix: true, prevKv: true }), withPrev);
    r.put('jobs/1', 'a'); // 1
    r.put('job', 'x'); // 2: not under 'jobs/'
    r.put('jobs/2', 'b'); // 3
    r.put('jobs/1', 'c'); // 4
    r.apply({ cmd: { op: 'delete', key: 'jobs/', prefix: true } }); // 5: both keys, one revision
    await settle();
    expect(keys(plain.events())).toEqual(['jobs/1', 'jobs/2', 'jobs/1', 'jobs/1', 'jobs/2']);
    expect(revs(plain.events())).toEqual([1, 3, 4, 5, 5]);
    expect(plain.events().every((e) => e.prev === undefined)).toBe(true);
    const prevs = withPrev.events().map((e) => (e.prev === undefined ? undefined : e.prev.value));
    expect(prevs).toEqual([undefined, undefined, 'a', 'c', 'b']);
  });

  it('a compacted start revision is a typed error carrying the compaction revision', () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    for (let i = 0; i < 5; i++) r.put('k', String(i));
    r.apply({ cmd: { op: 'compact', revision: 3 } });
    let err: unknown;
    try {
      void hub.watch(req('k', { startRevision: 2 }), sink());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RevisionCompactedError);
    expect((err as RevisionCompactedError).revision).toBe(2);
    expect((err as RevisionCompactedError).compactRevision).toBeGreaterThanOrEqual(3);
    expect(hub.size).toBe(0);
  });

  it('a future start revision waits for it', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    const s = sink();
    void hub.watch(req('k', { startRevision: 3 }), s);
    r.put('k', '1');
    r.put('k', '2');
    await settle();
    expect(s.events()).toEqual([]);
    r.put('k', '3');
    r.put('k', '4');
    await settle();
    expect(revs(s.events())).toEqual([3, 4]);
  });

  it('replays a long history in bounded batches that never split a revision', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, batchLimit: 4 });
    for (let i = 0; i < 10; i++) r.put(`p/${i}`, 'v'); // 1..10
    r.apply({ cmd: { op: 'delete', key: 'p/', prefix: true } }); // 11: ten deletes in one revision
    for (let i = 0; i < 5; i++) r.put(`p/${i}`, 'w'); // 12..16
    const s = sink();
    void hub.watch(req('p/', { prefix: true, startRevision: 1 }), s);
    await settle(20);
    expect(revs(s.events())).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), ...Array(10).fill(11), 12, 13, 14, 15, 16]);
    for (const p of s.pushes) {
      if (!('events' in p)) continue;
      // A push is complete up to its revision: no later push carries an event at or below it.
      expect(p.events.every((e) => e.revision <= p.revision)).toBe(true);
    }
    const eleven = s.pushes.filter((p) => 'events' in p && p.events.some((e) => e.revision === 11));
    expect(eleven).toHaveLength(1);
  });

  it('replay goes at the client\'s pace: a congested watcher reads no more history until its pushes drain', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, batchLimit: 2 });
    for (let i = 0; i < 10; i++) r.put('k', String(i));
    await settle(); // the hub is at revision 10: a watch from 1 replays history
    const s = sink();
    let congested = true;
    const paced: PushSink = { signal: s.signal, push: (v) => s.push(v), get congested() { return congested; } };
    void hub.watch(req('k', { startRevision: 1 }), paced);
    await settle(10);
    await new Promise((res) => setTimeout(res, 20));
    expect(s.events()).toEqual([]);
    congested = false;
    await new Promise((res) => setTimeout(res, 20));
    await settle(10);
    expect(revs(s.events())).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    s.controller.abort();
  });

  it('cancellation by the client ends the watch: it resolves, and nothing more is pushed', async () => {
    const r = new Replica();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    const s = sink();
    const done = hub.watch(req('k'), s);
    r.put('k', '1');
    await settle();
    s.controller.abort(new TransportError('request cancelled by the client'));
    await done;
    expect(hub.size).toBe(0);
    r.put('k', '2');
    await settle();
    expect(revs(s.events())).toEqual([1]);
  });

  it('progress notifications tell a quiet, caught-up watcher its revision', async () => {
    const r = new Replica();
    const clock = new ManualClock();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, clock, progressIntervalMs: 1000 });
    const s = sink();
    void hub.watch(req('k', { progressNotify: true }), s);
    r.put('other', '1'); // 1: not for this watch
    await settle();
    clock.advance(1000);
    expect(s.pushes[s.pushes.length - 1]).toEqual({ progress: true, revision: 1 });
    r.put('k', 'x'); // 2: an event in this interval: no progress at the next tick
    await settle();
    const n = s.pushes.length;
    clock.advance(1000);
    expect(s.pushes.length).toBe(n);
    clock.advance(1000);
    expect(s.pushes[s.pushes.length - 1]).toEqual({ progress: true, revision: 2 });
  });

  it('after a snapshot restore a watcher resumes from the change log, or ends with a typed error if it was compacted', async () => {
    const leader = new Replica();
    for (let i = 0; i < 4; i++) leader.put('k', String(i)); // 1..4
    const follower = new Replica();
    follower.restore(leader.sm.snapshot());
    const hub = new WatchHub({ stateMachine: follower.sm, events: follower });
    const resumed = sink();
    const resumedEnd = hub.watch(req('k'), resumed).catch((e: unknown) => e); // owed 5 on
    // The leader moves on, without compacting: the follower installs its snapshot and keeps its watcher.
    leader.put('k', '5'); // 5
    leader.put('k', '6'); // 6
    follower.restore(leader.sm.snapshot());
    await settle();
    expect(revs(resumed.events())).toEqual([5, 6]);
    // Now the leader compacts past what the watcher is owed (7): the watcher ends with RevisionCompactedError.
    leader.put('k', '7'); // 7
    leader.put('k', '8'); // 8
    leader.apply({ cmd: { op: 'compact', revision: 8 } });
    const ended = hub.watch(req('k', { startRevision: 7 }), sink()).catch((e: unknown) => e);
    void ended;
    follower.restore(leader.sm.snapshot());
    await settle();
    const e = await ended;
    expect(e).toBeInstanceOf(RevisionCompactedError);
    expect(await resumedEnd).toBeInstanceOf(RevisionCompactedError);
    expect((e as Error).message).toMatch(/watch cancelled.*revision 7 has been compacted/);
    expect(hub.size).toBe(0);
  });
});

/** A replica that keeps 5 revisions of history (automatic compaction by retention). */
class ShortHistory extends Replica {
  override readonly sm = new KvStateMachine({ historyRevisions: 5 });
}

describe('progress notifications and resumption', () => {
  it('a watcher still replaying history gets no progress notification (it would skip what it is owed)', async () => {
    const r = new Replica();
    const clock = new ManualClock();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, clock, progressIntervalMs: 1000 });
    for (let i = 0; i < 10; i++) r.put('k', String(i));
    await settle();
    const s = sink();
    const stuck: PushSink = { signal: s.signal, push: (v) => s.push(v), congested: true };
    void hub.watch(req('k', { startRevision: 1, progressNotify: true }), stuck);
    await settle();
    clock.advance(1000);
    clock.advance(1000);
    expect(s.pushes).toEqual([{ created: true, revision: 0, compactRevision: 0 }]);
    s.controller.abort();
  });

  it('a caught-up watcher gets every event of a burst of applies larger than the retained history (one turn)', async () => {
    const r = new ShortHistory();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    const s = sink();
    const done = hub.watch(req('k', { prefix: true }), s);
    let ended: unknown;
    done.then(
      () => (ended = 'resolved'),
      (e: unknown) => (ended = e),
    );
    // 20 applies in one turn (a follower catching up applies a whole batch at once): retention compacts to 15
    // before the hub's coalesced step runs.
    for (let i = 1; i <= 20; i++) r.put(`k${i}`, String(i));
    await settle();
    r.put('k21', '21');
    await settle();
    expect(ended).toBeUndefined();
    expect(revs(s.events())).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(s.events()[0]).toMatchObject({ type: 'put', kv: { key: 'k1' } });
    s.controller.abort();
  });

  it('with no history retained at all (historyRevisions: 0), a caught-up watcher still gets every event', async () => {
    class NoHistory extends Replica {
      override readonly sm = new KvStateMachine({ historyRevisions: 0 });
    }
    const r = new NoHistory();
    const hub = new WatchHub({ stateMachine: r.sm, events: r });
    const s = sink();
    let ended: unknown;
    hub.watch(req('k', { prefix: true, prevKv: true }), s).then(
      () => (ended = 'resolved'),
      (e: unknown) => (ended = e),
    );
    r.put('k1', 'a');
    await settle();
    for (let i = 0; i < 3; i++) r.put('k1', String(i));
    r.apply({ cmd: { op: 'delete', key: 'k1', prevKv: true } });
    await settle();
    expect(ended).toBeUndefined();
    expect(revs(s.events())).toEqual([1, 2, 3, 4, 5]);
    expect(s.events()[4]).toMatchObject({ type: 'delete', key: 'k1', prev: { value: '2' } });
    expect(r.sm.compactRevision).toBe(5);
    s.controller.abort();
  });

  it('a quiet watcher resumes from its last progress revision: history compacted meanwhile does not end it', async () => {
    const r = new ShortHistory();
    const hubClock = new ManualClock();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, clock: hubClock, progressIntervalMs: 1000 });
    const open = new Set<(e: Error) => void>();
    const ch: KvSubscribeChannel = {
      request: () => Promise.reject(new Error('not used')),
      close: () => Promise.resolve(),
      subscribe<T>(body: unknown, onPush: (v: unknown) => void, options: { signal?: AbortSignal } = {}): Promise<T> {
        const ac = new AbortController();
        return new Promise<T>((resolve, reject) => {
          const lose = (e: Error) => {
            open.delete(lose);
            ac.abort(e);
            reject(e);
          };
          open.add(lose);
          options.signal?.addEventListener('abort', () => lose(new TransportError('cancelled')), { once: true });
          const push: PushSink = { signal: ac.signal, push: (v) => !ac.signal.aborted && (onPush(structuredClone(v)), true) };
          hub.watch(body as KvWatchRequest, push).then((v) => resolve(v as T), reject);
        });
      },
    };
    const clock = new ManualClock();
    const watch = watchKeys(ch, 'k', { progressNotify: true, clock });
    const got: WatchBatch[] = [];
    let failed: unknown;
    const reading = (async () => {
      for await (const batch of watch) got.push(batch);
    })().catch((e: unknown) => (failed = e));
    await watch.created;
    for (let i = 0; i < 20; i++) r.put('other', String(i)); // retention compacts up to revision 15
    await settle();
    hubClock.advance(1000); // progress: the watch is complete up to 20
    await settle();
    expect(watch.revision).toBe(20);
    for (const lose of [...open]) lose(new TransportError('connection lost'));
    await settle();
    clock.advance(1000);
    await settle();
    r.put('k', 'x'); // 21
    await settle(5);
    watch.cancel();
    await reading;
    expect(failed).toBeUndefined();
    expect(watch.reconnects).toBe(1);
    expect(got.filter((b) => b.progress !== true).flatMap((b) => revs(b.events))).toEqual([21]);
  });
});

describe('WatchHub: a revision too large for one push (etcd watch fragments)', () => {
  /** Revision 1: one small put; revision 2: a transaction of five puts of 100 characters (167 estimated bytes each). */
  const bigRevision = () => {
    const r = new Replica();
    r.put('a', 'x'.repeat(10));
    r.apply({ cmd: { op: 'txn', then: [0, 1, 2, 3, 4].map((i) => ({ op: 'put' as const, key: `k/${i}`, value: 'v'.repeat(100) })) } });
    return r;
  };
  const eventPushes = (s: { pushes: WatchPush[] }) => s.pushes.filter((p): p is Extract<WatchPush, { events: KvEvent[] }> => 'events' in p);

  it('goes in bounded fragments to a watch that takes them, all but the last marked; in one push to one that does not', async () => {
    const r = bigRevision();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, fragmentBytes: 300 });
    const parts = sink();
    const whole = sink();
    void hub.watch(req('', { prefix: true, startRevision: 1, fragment: true }), parts);
    void hub.watch(req('', { prefix: true, startRevision: 1 }), whole);
    await settle(10);
    const pushes = eventPushes(parts);
    expect(pushes.length).toBeGreaterThan(2);
    expect(pushes.slice(0, -1).every((p) => p.fragment === true)).toBe(true);
    expect(pushes.at(-1)).toMatchObject({ revision: 2 });
    expect(pushes.at(-1)?.fragment).toBeUndefined();
    expect(pushes.every((p) => p.events.length <= 2)).toBe(true);
    expect(revs(parts.events())).toEqual([1, 2, 2, 2, 2, 2]);
    expect(keys(parts.events())).toEqual(['a', 'k/0', 'k/1', 'k/2', 'k/3', 'k/4']);
    expect(eventPushes(whole)).toEqual([{ events: whole.events(), revision: 2 }]);
    expect(revs(whole.events())).toEqual([1, 2, 2, 2, 2, 2]);
    // Live: the same, and the watch goes on after it.
    r.apply({ cmd: { op: 'delete', key: 'k/', prefix: true, prevKv: true } });
    r.put('b', '1');
    await settle(10);
    expect(revs(parts.events())).toEqual([1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4]);
    expect(eventPushes(parts).at(-1)).toMatchObject({ revision: 4 });
    parts.controller.abort();
    whole.controller.abort();
  });

  it('is paced by the client: no more is pushed while the pushes are held, the rest once they drain', async () => {
    const r = bigRevision();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, fragmentBytes: 300 });
    const s = sink();
    let held = true;
    const paced: PushSink = { signal: s.signal, push: (v) => s.push(v), get congested() { return held && eventPushes(s).length > 0; } };
    void hub.watch(req('k/', { prefix: true, startRevision: 1, fragment: true }), paced);
    await settle(10);
    await new Promise((res) => setTimeout(res, 20));
    expect(eventPushes(s)).toHaveLength(1);
    expect(eventPushes(s)[0]).toMatchObject({ revision: 2, fragment: true });
    held = false;
    await new Promise((res) => setTimeout(res, 20));
    await settle(10);
    expect(keys(s.events())).toEqual(['k/0', 'k/1', 'k/2', 'k/3', 'k/4']);
    expect(eventPushes(s).at(-1)?.fragment).toBeUndefined();
    s.controller.abort();
  });

  it('watchKeys hands the revision over whole, once, even when the subscription is lost between its fragments', async () => {
    const r = bigRevision();
    const hub = new WatchHub({ stateMachine: r.sm, events: r, fragmentBytes: 300 });
    let subscriptions = 0;
    const ch: KvSubscribeChannel = {
      request: () => Promise.reject(new Error('not used')),
      close: () => Promise.resolve(),
      subscribe<T>(body: unknown, onPush: (v: unknown) => void, options: { signal?: AbortSignal } = {}): Promise<T> {
        const first = ++subscriptions === 1;
        const ac = new AbortController();
        return new Promise<T>((resolve, reject) => {
          let pushed = 0;
          const lose = (e: Error) => {
            ac.abort(e);
            reject(e);
          };
          options.signal?.addEventListener('abort', () => lose(new TransportError('cancelled')), { once: true });
          const push: PushSink = {
            signal: ac.signal,
            push(v) {
              if (ac.signal.aborted) return false;
              // The first connection drops after 'created' and one fragment.
              if (first && ++pushed > 2) {
                lose(new TransportError('connection lost'));
                return false;
              }
              onPush(structuredClone(v));
              return true;
            },
          };
          hub.watch(body as KvWatchRequest, push).then((v) => resolve(v as T), reject);
        });
      },
    };
    const clock = new ManualClock();
    const watch = watchKeys(ch, 'k/', { prefix: true, startRevision: 1, clock });
    const got: WatchBatch[] = [];
    const reading = (async () => {
      for await (const batch of watch) got.push(batch);
    })();
    await settle(10);
    expect(got).toEqual([]);
    clock.advance(1000);
    await settle(10);
    watch.cancel();
    await reading;
    expect(watch.reconnects).toBe(1);
    expect(got).toHaveLength(1);
    expect(got[0]?.revision).toBe(2);
    expect(keys(got[0]!.events)).toEqual(['k/0', 'k/1', 'k/2', 'k/3', 'k/4']);
  });
});

/**
 * An in-process cluster of replicas behind a channel with `subscribe`: each subscription goes to the next
 * replica in turn (a reconnect lands on another node), and `cut()` drops every open subscription as a lost
 * connection would.
 */
function replicaChannel(replicas: Replica[]): KvSubscribeChannel & { cut(): void; subscriptions: number } {
  const services = replicas.map((r) => createKvService({ node: r as never, stateMachine: r.sm }));
  const open = new Set<{ ac: AbortController; fail: (e: Error) => void }>();
  let turn = 0;
  const ch = {
    subscriptions: 0,
    request: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
    subscribe<T>(body: unknown, onPush: (v: unknown) => void, options: { signal?: AbortSignal } = {}): Promise<T> {
      ch.subscriptions++;
      const service = services[turn++ % services.length]!;
      const ac = new AbortController();
      return new Promise<T>((resolve, reject) => {
        const entry = {
          ac,
          fail: (e: Error) => {
            open.delete(entry);
            ac.abort(e);
            reject(e);
          },
        };
        open.add(entry);
        options.signal?.addEventListener('abort', () => entry.fail(new TransportError('cancelled')), { once: true });
        const push: PushSink = { signal: ac.signal, push: (v) => (ac.signal.aborted ? false : (onPush(structuredClone(v)), true)) };
        service(body, { subscription: push }).then(
          (v) => {
            open.delete(entry);
            resolve(v as T);
          },
          (e: unknown) => entry.fail(e as Error),
        );
      });
    },
    cut() {
      for (const e of [...open]) e.fail(new TransportError('connection lost before the answer arrived'));
    },
  };
  return ch;
}

describe('watchKeys: exactly once, in order, across reconnects', () => {
  it('a watcher that loses its node resumes on another from the last revision seen: no gap, no duplicate', async () => {
    const a = new Replica();
    const b = new Replica();
    const ch = replicaChannel([a, b]);
    const clock = new ManualClock();
    const watch = watchKeys(ch, 'w/', { prefix: true, startRevision: 1, clock });
    const got: WatchBatch[] = [];
    const reading = (async () => {
      for await (const batch of watch) got.push(batch);
    })();
    const write = (i: number) => {
      const req: KvRequest = i % 7 === 0 ? { cmd: { op: 'put', key: `other/${i}`, value: String(i) } } : { cmd: { op: 'put', key: `w/${i % 5}`, value: String(i) } };
      a.apply(req);
      b.apply(req);
    };
    for (let i = 1; i <= 300; i++) {
      write(i);
      if (i % 40 === 0) {
        await settle();
        ch.cut(); // the node (or its connection) goes away; writes go on while the watch is disconnected
        await settle();
      }
      if (i % 40 === 20) clock.advance(1000); // the reconnect pause is over: the watch resumes on the other node
      if (i % 10 === 0) await settle();
    }
    await settle(10);
    clock.advance(1000);
    await settle(10);
    watch.cancel();
    await reading;
    const seen = got.flatMap((batch) => revs(batch.events));
    const expected = Array.from({ length: 300 }, (_, i) => i + 1).filter((i) => i % 7 !== 0);
    expect(seen).toEqual(expected);
    expect(watch.reconnects).toBeGreaterThanOrEqual(7);
    expect(ch.subscriptions).toBeGreaterThanOrEqual(8);
  });

  it('a reconnect to a node that is behind waits for it rather than repeating or skipping', async () => {
    const ahead = new Replica();
    const behind = new Replica();
    const ch = replicaChannel([ahead, behind]);
    const clock = new ManualClock();
    const watch = watchKeys(ch, 'k', { clock });
    await watch.created;
    const got: number[] = [];
    const reading = (async () => {
      for await (const batch of watch) got.push(...revs(batch.events));
    })();
    const reqs: KvRequest[] = Array.from({ length: 6 }, (_, i) => ({ cmd: { op: 'put', key: 'k', value: String(i) } }));
    for (const r of reqs) ahead.apply(r); // 1..6 on the node serving the watch
    await settle();
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
    for (const r of reqs.slice(0, 3)) behind.apply(r); // the other node has only 1..3
    ch.cut();
    await settle();
    clock.advance(1000);
    await settle();
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
    for (const r of reqs.slice(3)) behind.apply(r);
    behind.put('k', '7'); // 7
    await settle();
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
    watch.cancel();
    await reading;
  });

  it('a compacted start revision ends the iterator with RevisionCompactedError', async () => {
    const r = new Replica();
    for (let i = 0; i < 5; i++) r.put('k', String(i));
    r.apply({ cmd: { op: 'compact', revision: 4 } });
    const watch = watchKeys(replicaChannel([r]), 'k', { startRevision: 1 });
    const e = await (async () => {
      for await (const _ of watch) void _;
    })().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RevisionCompactedError);
    expect((e as RevisionCompactedError).compactRevision).toBeGreaterThanOrEqual(4);
    await expect(watch.created).rejects.toBeInstanceOf(RevisionCompactedError);
  });

  it('a consumer that stops reading closes the subscription past its bound and resumes without loss', async () => {
    const r = new Replica();
    const ch = replicaChannel([r]);
    const watch = watchKeys(ch, 'k', { startRevision: 1, maxBufferedBatches: 5 });
    await watch.created;
    for (let i = 0; i < 50; i++) {
      r.put('k', String(i));
      await settle(1);
    }
    await settle();
    // The subscription was closed after 5 batches held; the watch reopens it once those are read.
    expect(watch.revision).toBeLessThan(50);
    const got: number[] = [];
    for await (const batch of watch) {
      got.push(...revs(batch.events));
      if (got[got.length - 1] === 50) break;
    }
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(ch.subscriptions).toBeGreaterThan(1);
  });

  it('a closed local channel ends the watch with its error instead of retrying forever', async () => {
    const closed: KvSubscribeChannel = {
      request: () => Promise.reject(new StoppedError('the rpc client is closed')),
      close: () => Promise.resolve(),
      subscribe: () => Promise.reject(new StoppedError('the rpc client is closed')),
    };
    const watch = watchKeys(closed, 'k');
    const e = await (async () => {
      for await (const _ of watch) void _;
    })().catch((x: unknown) => x);
    expect(StoppedError.is(e)).toBe(true);
    expect(watch.reconnects).toBe(0);
  });

  it('a channel without subscribe is refused at once', () => {
    expect(() => watchKeys({ request: () => Promise.reject(new Error('unused')), close: () => Promise.resolve() }, 'k')).toThrow(/cannot open subscriptions/);
  });

  it('bad options are refused at once with InvalidArgumentError', () => {
    const ch = replicaChannel([new Replica()]);
    expect(() => watchKeys(ch, 'k', { startRevision: 0 })).toThrow(/positive integer/);
    expect(() => watchKeys(ch, '')).toThrow(/must not be empty/);
  });
});
