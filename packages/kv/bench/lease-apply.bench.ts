/**
 * Apply cost of lease bookkeeping on one replica (no consensus): a time entry scans every lease for expiry, a
 * keepalive of 10,000 ids renews them. Run: tsx --conditions=@consensus-kit/source bench/lease-apply.bench.ts
 */
import { KvStateMachine } from '@consensus-kit/kv';
for (const n of [10_000, 100_000, 1_000_000]) {
  const sm = new KvStateMachine({ maxLeases: 2_000_000 });
  let i = 0;
  const e = () => ({ index: ++i, term: 1, type: 'command' as const, data: new Uint8Array() });
  sm.apply(e(), sm.timeCommand(1, 0));
  for (let k = 0; k < n; k++) sm.apply(e(), { cmd: { op: 'leaseGrant', ttl: 3_600_000 } });
  let t = 0;
  const t0 = performance.now();
  for (let r = 0; r < 50; r++) sm.apply(e(), sm.timeCommand(1, (t += 500)));
  const per = (performance.now() - t0) / 50;
  const ids = Array.from({ length: 10_000 }, (_, j) => j + 1);
  const t1 = performance.now();
  for (let r = 0; r < 50; r++) sm.apply(e(), { cmd: { op: 'leaseKeepAlive', ids } });
  const ka = (performance.now() - t1) / 50;
  console.log(JSON.stringify({ leases: n, timeEntryApplyMs: Number(per.toFixed(3)), keepAlive10kApplyMs: Number(ka.toFixed(3)) }));
}
