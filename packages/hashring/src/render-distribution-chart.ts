/**
 * `renderDistributionChart`: the terminal bar chart of keys per node that `consensus-cli ring` will print.
 * Pure (a string in, a string out: no colours, no terminal queries), so any caller can test and pipe it.
 *
 *   node-a  ███████████████████████████████▉        3,412  34.1%
 *   node-b  ███████████████████████████████████████ 4,180  41.8%
 *   node-c  ██████████████████████▌                 2,408  24.1%
 *   3 nodes, 10,000 keys, max/mean 1.254, stddev/mean 0.218
 */
import { distributionEntries, summarizeDistribution, type DistributionInput } from './distribution.js';
import { HashRingError } from './errors.js';

export interface DistributionChartOptions {
  /** Total characters per line, labels and figures included (e.g. `process.stdout.columns`). Default 80. */
  width?: number;
  /** Draw bars with `#` instead of Unicode block elements. Default false. */
  ascii?: boolean;
  /** Longest label before it is cut with an ellipsis. Default 24. */
  maxLabelWidth?: number;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'] as const;
const MIN_BAR = 10;

export function renderDistributionChart(distribution: DistributionInput, options: DistributionChartOptions = {}): string {
  const width = options.width ?? 80;
  const maxLabel = options.maxLabelWidth ?? 24;
  if (!Number.isInteger(width) || width < 20) {
    throw new HashRingError('INVALID_ARGUMENT', `chart width must be an integer >= 20, got ${String(width)}`);
  }
  if (!Number.isInteger(maxLabel) || maxLabel < 2) {
    throw new HashRingError('INVALID_ARGUMENT', `maxLabelWidth must be an integer >= 2, got ${String(maxLabel)}`);
  }
  const entries = distributionEntries(distribution);
  if (entries.length === 0) return '(no nodes)';
  const summary = summarizeDistribution(distribution);

  const labels = entries.map(([node]) => truncate(node, maxLabel));
  const labelWidth = Math.max(...labels.map(codePoints));
  const counts = entries.map(([, count]) => groupDigits(count));
  const countWidth = Math.max(...counts.map((c) => c.length));
  const shares = entries.map(([, count]) => (summary.keys === 0 ? 0 : (100 * count) / summary.keys).toFixed(1) + '%');
  const shareWidth = Math.max(...shares.map((s) => s.length));
  // label, 2 spaces, bar, 1 space, count, 2 spaces, share
  const barWidth = Math.max(MIN_BAR, width - labelWidth - 2 - 1 - countWidth - 2 - shareWidth);

  const lines = entries.map(([, count], i) => {
    const bar = drawBar(summary.max === 0 ? 0 : (count / summary.max) * barWidth, barWidth, options.ascii === true);
    const label = labels[i]!;
    return `${label}${' '.repeat(labelWidth - codePoints(label))}  ${bar} ${counts[i]!.padStart(countWidth)}  ${shares[i]!.padStart(shareWidth)}`;
  });
  lines.push(
    `${summary.nodes} node${summary.nodes === 1 ? '' : 's'}, ${groupDigits(summary.keys)} key${summary.keys === 1 ? '' : 's'}, ` +
      `max/mean ${summary.maxOverMean.toFixed(3)}, stddev/mean ${summary.stddevOverMean.toFixed(3)}`,
  );
  return lines.join('\n');
}

/** A bar of `length` cells (fractional), padded with spaces to `width`. */
function drawBar(length: number, width: number, ascii: boolean): string {
  if (ascii) {
    const full = Math.round(length);
    return '#'.repeat(full) + ' '.repeat(width - full);
  }
  const eighths = Math.round(length * 8);
  const full = Math.floor(eighths / 8);
  const partial = EIGHTHS[eighths % 8]!;
  return '█'.repeat(full) + partial + ' '.repeat(width - full - (partial === '' ? 0 : 1));
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…';
}

/** 1234567 -> "1,234,567", locale-independent; non-integers keep 2 decimals. */
function groupDigits(value: number): string {
  const [whole, fraction] = (Number.isInteger(value) ? String(value) : value.toFixed(2)).split('.');
  const grouped = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}
