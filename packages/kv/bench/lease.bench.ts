/**
 * Lease keepalives against a running cluster: grants N leases (default 10,000), attaches a key to each, and
 * keeps them all alive from ONE client for a while, printing the keepalive commands/s sent, the leases renewed
 * per second and how many leases were lost. Run it beside `consensus-cli bench --dir <dir>` to see the put/s
 * it costs (the target: under 5% of put throughput lost).
 *
 *   tsx --conditions=@consensus-kit/source bench/lease.bench.ts <cluster dir> [leases=10000] [seconds=15] [ttlMs=6000]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvClient, type KvChannel } from '@consensus-kit/kv';
import { createRpcClient } from '@consensus-kit/transport-tcp';

const [dir, n = '10000', secs = '15', ttlArg = '6000'] = process.argv.slice(2);
if (dir === undefined) {
  console.error('usage: lease.bench.ts <cluster dir> [leases] [seconds] [ttlMs]');
  process.exit(2);
}
const cluster = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { clusterId: string; nodes: { host: string; port: number }[] };
const rpc = createRpcClient({ endpoints: cluster.nodes.map((x) => `${x.host}:${x.port}`), clusterId: cluster.clusterId, connectTimeoutMs: 300 });
let keepaliveCommands = 0;
let keepaliveIds = 0;
let counting = false;
const channel: KvChannel = {
  request<T>(body: unknown, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T> {
    const cmd = (body as { req?: { cmd?: { op?: string; ids?: number[] } } }).req?.cmd;
    if (counting && cmd?.op === 'leaseKeepAlive') {
      keepaliveCommands++;
      keepaliveIds += cmd.ids?.length ?? 0;
    }
    return rpc.request<T>(body, options);
  },
  close: () => rpc.close(),
};
const kv = new KvClient({ channel, timeoutMs: 30_000 });
const leases = Number(n);
const ttl = Number(ttlArg);

async function pool(count: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

const started = performance.now();
const ids: number[] = [];
await pool(leases, async (i) => {
  const { id } = await kv.leases.grant(ttl);
  await kv.put(`bench/lease/${i}`, 'x', { lease: id });
  ids.push(id);
});
console.log(`granted ${leases} leases (TTL ${ttl} ms), a key on each, in ${((performance.now() - started) / 1000).toFixed(1)} s`);

let lost = 0;
counting = true;
const keepers = ids.map((id) => kv.leases.keepAlive(id, { onLost: () => lost++ }));
const t0 = performance.now();
await new Promise((r) => setTimeout(r, Number(secs) * 1000));
const elapsed = (performance.now() - t0) / 1000;
counting = false;
const live = (await kv.leases.list()).length;
console.log(
  JSON.stringify({
    leases,
    ttlMs: ttl,
    seconds: Number(elapsed.toFixed(1)),
    keepaliveCommandsPerS: Number((keepaliveCommands / elapsed).toFixed(2)),
    leasesRenewedPerS: Math.round(keepaliveIds / elapsed),
    leasesLost: lost,
    leasesLive: live,
  }),
);
for (const k of keepers) k.stop();
await pool(ids.length, async (i) => {
  await kv.leases.revoke(ids[i] as number).catch(() => undefined);
});
await kv.close();
