import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, SessionExpiredError, seededRandom, type LogEntry } from '@consensus-kit/core';
import { admitCommand, type KvCommand, type KvRequest, type KvResult, type LeaseGrantResult, type LeaseInfo, type LeaseKeepAliveResult, type TimeResult } from './commands';
import { LeaseNotFoundError, kvErrorFromRemote } from './errors';
import { KvStateMachine } from './kv-state-machine';
import { DEFAULT_MIN_LEASE_TTL_MS } from './lease';

let index = 0;
const entry = (): LogEntry => ({ index: ++index, term: 1, type: 'command', data: new Uint8Array() });
const apply = (sm: KvStateMachine, req: KvRequest): KvResult => sm.apply(entry(), req);
const run = (sm: KvStateMachine, cmd: KvCommand): KvResult => apply(sm, { cmd });
const grant = (sm: KvStateMachine, ttl: number, id?: number) => run(sm, id === undefined ? { op: 'leaseGrant', ttl } : { op: 'leaseGrant', ttl, id }) as LeaseGrantResult;
/** A time entry of `term` carrying leader clock `ms`, as the host proposes it (through `timeCommand`). */
const time = (sm: KvStateMachine, term: number, ms: number) => apply(sm, sm.timeCommand(term, ms)) as TimeResult;
const keepAlive = (sm: KvStateMachine, ...ids: number[]) => run(sm, { op: 'leaseKeepAlive', ids }) as LeaseKeepAliveResult;
const ttlOf = (sm: KvStateMachine, id: number, keys = false) => sm.query({ op: 'leaseTimeToLive', id, keys }) as LeaseInfo;
const has = (sm: KvStateMachine, key: string) => sm.query({ op: 'get', key }) !== undefined;

describe('leases: grant, ids and TTLs (etcd lessor)', () => {
  it('ids come from a counter (the same on every replica), an explicit id is taken as given, a used one is refused', () => {
    const sm = new KvStateMachine();
    expect(grant(sm, 5000)).toMatchObject({ id: 1, ttl: 5000 });
    expect(grant(sm, 5000, 3)).toMatchObject({ id: 3 });
    expect(grant(sm, 5000)).toMatchObject({ id: 2 });
    expect(grant(sm, 5000)).toMatchObject({ id: 4 }); // 3 is taken: the counter skips it
    expect(() => grant(sm, 5000, 3)).toThrow(/lease 3 already exists/);
    expect(sm.query({ op: 'leases' })).toEqual([1, 2, 3, 4].map((id) => ({ id, ttl: 5000, remaining: 5000 })));
  });

  it('a TTL below the minimum is raised to it (1.5 election timeouts, as etcd); bad TTLs and ids are InvalidArgumentError', () => {
    const sm = new KvStateMachine();
    expect(grant(sm, 10)).toMatchObject({ ttl: DEFAULT_MIN_LEASE_TTL_MS });
    expect(grant(new KvStateMachine({ minLeaseTtlMs: 200 }), 10)).toMatchObject({ ttl: 200 });
    for (const cmd of [{ op: 'leaseGrant', ttl: 0 }, { op: 'leaseGrant', ttl: 1.5 }, { op: 'leaseGrant', ttl: 1000, id: -1 }, { op: 'leaseRevoke', id: 'x' }, { op: 'leaseKeepAlive', ids: [] }]) {
      expect(() => run(sm, cmd as KvCommand)).toThrow(InvalidArgumentError);
    }
  });

  it('the lease limit refuses a grant beyond it, the same on every replica', () => {
    const sm = new KvStateMachine({ maxLeases: 2 });
    grant(sm, 5000);
    grant(sm, 5000);
    expect(() => grant(sm, 5000)).toThrow(/too many leases/);
  });
});

describe('leases: expiry is decided only by time entries (DESIGN r2)', () => {
  it('no command but a time entry expires a lease, however many are applied', () => {
    const sm = new KvStateMachine();
    time(sm, 1, 0);
    const { id } = grant(sm, 2000);
    run(sm, { op: 'put', key: 'eph', value: 'x', lease: id });
    for (let i = 0; i < 100; i++) run(sm, { op: 'put', key: `k${i}`, value: 'v' });
    expect(has(sm, 'eph')).toBe(true);
    expect(time(sm, 1, 1999)).toMatchObject({ now: 1999, expired: 0 });
    expect(has(sm, 'eph')).toBe(true);
    expect(ttlOf(sm, id)).toEqual({ id, ttl: 2000, remaining: 1 });
    const before = sm.currentRevision;
    expect(time(sm, 1, 2000)).toEqual({ op: 'time', now: 2000, expired: 1, revision: before + 1 });
    expect(has(sm, 'eph')).toBe(false);
    expect(() => ttlOf(sm, id)).toThrow(LeaseNotFoundError);
    expect(sm.changes(before + 1)).toEqual([expect.objectContaining({ type: 'delete', key: 'eph', revision: before + 1 })]);
  });

  it('never earlier than TTL of replicated time after the last acknowledged keepalive: expiry = apply-time now + TTL', () => {
    const sm = new KvStateMachine();
    time(sm, 1, 0);
    const { id } = grant(sm, 3000);
    run(sm, { op: 'put', key: 'eph', value: 'x', lease: id });
    // A keepalive every 1 s of leader clock: the lease lives on, far past its TTL.
    for (let t = 1000; t <= 20_000; t += 1000) {
      time(sm, 1, t);
      expect(keepAlive(sm, id)).toMatchObject({ kept: [[id, 3000]], missing: [] });
      expect(ttlOf(sm, id).remaining).toBe(3000);
    }
    // The last keepalive was applied at now = 20,000: alive at 22,999, gone at 23,000.
    time(sm, 1, 22_999);
    expect(has(sm, 'eph')).toBe(true);
    time(sm, 1, 23_000);
    expect(has(sm, 'eph')).toBe(false);
  });

  it('a time entry of a newer term adds no time and extends every live lease to now + TTL (etcd Promote)', () => {
    const sm = new KvStateMachine();
    time(sm, 1, 0);
    const { id } = grant(sm, 2000);
    run(sm, { op: 'put', key: 'eph', value: 'x', lease: id });
    time(sm, 1, 1500);
    expect(ttlOf(sm, id).remaining).toBe(500);
    // A new leader whose clock reads anything: time does not move, the lease gets its whole TTL back.
    expect(time(sm, 2, 987_654)).toMatchObject({ now: 1500, expired: 0 });
    expect(ttlOf(sm, id).remaining).toBe(2000);
    // The old leader's late entries count for nothing.
    expect(time(sm, 1, 1_000_000)).toMatchObject({ now: 1500, expired: 0 });
    time(sm, 2, 987_654 + 1999);
    expect(has(sm, 'eph')).toBe(true);
    time(sm, 2, 987_654 + 2000);
    expect(has(sm, 'eph')).toBe(false);
  });

  it('one time entry moves time by at most maxTimeStepMs: a paused leader cannot expire a lease in one jump', () => {
    const sm = new KvStateMachine({ maxTimeStepMs: 1000 });
    time(sm, 1, 0);
    const { id } = grant(sm, 2500);
    expect(time(sm, 1, 60_000)).toMatchObject({ now: 1000, expired: 0 });
    expect(keepAlive(sm, id).kept).toEqual([[id, 2500]]);
    expect(ttlOf(sm, id).remaining).toBe(2500);
  });

  it('leases expiring at one time entry delete all their keys in one revision, with delete events', () => {
    const sm = new KvStateMachine();
    time(sm, 1, 0);
    const a = grant(sm, 2000).id;
    const b = grant(sm, 2500).id;
    const c = grant(sm, 9000).id;
    run(sm, { op: 'put', key: 'b/1', value: '1', lease: b });
    run(sm, { op: 'put', key: 'a/2', value: '2', lease: a });
    run(sm, { op: 'put', key: 'a/1', value: '1', lease: a });
    run(sm, { op: 'put', key: 'c/1', value: '1', lease: c });
    const rev = sm.currentRevision;
    expect(time(sm, 1, 3000)).toEqual({ op: 'time', now: 3000, expired: 2, revision: rev + 1 });
    expect(sm.changes(rev + 1).map((e) => [e.type, e.revision, e.type === 'delete' ? e.key : e.kv.key])).toEqual([
      ['delete', rev + 1, 'a/1'],
      ['delete', rev + 1, 'a/2'],
      ['delete', rev + 1, 'b/1'],
    ]);
    expect(sm.query({ op: 'leases' })).toEqual([{ id: c, ttl: 9000, remaining: 6000 }]);
  });
});

describe('leases: keys, revoke and keepalive batches', () => {
  it('revoke deletes its keys in one revision with events; a lease without keys moves no revision', () => {
    const sm = new KvStateMachine();
    const { id } = grant(sm, 5000);
    run(sm, { op: 'put', key: 'x', value: '1', lease: id });
    run(sm, { op: 'put', key: 'y', value: '2', lease: id });
    run(sm, { op: 'put', key: 'z', value: '3' });
    const rev = sm.currentRevision;
    expect(run(sm, { op: 'leaseRevoke', id })).toEqual({ op: 'leaseRevoke', revision: rev + 1, deleted: 2 });
    expect(sm.changes(rev + 1).map((e) => (e.type === 'delete' ? e.key : '?'))).toEqual(['x', 'y']);
    expect(sm.range('').map((kv) => kv.key)).toEqual(['z']);
    const empty = grant(sm, 5000).id;
    expect(run(sm, { op: 'leaseRevoke', id: empty })).toEqual({ op: 'leaseRevoke', revision: rev + 1, deleted: 0 });
    expect(() => run(sm, { op: 'leaseRevoke', id: empty })).toThrow(LeaseNotFoundError);
  });

  it('a put with a lease moves the key between leases; a plain put or txn put detaches it; a delete detaches it', () => {
    const sm = new KvStateMachine();
    const a = grant(sm, 5000).id;
    const b = grant(sm, 5000).id;
    run(sm, { op: 'put', key: 'k', value: '1', lease: a });
    expect(ttlOf(sm, a, true).keys).toEqual(['k']);
    run(sm, { op: 'put', key: 'k', value: '2', lease: b });
    expect(ttlOf(sm, a, true).keys).toEqual([]);
    expect(ttlOf(sm, b, true).keys).toEqual(['k']);
    expect(sm.query({ op: 'get', key: 'k' })).toMatchObject({ lease: b });
    run(sm, { op: 'put', key: 'k', value: '3' });
    expect(ttlOf(sm, b, true).keys).toEqual([]);
    expect(sm.query({ op: 'get', key: 'k' })).toMatchObject({ lease: 0 });
    run(sm, { op: 'txn', then: [{ op: 'put', key: 'k', value: '4', lease: a }] });
    expect(ttlOf(sm, a, true).keys).toEqual(['k']);
    run(sm, { op: 'txn', then: [{ op: 'put', key: 'k', value: '5' }] });
    expect(ttlOf(sm, a, true).keys).toEqual([]);
    run(sm, { op: 'put', key: 'k', value: '6', lease: a });
    run(sm, { op: 'delete', key: 'k' });
    expect(ttlOf(sm, a, true).keys).toEqual([]);
    // Revoking now deletes nothing: the key was detached by its deletion.
    expect(run(sm, { op: 'leaseRevoke', id: a })).toMatchObject({ deleted: 0 });
  });

  it('a missing lease is LeaseNotFoundError on put and on txn put, and nothing of the transaction is written', () => {
    const sm = new KvStateMachine();
    run(sm, { op: 'put', key: 'k', value: '1' });
    expect(() => run(sm, { op: 'put', key: 'k', value: '2', lease: 42 })).toThrow(LeaseNotFoundError);
    const txn: KvCommand = { op: 'txn', then: [{ op: 'put', key: 'other', value: 'x' }, { op: 'txn', then: [{ op: 'put', key: 'k', value: '3', lease: 42 }] }] };
    expect(() => run(sm, txn)).toThrow(expect.objectContaining({ leaseId: 42 }));
    expect(sm.currentRevision).toBe(1);
    expect(sm.query({ op: 'get', key: 'other' })).toBeUndefined();
    // A lease named only in the branch not taken is not checked (etcd checks the ops that run).
    expect(run(sm, { op: 'txn', if: [{ key: 'k', target: 'version', cmp: '=', value: 9 }], then: [{ op: 'put', key: 'k', value: '3', lease: 42 }] })).toMatchObject({ succeeded: false });
  });

  it('in a session, a retried put with a missing lease gets LeaseNotFoundError again, with its lease id', () => {
    const sm = new KvStateMachine();
    const req: KvRequest = { cmd: { op: 'put', key: 'k', value: '1', lease: 7 }, session: { id: 'c', seq: 1 } };
    expect(() => apply(sm, req)).toThrow(LeaseNotFoundError);
    grant(sm, 5000, 7);
    let again: unknown;
    try {
      apply(sm, req);
    } catch (e) {
      again = e;
    }
    expect(LeaseNotFoundError.is(again) && again.leaseId).toBe(7);
    expect(sm.query({ op: 'get', key: 'k' })).toBeUndefined();
  });

  it('one keepalive command renews a batch and reports the ids it did not find', () => {
    const sm = new KvStateMachine();
    time(sm, 1, 0);
    const ids = Array.from({ length: 10_000 }, () => grant(sm, 4000).id);
    time(sm, 1, 3000);
    const r = keepAlive(sm, ...ids, 99_999);
    expect(r.kept).toHaveLength(10_000);
    expect(r.missing).toEqual([99_999]);
    time(sm, 1, 6999);
    expect(sm.leaseCount).toBe(10_000);
    time(sm, 1, 7000);
    expect(sm.leaseCount).toBe(0);
  });

  it('LeaseNotFoundError keeps its class across the wire (rebuilt from the message)', () => {
    const wire = new InvalidArgumentError('lease 12 not found');
    const back = kvErrorFromRemote(wire);
    expect(back).toBeInstanceOf(LeaseNotFoundError);
    expect((back as LeaseNotFoundError).leaseId).toBe(12);
  });
});

describe('time entries come only from the leader host', () => {
  it('admitCommand refuses a time command (the service and the client call it), apply refuses one inside a session', () => {
    expect(() => admitCommand({ op: 'time', term: 9, ms: 1e12 })).toThrow(/never taken from a client/);
    const sm = new KvStateMachine();
    expect(() => apply(sm, { cmd: { op: 'time', term: 1, ms: 5 }, session: { id: 'c', seq: 1 } })).toThrow(InvalidArgumentError);
    expect(sm.now).toBe(0);
    expect(() => apply(sm, { cmd: { op: 'time', term: -1, ms: 5 } as KvCommand })).toThrow(InvalidArgumentError);
  });

  it('a retried session seq is not re-run by a time entry in between (sessions and time are independent)', () => {
    const sm = new KvStateMachine();
    time(sm, 1, 0);
    apply(sm, { cmd: { op: 'leaseGrant', ttl: 2000 }, session: { id: 'c', seq: 1 } });
    time(sm, 1, 100);
    expect(apply(sm, { cmd: { op: 'leaseGrant', ttl: 2000 }, session: { id: 'c', seq: 1 } })).toMatchObject({ id: 1 });
    expect(sm.leaseCount).toBe(1);
    apply(sm, { cmd: { op: 'leaseGrant', ttl: 2000 }, session: { id: 'c', seq: 2, ack: 1 } });
    expect(() => apply(sm, { cmd: { op: 'leaseGrant', ttl: 2000 }, session: { id: 'c', seq: 1 } })).toThrow(SessionExpiredError);
  });
});

describe('snapshot format 3: leases and replicated time', () => {
  it('round-trips leases, their keys, the id counter and time; the copy goes on exactly as the original', () => {
    const sm = new KvStateMachine();
    time(sm, 3, 100);
    time(sm, 3, 700);
    const a = grant(sm, 2000).id;
    const b = grant(sm, 5000, 10).id;
    run(sm, { op: 'put', key: 'a/1', value: '1', lease: a });
    run(sm, { op: 'put', key: 'b/1', value: '1', lease: b });
    const copy = new KvStateMachine();
    copy.restore(sm.snapshot());
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true);
    expect(copy.now).toBe(600);
    expect(ttlOf(copy, b, true)).toEqual({ id: 10, ttl: 5000, remaining: 5000, keys: ['b/1'] });
    for (const m of [sm, copy]) {
      expect(grant(m, 3000).id).toBe(2);
      expect(time(m, 3, 2700)).toMatchObject({ now: 2600, expired: 1 });
      run(m, { op: 'leaseRevoke', id: b });
    }
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true);
    expect(copy.range('')).toEqual([]);
  });

  it('formats 1 and 2 (testdata) restore with no lease and replicated time 0, and take leases from then on', () => {
    for (const file of ['snapshot-v1.bin', 'snapshot-v2.bin']) {
      const sm = new KvStateMachine();
      sm.restore(readFileSync(new URL(`../testdata/${file}`, import.meta.url)));
      expect(sm.query({ op: 'leases' })).toEqual([]);
      expect(sm.now).toBe(0);
      expect(sm.query({ op: 'get', key: 'config/port' })).toMatchObject({ value: '7200', lease: 0 });
      const { id } = grant(sm, 2000);
      expect(id).toBe(1);
      run(sm, { op: 'put', key: 'config/port', value: '7300', lease: id });
      time(sm, 1, 0);
      time(sm, 1, 2000);
      expect(sm.query({ op: 'get', key: 'config/port' })).toBeUndefined();
    }
  });

  it('a snapshot seeding a NEW cluster (terms start again at 1) expires leases there only once its term is forgotten', () => {
    const old = new KvStateMachine();
    time(old, 7, 0);
    const { id } = grant(old, 2000);
    run(old, { op: 'put', key: 'eph', value: 'x', lease: id });
    time(old, 7, 500);
    // As is: the new cluster's term-1 entries look like an old leader's late ones, and time never moves.
    const asIs = new KvStateMachine();
    asIs.restore(old.snapshot());
    for (let t = 0; t <= 10_000; t += 500) time(asIs, 1, t);
    expect(asIs.now).toBe(500);
    expect(has(asIs, 'eph')).toBe(true);
    // Made for a new cluster: its first leader's entry extends the lease to now + TTL, then time moves.
    const seeded = new KvStateMachine();
    seeded.restore(KvStateMachine.snapshotForNewCluster(old.snapshot()));
    expect(seeded.now).toBe(500);
    expect(ttlOf(seeded, id, true)).toMatchObject({ keys: ['eph'] });
    time(seeded, 1, 123_000);
    expect(ttlOf(seeded, id).remaining).toBe(2000);
    time(seeded, 1, 124_999);
    expect(has(seeded, 'eph')).toBe(true);
    time(seeded, 1, 125_000);
    expect(has(seeded, 'eph')).toBe(false);
  });

  it('a restore of format 3 replaces the lease table of the machine it lands in', () => {
    const src = new KvStateMachine();
    const dst = new KvStateMachine();
    grant(dst, 5000, 77);
    dst.restore(src.snapshot());
    expect(dst.leaseCount).toBe(0);
  });
});

describe('determinism', () => {
  it('two replicas fed the same entries (one restored from a snapshot half-way) hold the same bytes after every entry', () => {
    const rnd = seededRandom(20);
    const a = new KvStateMachine({ historyRevisions: 50 });
    let b = new KvStateMachine({ historyRevisions: 50 });
    let clock = 0;
    let term = 1;
    for (let i = 0; i < 600; i++) {
      const r = rnd();
      let req: KvRequest;
      if (r < 0.2) {
        clock += Math.floor(rnd() * 900);
        if (rnd() < 0.03) term++;
        req = a.timeCommand(term, clock);
      } else if (r < 0.3) req = { cmd: { op: 'leaseGrant', ttl: 1500 + Math.floor(rnd() * 3000) } };
      else if (r < 0.4) req = { cmd: { op: 'leaseKeepAlive', ids: [1 + Math.floor(rnd() * 20), 1 + Math.floor(rnd() * 20)] } };
      else if (r < 0.45) req = { cmd: { op: 'leaseRevoke', id: 1 + Math.floor(rnd() * 20) } };
      else if (r < 0.5) req = { cmd: { op: 'delete', key: `k${Math.floor(rnd() * 10)}`, prefix: true } };
      else req = { cmd: { op: 'put', key: `k${Math.floor(rnd() * 30)}`, value: String(i), lease: rnd() < 0.3 ? 0 : 1 + Math.floor(rnd() * 20) } };
      const e = entry();
      const out = (m: KvStateMachine) => {
        try {
          return m.apply(e, req);
        } catch (err) {
          return String(err);
        }
      };
      expect(out(b)).toEqual(out(a));
      if (i === 300) {
        const c = new KvStateMachine({ historyRevisions: 50 });
        c.restore(b.snapshot());
        b = c;
      }
      expect(Buffer.from(b.snapshot()).equals(Buffer.from(a.snapshot()))).toBe(true);
    }
    expect(a.currentRevision).toBeGreaterThan(100);
  });
});
