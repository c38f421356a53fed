import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, MalformedMessageError, SessionExpiredError } from '@consensus-kit/core';
import type { LockCommand, LockEvent, LockResult } from './commands';
import { LockKindError, LockSessionExpiredError } from './errors';
import { DONE_REQUESTS_KEPT, LockStateMachine, type LockInfo, type LockStateMachineOptions } from './lock-state-machine';

/** A state machine fed one entry per call, at increasing log indexes, with a leader clock we move by hand. */
class Harness {
  sm: LockStateMachine;
  index = 0;
  term = 1;
  clock = 0;
  constructor(options: LockStateMachineOptions = {}) {
    this.sm = new LockStateMachine({ minSessionTtlMs: 100, lockDelayMs: 500, ...options });
    this.time(0);
  }
  run(cmd: LockCommand): LockResult {
    this.index++;
    return this.sm.apply({ index: this.index, term: this.term, type: 'command', data: new Uint8Array() }, { cmd });
  }
  /** A time entry `ms` after the previous one (same term unless `newTerm`). */
  time(ms: number, newTerm = false): LockEvent[] {
    if (newTerm) this.term++;
    this.clock += ms;
    return this.run({ op: 'time', term: this.term, ms: this.clock }).events;
  }
  open(ttl = 1000): number {
    return (this.run({ op: 'open', ttl }) as { session: number }).session;
  }
  acquire(session: number, req: number, name = 'm', extra: Partial<Extract<LockCommand, { op: 'acquire' }>> = {}) {
    return this.run({ op: 'acquire', session, req, name, mode: 'mutex', ...extra } as LockCommand) as Extract<LockResult, { op: 'acquire' }>;
  }
  release(session: number, req: number) {
    return this.run({ op: 'release', session, req }) as Extract<LockResult, { op: 'release' }>;
  }
  lock(name = 'm'): LockInfo | undefined {
    return this.sm.query({ op: 'lock', name }) as LockInfo | undefined;
  }
}

const grants = (events: LockEvent[]) => events.filter((e) => e.type === 'granted').map((e) => [e.session, (e as { req: number }).req, (e as { token: number }).token]);

describe('LockStateMachine: mutex', () => {
  it('grants a free mutex at once with the log index of the grant as its fencing token', () => {
    const h = new Harness();
    const a = h.open();
    const r = h.acquire(a, 1);
    expect(r).toMatchObject({ status: 'granted', token: h.index, name: 'm' });
    expect(r.events).toEqual([{ type: 'granted', session: a, req: 1, name: 'm', mode: 'mutex', token: h.index }]);
  });

  it('queues waiters FIFO by log index; a release with N waiters wakes exactly one, with a higher token', () => {
    const h = new Harness();
    const [a, b, c, d] = [h.open(), h.open(), h.open(), h.open()];
    const first = h.acquire(a, 1);
    expect(h.acquire(b, 1)).toMatchObject({ status: 'waiting', position: 0 });
    expect(h.acquire(c, 1)).toMatchObject({ status: 'waiting', position: 1 });
    expect(h.acquire(d, 1)).toMatchObject({ status: 'waiting', position: 2 });
    const r1 = h.release(a, 1);
    expect(r1.released).toBe('held');
    expect(grants(r1.events)).toEqual([[b, 1, h.index]]);
    expect(h.index).toBeGreaterThan((first as { token: number }).token);
    const r2 = h.release(b, 1);
    expect(grants(r2.events)).toEqual([[c, 1, h.index]]);
    expect(h.lock()?.waiters.map((w) => w.session)).toEqual([d]);
  });

  it('is reentrant per session: the same token, held until every request of it is released', () => {
    const h = new Harness();
    const [a, b] = [h.open(), h.open()];
    const t = (h.acquire(a, 1) as { token: number }).token;
    h.acquire(b, 1);
    expect(h.acquire(a, 2)).toMatchObject({ status: 'granted', token: t });
    expect(grants(h.release(a, 1).events)).toEqual([]);
    expect(grants(h.release(a, 2).events)).toEqual([[b, 1, h.index]]);
  });

  it('acquire is idempotent by request id: a retry neither queues twice nor makes a second owner', () => {
    const h = new Harness();
    const [a, b] = [h.open(), h.open()];
    const t = (h.acquire(a, 7) as { token: number }).token;
    expect(h.acquire(a, 7)).toMatchObject({ status: 'granted', token: t, events: [] });
    h.acquire(b, 1);
    expect(h.acquire(b, 1)).toMatchObject({ status: 'waiting', position: 0 });
    expect(h.lock()?.waiters).toHaveLength(1);
    // Releasing twice releases once; an acquire retried after its release changes nothing.
    expect(h.release(a, 7).released).toBe('held');
    expect(h.release(a, 7).released).toBe('none');
    expect(h.acquire(a, 7)).toMatchObject({ status: 'done' });
    expect(h.lock()?.holders.map((x) => x.session)).toEqual([b]);
  });

  it('tryAcquire (wait: false) answers busy and queues nothing', () => {
    const h = new Harness();
    const [a, b] = [h.open(), h.open()];
    h.acquire(a, 1);
    expect(h.acquire(b, 1, 'm', { wait: false })).toMatchObject({ status: 'busy' });
    expect(h.lock()?.waiters).toEqual([]);
    expect(h.acquire(b, 1, 'm', { wait: false })).toMatchObject({ status: 'done' });
  });

  it('a tryAcquire on a free lock behind nobody is granted', () => {
    const h = new Harness();
    expect(h.acquire(h.open(), 1, 'm', { wait: false })).toMatchObject({ status: 'granted' });
  });

  it('a waiter that gives up (release of its request) leaves the queue and unblocks nobody early', () => {
    const h = new Harness();
    const [a, b, c] = [h.open(), h.open(), h.open()];
    h.acquire(a, 1);
    h.acquire(b, 1);
    h.acquire(c, 1);
    expect(h.release(b, 1)).toMatchObject({ released: 'waiting', events: [] });
    expect(grants(h.release(a, 1).events)).toEqual([[c, 1, h.index]]);
  });

  it('a clean close hands the lock on at once, without lock-delay', () => {
    const h = new Harness();
    const [a, b] = [h.open(), h.open()];
    h.acquire(a, 1);
    h.acquire(b, 1);
    const r = h.run({ op: 'close', session: a });
    expect(grants(r.events)).toEqual([[b, 1, h.index]]);
    expect(() => h.run({ op: 'keepalive', session: a })).toThrow(LockSessionExpiredError);
  });
});

describe('LockStateMachine: sessions on replicated time', () => {
  it('a session expires only by time entries, after its TTL without keepalive; its lock is lost, then lock-delay', () => {
    const h = new Harness();
    const [a, b] = [h.open(1000), h.open(5000)];
    const tokenA = (h.acquire(a, 1) as { token: number }).token;
    h.acquire(b, 1);
    expect(h.time(999)).toEqual([]);
    const ev = h.time(1);
    expect(ev).toEqual([
      { type: 'lost', session: a, req: 1, name: 'm', token: tokenA, reason: 'expired' },
      { type: 'expired', session: a },
    ]);
    // Lock-delay (Chubby 2.4): nothing is granted for 500 ms of replicated time, though b waits.
    expect(h.lock()).toMatchObject({ holders: [], delayUntil: 1500 });
    expect(grants(h.time(499))).toEqual([]);
    const g = h.time(1);
    expect(grants(g)).toEqual([[b, 1, h.index]]);
  });

  it('a keepalive renews to now + TTL; expiry then counts from it', () => {
    const h = new Harness();
    const a = h.open(1000);
    h.time(800);
    expect(h.run({ op: 'keepalive', session: a })).toMatchObject({ ttl: 1000 });
    expect(h.time(999)).toEqual([]);
    expect(h.time(1)).toEqual([{ type: 'expired', session: a }]);
  });

  it('a waiter whose session expires fails at once, and the queue moves past it', () => {
    const h = new Harness({ lockDelayMs: 0 });
    const [a, b, c] = [h.open(5000), h.open(1000), h.open(5000)];
    h.acquire(a, 1);
    h.acquire(b, 1);
    h.acquire(c, 1);
    h.time(500);
    h.run({ op: 'keepalive', session: a });
    h.run({ op: 'keepalive', session: c });
    expect(h.time(500)).toEqual([
      { type: 'failed', session: b, req: 1, name: 'm', reason: 'expired' },
      { type: 'expired', session: b },
    ]);
    expect(h.lock()?.waiters.map((w) => w.session)).toEqual([c]);
    expect(() => h.acquire(b, 2)).toThrow(LockSessionExpiredError);
    expect(grants(h.release(a, 1).events)).toEqual([[c, 1, h.index]]);
  });

  it('a time entry of a newer term moves no time and extends every session by its TTL', () => {
    const h = new Harness();
    const a = h.open(1000);
    h.time(900);
    expect(h.time(100_000, true)).toEqual([]);
    expect(h.sm.query({ op: 'session', session: a })).toMatchObject({ remaining: 1000 });
    expect(h.time(999)).toEqual([]);
    expect(h.time(1)).toEqual([{ type: 'expired', session: a }]);
  });

  it('time steps are clamped: a leader clock that jumps moves replicated time by at most maxTimeStepMs', () => {
    const h = new Harness({ maxTimeStepMs: 200 });
    const a = h.open(1000);
    expect(h.time(10_000)).toEqual([]);
    expect(h.sm.now).toBe(200);
    expect(h.sm.query({ op: 'session', session: a })).toMatchObject({ remaining: 800 });
  });

  it('raises a TTL below the minimum to it', () => {
    const h = new Harness({ minSessionTtlMs: 1500 });
    expect(h.run({ op: 'open', ttl: 10 })).toMatchObject({ ttl: 1500 });
  });
});

describe('LockStateMachine: read/write lock', () => {
  it('grants a run of readers together, then a writer alone; a reader behind a waiting writer waits (FIFO)', () => {
    const h = new Harness();
    const [r1, r2, w, r3] = [h.open(), h.open(), h.open(), h.open()];
    expect(h.acquire(r1, 1, 'rw', { mode: 'read' })).toMatchObject({ status: 'granted' });
    expect(h.acquire(r2, 1, 'rw', { mode: 'read' })).toMatchObject({ status: 'granted' });
    expect(h.acquire(w, 1, 'rw', { mode: 'write' })).toMatchObject({ status: 'waiting' });
    expect(h.acquire(r3, 1, 'rw', { mode: 'read' })).toMatchObject({ status: 'waiting', position: 1 });
    expect(grants(h.release(r1, 1).events)).toEqual([]);
    expect(grants(h.release(r2, 1).events)).toEqual([[w, 1, h.index]]);
    expect(grants(h.release(w, 1).events)).toEqual([[r3, 1, h.index]]);
  });

  it('downgrade: a writer takes the read side at once, releases the write, and keeps reading while others join', () => {
    const h = new Harness();
    const [w, r, w2] = [h.open(), h.open(), h.open()];
    h.acquire(w, 1, 'rw', { mode: 'write' });
    h.acquire(r, 1, 'rw', { mode: 'read' });
    h.acquire(w2, 1, 'rw', { mode: 'write' });
    expect(h.acquire(w, 2, 'rw', { mode: 'read' })).toMatchObject({ status: 'granted' });
    const rel = h.release(w, 1);
    expect(grants(rel.events)).toEqual([[r, 1, h.index]]);
    expect(h.lock('rw')?.holders.map((x) => [x.session, x.mode])).toEqual([
      [w, 'read'],
      [r, 'read'],
    ]);
    expect(h.lock('rw')?.waiters.map((x) => x.session)).toEqual([w2]);
  });

  it('refuses an upgrade from read to write with a typed error', () => {
    const h = new Harness();
    const a = h.open();
    h.acquire(a, 1, 'rw', { mode: 'read' });
    expect(() => h.acquire(a, 2, 'rw', { mode: 'write' })).toThrow(LockKindError);
  });
});

describe('LockStateMachine: counting semaphore', () => {
  it('grants up to its permits, queues the rest FIFO without barging', () => {
    const h = new Harness();
    const [a, b, c, d] = [h.open(), h.open(), h.open(), h.open()];
    const sem = { mode: 'semaphore', permits: 3 } as const;
    expect(h.acquire(a, 1, 's', { ...sem, count: 2 })).toMatchObject({ status: 'granted' });
    expect(h.acquire(b, 1, 's', { ...sem, count: 2 })).toMatchObject({ status: 'waiting' });
    // One permit is free, but c is behind b: no barging.
    expect(h.acquire(c, 1, 's', sem)).toMatchObject({ status: 'waiting', position: 1 });
    expect(grants(h.release(a, 1).events)).toEqual([
      [b, 1, h.index],
      [c, 1, h.index],
    ]);
    expect(h.acquire(d, 1, 's', sem)).toMatchObject({ status: 'waiting' });
  });

  it('refuses a different size or kind under the same name', () => {
    const h = new Harness();
    const a = h.open();
    h.acquire(a, 1, 's', { mode: 'semaphore', permits: 3 });
    expect(() => h.acquire(a, 2, 's', { mode: 'semaphore', permits: 4 })).toThrow(LockKindError);
    expect(() => h.acquire(a, 3, 's')).toThrow(LockKindError);
  });
});

describe('LockStateMachine: bad input and snapshots', () => {
  it('refuses malformed commands with InvalidArgumentError, the same on every replica', () => {
    const h = new Harness();
    const a = h.open();
    for (const bad of [
      { op: 'acquire', session: a, req: 0, name: 'm', mode: 'mutex' },
      { op: 'acquire', session: a, req: 1, name: '', mode: 'mutex' },
      { op: 'acquire', session: a, req: 1, name: 'm', mode: 'exclusive' },
      { op: 'acquire', session: a, req: 1, name: 'm', mode: 'semaphore' },
      { op: 'acquire', session: a, req: 1, name: 'm', mode: 'mutex', permits: 2 },
      { op: 'open', ttl: -1 },
      { op: 'nope' },
    ]) {
      expect(() => h.run(bad as LockCommand)).toThrow(InvalidArgumentError);
    }
    expect(() => h.acquire(999, 1)).toThrow(SessionExpiredError);
  });

  it('forgets finished request ids beyond a bound, but a retry at or below the floor stays a no-op', () => {
    const h = new Harness();
    const a = h.open(1e9);
    for (let req = 1; req <= DONE_REQUESTS_KEPT + 10; req++) {
      h.acquire(a, req);
      h.release(a, req);
    }
    expect(h.acquire(a, 1)).toMatchObject({ status: 'done' });
    expect(h.lock()).toBeUndefined();
  });

  it('a snapshot restores holders, queues, lock-delay, sessions and time, and goes on the same', () => {
    const build = () => {
      const h = new Harness();
      const [a, b, c] = [h.open(1000), h.open(5000), h.open(5000)];
      h.acquire(a, 1);
      h.acquire(b, 1);
      h.acquire(c, 2, 'rw', { mode: 'read' });
      h.acquire(c, 3, 's', { mode: 'semaphore', permits: 2 });
      h.time(1000);
      return h;
    };
    const h = build();
    const copy = new LockStateMachine({ minSessionTtlMs: 100, lockDelayMs: 500 });
    copy.restore(h.sm.snapshot());
    expect(copy.snapshot()).toEqual(h.sm.snapshot());
    expect(copy.query({ op: 'locks' })).toEqual(h.sm.query({ op: 'locks' }));
    // Both go on to grant b once lock-delay ends, at the same entry, and remember c's finished requests.
    const other = new Harness();
    other.sm = copy;
    other.index = h.index;
    other.clock = h.clock;
    expect(grants(other.time(500))).toEqual(grants(h.time(500)));
    expect(copy.snapshot()).toEqual(h.sm.snapshot());
  });

  it('refuses an unknown snapshot format', () => {
    const sm = new LockStateMachine();
    expect(() => sm.restore(new Uint8Array([0xc1]))).toThrow(MalformedMessageError);
    expect(() => sm.restore(new Uint8Array([0x81, 0xa1, 0x76, 0x09]))).toThrow(/unknown format/);
  });
});

describe('LockStateMachine: expiries at one time entry', () => {
  it('a waiter whose session expires at the same entry as the holder fails; it is never granted and lost at once', () => {
    const h = new Harness({ lockDelayMs: 0 });
    const [a, b, c] = [h.open(1000), h.open(1000), h.open(5000)];
    h.acquire(a, 1);
    h.acquire(b, 1);
    h.acquire(c, 1);
    const ev = h.time(1000);
    expect(ev.filter((e) => e.type === 'granted').map((e) => e.session)).toEqual([c]);
    expect(ev.filter((e) => e.type === 'failed').map((e) => e.session)).toEqual([b]);
  });
});
