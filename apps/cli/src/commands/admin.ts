import { inspect, describeInspectReport } from '@consensus-kit/storage-fs';
import { createRpcClient } from '@consensus-kit/transport-tcp';
import { ClusterDir } from '../cluster-file';
import { connect } from '../connect';
import { CliError } from '../errors';
import type { NodeReport } from '../node-runner';
import { fetchReports, agreedLeader } from '../supervisor';

interface AdminOptions {
  dir: string;
  json?: boolean;
}

export async function leaderTransfer(o: AdminOptions, to: string): Promise<void> {
  const cd = new ClusterDir(o.dir);
  cd.node(cd.read(), to);
  const { rpc } = connect(o.dir);
  try {
    const r = await rpc.request<NodeReport>({ t: 'admin.transfer', to }, { timeoutMs: 15_000 });
    if (o.json) console.log(JSON.stringify({ leader: r.status.leader ?? null, term: r.status.term }));
    else console.log(`leadership moved to ${r.status.leader ?? to} (term ${r.status.term})`);
  } finally {
    await rpc.close();
  }
}

export async function membersList(o: AdminOptions): Promise<void> {
  const cd = new ClusterDir(o.dir);
  const cluster = cd.read();
  const reports = await fetchReports(cluster);
  const leader = agreedLeader(cluster, reports);
  const source = reports.find((r) => r?.id === leader) ?? reports.find((r) => r !== undefined);
  if (source === undefined) throw new CliError('no node answered; is the cluster running?');
  const { voters, learners, outgoing } = source.status.config;
  if (o.json) {
    console.log(JSON.stringify({ voters, learners, outgoing: outgoing ?? null, leader: leader ?? null }));
    return;
  }
  for (const id of voters) console.log(`${id}\tvoter${id === leader ? ' (leader)' : ''}`);
  for (const id of learners) console.log(`${id}\tlearner`);
  if (outgoing !== undefined) console.log(`(joint configuration in progress; outgoing voters: ${outgoing.join(', ')})`);
}

export async function inspectNode(o: AdminOptions, id: string): Promise<void> {
  const cd = new ClusterDir(o.dir);
  cd.node(cd.read(), id);
  const report = await inspect(cd.dataDir(id));
  if (o.json) console.log(JSON.stringify(report));
  else console.log(describeInspectReport(report));
}

export async function partition(o: AdminOptions, id: string, from: string[]): Promise<void> {
  const cd = new ClusterDir(o.dir);
  const cluster = cd.read();
  cd.node(cluster, id);
  const others = from.length > 0 ? from : cluster.nodes.map((n) => n.id).filter((x) => x !== id);
  // Both sides drop, so the cut holds whichever side sends.
  for (const n of cluster.nodes) {
    const peers = n.id === id ? others : others.includes(n.id) ? [id] : [];
    if (peers.length === 0) continue;
    const res = await fetch(`http://${n.host}:${n.httpPort}/status`, { signal: AbortSignal.timeout(800) }).catch(() => undefined);
    if (res === undefined) continue;
    const { rpc } = connectTo(cluster.clusterId, `${n.host}:${n.port}`);
    try {
      await rpc.request({ t: 'admin.partition', peers }, { timeoutMs: 3000 });
    } finally {
      await rpc.close();
    }
  }
  console.log(o.json ? JSON.stringify({ isolated: id, from: others }) : `cut ${id} off from ${others.join(', ')}`);
}

export async function heal(o: AdminOptions): Promise<void> {
  const cd = new ClusterDir(o.dir);
  const cluster = cd.read();
  for (const n of cluster.nodes) {
    const { rpc } = connectTo(cluster.clusterId, `${n.host}:${n.port}`);
    try {
      await rpc.request({ t: 'admin.heal' }, { timeoutMs: 2000 }).catch(() => undefined);
    } finally {
      await rpc.close();
    }
  }
  console.log(o.json ? JSON.stringify({ healed: true }) : 'every link restored');
}

function connectTo(clusterId: string, endpoint: string) {
  return { rpc: createRpcClient({ endpoints: [endpoint], clusterId, connectTimeoutMs: 300, maxRedirects: 0 }) };
}
