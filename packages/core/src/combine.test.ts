import { describe, expect, it } from 'vitest';
import { pack, unpack } from 'msgpackr';
import { COMBINED_SNAPSHOT_VERSION, combineStateMachines } from './combine';
import { ConfigError, InvalidArgumentError, MalformedMessageError } from './errors';
import type { LogEntry, RestoreJob, SnapshotJob, StateMachine } from './types';

class Register implements StateMachine<string, string, 'get', string> {
  value = '';
  apply(_e: LogEntry, cmd: string) {
    const old = this.value;
    this.value = cmd;
    return old;
  }
  query() {
    return this.value;
  }
  snapshot() {
    return new TextEncoder().encode(this.value);
  }
  restore(d: Uint8Array) {
    this.value = new TextDecoder().decode(d);
  }
}

const entry: LogEntry = { index: 1, term: 1, type: 'command', data: new Uint8Array() };

/** Keeps the time entries it is given. */
class Clocked implements StateMachine<{ at: [number, number] }, number, 'n', number> {
  seen: [number, number][] = [];
  apply(_e: LogEntry, cmd: { at: [number, number] }) {
    this.seen.push(cmd.at);
    return this.seen.length;
  }
  query() {
    return this.seen.length;
  }
  snapshot() {
    return new Uint8Array();
  }
  restore() {}
  timeCommand(term: number, clockMs: number) {
    return { at: [term, clockMs] as [number, number] };
  }
}

describe('combineStateMachines', () => {
  it('keeps time only if a machine does, and hands a time entry to every machine that keeps time, as its own command', () => {
    expect(combineStateMachines({ a: new Register() }).timeCommand).toBeUndefined();
    const r = new Register();
    const x = new Clocked();
    const y = new Clocked();
    const sm = combineStateMachines({ r, x, y });
    const cmd = sm.timeCommand?.(3, 1234);
    expect(cmd).toEqual({ time: [3, 1234] });
    sm.apply(entry, cmd as never);
    expect([x.seen, y.seen, r.value]).toEqual([[[3, 1234]], [[3, 1234]], '']);
    expect(() => sm.apply(entry, { time: 5 } as never)).toThrow(InvalidArgumentError);
  });

  it('routes commands and queries by name', () => {
    const a = new Register();
    const b = new Register();
    const sm = combineStateMachines({ a, b });
    expect(sm.apply(entry, { sm: 'a', cmd: 'x' })).toBe('');
    expect(sm.apply(entry, { sm: 'b', cmd: 'y' })).toBe('');
    expect(sm.apply(entry, { sm: 'a', cmd: 'z' })).toBe('x');
    expect(sm.query({ sm: 'a', q: 'get' })).toBe('z');
    expect(sm.query({ sm: 'b', q: 'get' })).toBe('y');
  });

  it('snapshots and restores every machine together', () => {
    const src = combineStateMachines({ a: new Register(), b: new Register() });
    src.apply(entry, { sm: 'a', cmd: 'one' });
    src.apply(entry, { sm: 'b', cmd: 'two' });
    const a = new Register();
    const b = new Register();
    combineStateMachines({ a, b }).restore(src.snapshot());
    expect([a.value, b.value]).toEqual(['one', 'two']);
  });

  it('fails the same way on every replica for an unknown machine, and validates its input', () => {
    const sm = combineStateMachines({ a: new Register() });
    expect(() => sm.apply(entry, { sm: 'nope', cmd: 'x' } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.apply(entry, { sm: 'toString', cmd: 'x' } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query(null as never)).toThrow(InvalidArgumentError);
    expect(() => combineStateMachines({})).toThrow(ConfigError);
    expect(() => combineStateMachines({ bad: {} as Register })).toThrow(ConfigError);
  });

  it('writes a versioned envelope', () => {
    const sm = combineStateMachines({ a: new Register() });
    sm.apply(entry, { sm: 'a', cmd: 'v' });
    const env = unpack(sm.snapshot()) as { combined: number; parts: Record<string, Uint8Array> };
    expect(env.combined).toBe(COMBINED_SNAPSHOT_VERSION);
    expect(new TextDecoder().decode(env.parts.a)).toBe('v');
  });

  it('refuses a newer envelope, and parts for a machine it does not run (their state would be lost)', () => {
    const sm = combineStateMachines({ a: new Register() });
    expect(() => sm.restore(pack({ combined: COMBINED_SNAPSHOT_VERSION + 1, parts: {} }))).toThrow(/version 2/);
    expect(() => sm.restore(pack({ combined: 1, parts: { a: new Uint8Array(), gone: new Uint8Array([1]) } }))).toThrow(MalformedMessageError);
    expect(() => sm.restore(pack({ combined: 1, parts: { a: 'x' } }))).toThrow(MalformedMessageError);
  });

  it('restores the unversioned map of the first combined format', () => {
    const a = new Register();
    const b = new Register();
    combineStateMachines({ a, b }).restore(pack({ a: new TextEncoder().encode('old') }));
    expect([a.value, b.value]).toEqual(['old', '']);
  });
});

describe('combineStateMachines: upgrading a single-machine cluster (primary)', () => {
  /** A machine whose snapshot is msgpack (as kv's is): a bare one must not be taken for a combined envelope. */
  class Counter implements StateMachine<{ add: number }, number, { get: true }, number> {
    n = 0;
    apply(_e: LogEntry, cmd: { add: number }) {
      return (this.n += cmd.add);
    }
    query() {
      return this.n;
    }
    snapshot() {
      return pack({ v: 1, n: this.n });
    }
    restore(d: Uint8Array) {
      this.n = (unpack(d) as { n: number }).n;
    }
  }

  it('sends commands and queries without sm (the old log and old clients) to the primary', () => {
    const kv = new Counter();
    const lock = new Register();
    const sm = combineStateMachines({ kv, lock }, { primary: 'kv' });
    expect(sm.apply(entry, { add: 2 })).toBe(2);
    expect(sm.apply(entry, { sm: 'kv', cmd: { add: 3 } })).toBe(5);
    expect(sm.apply(entry, { sm: 'lock', cmd: 'x' })).toBe('');
    expect(sm.query({ get: true })).toBe(5);
    expect(sm.query({ sm: 'lock', q: 'get' })).toBe('x');
  });

  it('restores a bare snapshot of the primary into the primary, never into an empty machine', () => {
    const old = new Counter();
    old.apply(entry, { add: 41 });
    const kv = new Counter();
    const lock = new Register();
    lock.value = 'initial';
    const sm = combineStateMachines({ kv, lock }, { primary: 'kv' });
    sm.restore(old.snapshot());
    expect([kv.n, lock.value]).toEqual([41, 'initial']);
    // The next snapshot is the envelope, and restores into both.
    sm.apply(entry, { sm: 'lock', cmd: 'held' });
    const kv2 = new Counter();
    const lock2 = new Register();
    combineStateMachines({ kv: kv2, lock: lock2 }, { primary: 'kv' }).restore(sm.snapshot());
    expect([kv2.n, lock2.value]).toEqual([41, 'held']);
  });

  it('restores a bare snapshot that is not msgpack into the primary', () => {
    const a = new Register();
    combineStateMachines({ a, b: new Register() }, { primary: 'a' }).restore(new TextEncoder().encode('plain'));
    expect(a.value).toBe('plain');
  });

  it('without a primary, refuses a bare snapshot and a command or query without sm', () => {
    const sm = combineStateMachines({ kv: new Counter(), lock: new Register() });
    expect(() => sm.restore(new Counter().snapshot())).toThrow(/primary/);
    expect(() => sm.apply(entry, { add: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query({ get: true } as never)).toThrow(InvalidArgumentError);
    expect(() => combineStateMachines({ kv: new Counter() }, { primary: 'nope' as 'kv' })).toThrow(ConfigError);
  });
});

/** A register with an incremental snapshot (r3): captures its value at `beginSnapshot`, done after two steps. */
class SlicedRegister extends Register {
  cancelled = 0;
  beginSnapshot(): SnapshotJob {
    const captured = this.value;
    let steps = 0;
    return {
      step: () => (++steps < 2 ? undefined : new TextEncoder().encode(captured)),
      cancel: () => void this.cancelled++,
    };
  }
}

describe('combineStateMachines: incremental snapshots (r3)', () => {
  it('captures every machine when the job begins (a plain one by snapshot() at once) and writes the envelope snapshot() writes', () => {
    const a = new SlicedRegister();
    const b = new Register();
    const sm = combineStateMachines({ a, b });
    sm.apply(entry, { sm: 'a', cmd: 'a1' });
    sm.apply(entry, { sm: 'b', cmd: 'b1' });
    const expected = sm.snapshot();
    const job = (sm.beginSnapshot as () => SnapshotJob)();
    sm.apply(entry, { sm: 'a', cmd: 'a2' });
    sm.apply(entry, { sm: 'b', cmd: 'b2' });
    let out: Uint8Array | undefined;
    let steps = 0;
    while ((out = job.step(1)) === undefined) steps++;
    expect(steps).toBe(1);
    expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
    const copy = combineStateMachines({ a: new Register(), b: new Register() });
    copy.restore(out);
    expect([copy.query({ sm: 'a', q: 'get' }), copy.query({ sm: 'b', q: 'get' })]).toEqual(['a1', 'b1']);
  });

  it('cancel reaches every unfinished job', () => {
    const a = new SlicedRegister();
    const c = new SlicedRegister();
    const job = (combineStateMachines({ a, c }).beginSnapshot as () => SnapshotJob)();
    job.cancel();
    expect([a.cancelled, c.cancelled]).toEqual([1, 1]);
  });
});

/** A register with an incremental restore (r3): the value is put in place at the third step, not before. */
class SlowRestoreRegister extends Register {
  cancelled = 0;
  beginRestore(d: Uint8Array): RestoreJob {
    const target = new TextDecoder().decode(d);
    let steps = 0;
    return {
      step: () => {
        if (++steps < 3) return false;
        this.value = target;
        return true;
      },
      cancel: () => void this.cancelled++,
    };
  }
}

describe('combineStateMachines: incremental restores (r3)', () => {
  it('runs the incremental machine as a job and restores the others in the step that ends it: nothing changes before that step', () => {
    const source = combineStateMachines({ a: new Register(), b: new Register() });
    source.apply(entry, { sm: 'a', cmd: 'a1' });
    source.apply(entry, { sm: 'b', cmd: 'b1' });
    const a = new SlowRestoreRegister();
    const b = new Register();
    const sm = combineStateMachines({ a, b });
    const job = (sm.beginRestore as (d: Uint8Array) => RestoreJob)(source.snapshot());
    expect(job.step(1)).toBe(false);
    expect(job.step(1)).toBe(false);
    expect([a.value, b.value]).toEqual(['', '']);
    expect(job.step(1)).toBe(true);
    expect([a.value, b.value]).toEqual(['a1', 'b1']);
    expect(job.step(1)).toBe(true);
  });

  it('checks the envelope when it begins, forwards a bare snapshot to the primary, and cancel reaches the job', () => {
    const a = new SlowRestoreRegister();
    const sm = combineStateMachines({ a, b: new Register() });
    expect(() => (sm.beginRestore as (d: Uint8Array) => RestoreJob)(pack({ combined: COMBINED_SNAPSHOT_VERSION + 1, parts: {} }))).toThrow(MalformedMessageError);
    const primaryOf = combineStateMachines({ a, b: new Register() }, { primary: 'a' });
    const bare = (primaryOf.beginRestore as (d: Uint8Array) => RestoreJob)(new TextEncoder().encode('bare'));
    while (!bare.step(1));
    expect(a.value).toBe('bare');
    const job = (sm.beginRestore as (d: Uint8Array) => RestoreJob)(sm.snapshot());
    job.cancel();
    expect(a.cancelled).toBe(1);
  });
});

/** An incremental machine whose snapshot is `size` bytes of a pattern, done in one step. */
class BlobMachine extends Register {
  constructor(readonly size: number) {
    super();
  }
  override snapshot() {
    return Uint8Array.from({ length: this.size }, (_, i) => (i * 31 + 7) & 0xff);
  }
  beginSnapshot(): SnapshotJob {
    const bytes = this.snapshot();
    return { step: () => bytes, cancel: () => undefined };
  }
}

describe('combineStateMachines: the envelope of an incremental snapshot is written in slices', () => {
  it('gives the bytes snapshot() gives for parts of every msgpack bin size, and copies a large part over many steps', () => {
    for (const size of [0, 1, 255, 256, 65_535, 65_536, 300_000]) {
      const sm = combineStateMachines({ kv: new BlobMachine(size), lock: new Register(), 'a-longer-machine-name': new Register() }, { primary: 'kv' });
      sm.apply(entry, { sm: 'lock', cmd: 'held' });
      const expected = sm.snapshot();
      const job = (sm.beginSnapshot as () => SnapshotJob)();
      let out: Uint8Array | undefined;
      let steps = 0;
      while ((out = job.step(1)) === undefined) steps++;
      expect(Buffer.from(out).equals(Buffer.from(expected)), `part of ${size} bytes`).toBe(true);
      // A budget of 1 copies a few KiB of the envelope a step: a 300 KB part is not copied in one step (packing the
      // envelope whole in one step copied a 197 MB kv part at once: 325-384 ms on the event loop).
      if (size === 300_000) expect(steps).toBeGreaterThan(30);
      const copy = combineStateMachines({ kv: new BlobMachine(0), lock: new Register(), 'a-longer-machine-name': new Register() }, { primary: 'kv' });
      copy.restore(out);
      expect(copy.query({ sm: 'lock', q: 'get' })).toBe('held');
    }
  });
});
