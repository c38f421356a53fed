import { describe, expect, it } from 'vitest';
import { renderDistributionChart } from './render-distribution-chart.js';
import { createHashRing } from './create.js';
import { randomKeys } from '../test/helpers.js';

describe('renderDistributionChart', () => {
  it('draws one bar per node scaled to the largest, with counts, shares and a summary line', () => {
    const chart = renderDistributionChart(new Map([['node-a', 3412], ['node-b', 4180], ['node-c', 2408]]), { width: 60 });
    expect(chart).toBe(
      [
        'node-a  ███████████████████████████████▉        3,412  34.1%',
        'node-b  ███████████████████████████████████████ 4,180  41.8%',
        'node-c  ██████████████████████▌                 2,408  24.1%',
        '3 nodes, 10,000 keys, max/mean 1.254, stddev/mean 0.218',
      ].join('\n'),
    );
    for (const line of chart.split('\n').slice(0, 3)) expect([...line]).toHaveLength(60);
  });

  it('has an ASCII mode', () => {
    expect(renderDistributionChart({ a: 1, b: 2 }, { width: 30, ascii: true })).toBe(
      ['a  #########          1  33.3%', 'b  ################## 2  66.7%', '2 nodes, 3 keys, max/mean 1.333, stddev/mean 0.333'].join('\n'),
    );
  });

  it('cuts long labels, keeps a minimum bar, and copes with zero keys and no nodes', () => {
    const chart = renderDistributionChart({ 'a-very-long-node-name-that-goes-on:6379': 5, short: 0 }, { width: 20, maxLabelWidth: 10 });
    const [first, second] = chart.split('\n');
    expect(first!.startsWith('a-very-lo…  ██████████ 5')).toBe(true);
    expect(second!.startsWith('short       ' + ' '.repeat(10) + ' 0')).toBe(true);
    expect(renderDistributionChart({ a: 0 })).toContain('1 node, 0 keys');
    expect(renderDistributionChart(new Map())).toBe('(no nodes)');
  });

  it('renders a real ring distribution within the requested width', () => {
    const ring = createHashRing({ nodes: ['10.0.0.1:6379', '10.0.0.2:6379', '10.0.0.3:6379', '10.0.0.4:6379'] });
    const chart = renderDistributionChart(ring.distribution(randomKeys(10_000, 1)), { width: 72 });
    const lines = chart.split('\n');
    expect(lines).toHaveLength(5);
    for (const line of lines.slice(0, 4)) expect([...line].length).toBe(72);
    expect(lines[4]).toMatch(/^4 nodes, 10,000 keys, max\/mean 1\.\d{3}, stddev\/mean 0\.\d{3}$/);
  });

  it('rejects a width below 20', () => {
    expect(() => renderDistributionChart({ a: 1 }, { width: 10 })).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
