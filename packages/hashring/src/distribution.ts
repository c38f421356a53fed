/** Balance figures for a distribution (keys per node), as the bench and the chart report them. */
import { HashRingError } from './errors.js';

/** Keys per node: a `Map` (what `distribution()` returns) or a plain record. */
export type DistributionInput = ReadonlyMap<string, number> | Readonly<Record<string, number>>;

export interface DistributionSummary {
  nodes: number;
  keys: number;
  mean: number;
  min: number;
  max: number;
  /** max / mean: 1 is perfect balance; the most loaded node carries this multiple of the average. */
  maxOverMean: number;
  /** Population standard deviation / mean (coefficient of variation). */
  stddevOverMean: number;
}

export function distributionEntries(distribution: DistributionInput): Array<[string, number]> {
  const entries = distribution instanceof Map ? [...distribution.entries()] : Object.entries(distribution);
  for (const [node, count] of entries) {
    if (typeof count !== 'number' || !Number.isFinite(count) || count < 0) {
      throw new HashRingError('INVALID_ARGUMENT', `count for ${JSON.stringify(node)} must be a finite number >= 0, got ${String(count)}`, { node });
    }
  }
  return entries;
}

export function summarizeDistribution(distribution: DistributionInput): DistributionSummary {
  const counts = distributionEntries(distribution).map(([, count]) => count);
  const nodes = counts.length;
  if (nodes === 0) return { nodes: 0, keys: 0, mean: 0, min: 0, max: 0, maxOverMean: 0, stddevOverMean: 0 };
  let keys = 0;
  let min = Infinity;
  let max = 0;
  for (const c of counts) {
    keys += c;
    if (c < min) min = c;
    if (c > max) max = c;
  }
  const mean = keys / nodes;
  let variance = 0;
  for (const c of counts) variance += (c - mean) ** 2;
  variance /= nodes;
  return {
    nodes,
    keys,
    mean,
    min,
    max,
    maxOverMean: mean === 0 ? 0 : max / mean,
    stddevOverMean: mean === 0 ? 0 : Math.sqrt(variance) / mean,
  };
}
