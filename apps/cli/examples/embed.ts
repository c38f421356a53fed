// A three-node raft cluster inside one process, started with `startNode`: each node would normally run in its
// own process or machine, with the same options and its own `id`. Run it with
//   pnpm --filter consensus-cli exec tsx --conditions=@consensus-kit/source examples/embed.ts
// (EMBED_PORT=<base> moves the ports from 7301-7303 and 7401.)
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@consensus-kit/core/host';
import { startNode } from 'consensus-cli/embed';

const base = Number(process.env.EMBED_PORT ?? 7300);
const dir = mkdtempSync(join(tmpdir(), 'embed-'));
const peers = { n1: `127.0.0.1:${base + 1}`, n2: `127.0.0.1:${base + 2}`, n3: `127.0.0.1:${base + 3}` };

const nodes = await Promise.all(
  Object.keys(peers).map((id) =>
    startNode({
      protocol: 'raft',
      protocolOptions: { preVote: true, checkQuorum: true }, // typed: raft's own options
      id,
      dir: join(dir, id), // write-ahead log, hard state and snapshots
      peers, // listens on its own address in peers
      clusterId: 'embed-example',
      logger: silentLogger,
    }),
  ),
);
const n1 = nodes[0]!;

// kv mode (the default): an in-process kv client; on a follower it forwards to the leader.
const leader = await n1.node.waitForLeader({ timeoutMs: 10_000 });
await n1.client.put('greeting', 'hello');
console.log('leader', leader, 'greeting', (await n1.client.get('greeting'))?.value);

// /health /livez /readyz /metrics /status in a server of your own (or per route: n1.handlers.readyz).
const http = createServer(n1.handlers).listen(base + 101, '127.0.0.1');
await new Promise((resolve) => http.once('listening', resolve));
const res = await fetch(`http://127.0.0.1:${base + 101}/readyz`);
console.log('readyz', res.status, (await n1.metrics.text()).match(/^consensus_server_has_leader\{.*\} \d/m)?.[0]);

http.close();
await Promise.all(nodes.map((n) => n.stop())); // every port is free again
rmSync(dir, { recursive: true, force: true });
