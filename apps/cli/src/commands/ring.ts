import { createHashRing, isHashRingError, renderDistributionChart, summarizeDistribution, type HashRingAlgorithm } from '@consensus-kit/hashring';
import { CliError } from '../errors';

export interface RingOptions {
  nodes: string;
  keys: number;
  algorithm: HashRingAlgorithm;
  json?: boolean;
  width?: number;
}

/** `consensus-cli ring`: how a hash ring spreads keys over nodes, as a bar chart. Nodes may carry `:weight`. */
export function ring(o: RingOptions): void {
  const nodes = o.nodes.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (nodes.length === 0) throw new CliError('--nodes needs at least one node name, e.g. --nodes a,b,c', 2);
  const weighted = nodes.map((spec) => {
    const [name, w] = spec.split(':');
    const weight = w === undefined ? 1 : Number(w);
    if (!name || !(weight > 0)) throw new CliError(`bad node ${JSON.stringify(spec)}: use name or name:weight with weight > 0`, 2);
    return { node: name, weight };
  });
  let distribution;
  try {
    const r = createHashRing({ algorithm: o.algorithm } as Parameters<typeof createHashRing>[0]);
    for (const { node, weight } of weighted) r.add(node, weight);
    const keys = (function* () {
      for (let i = 0; i < o.keys; i++) yield `key-${i}`;
    })();
    distribution = r.distribution(keys);
  } catch (e) {
    if (isHashRingError(e)) throw new CliError(e.message, 2);
    throw e;
  }
  if (o.json) {
    console.log(JSON.stringify({ algorithm: o.algorithm, keys: o.keys, nodes: Object.fromEntries(distribution), summary: summarizeDistribution(distribution) }));
    return;
  }
  console.log(`${o.algorithm}: ${o.keys.toLocaleString('en-US')} keys over ${weighted.length} nodes`);
  console.log(renderDistributionChart(distribution, { width: o.width ?? Math.max(40, Math.min(process.stdout.columns ?? 80, 120)) }));
}
