import { describe, expect, it } from 'vitest';
import { cli } from './helpers';

describe('consensus-cli ring', () => {
  it('prints one bar per node and honours weights', async () => {
    const r = await cli('ring', '--nodes', 'a,b,c:2', '--keys', '20000', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { nodes: Record<string, number> };
    expect(Object.values(out.nodes).reduce((x, y) => x + y, 0)).toBe(20000);
    expect(out.nodes.c as number).toBeGreaterThan(1.6 * (out.nodes.a as number));
    const chart = await cli('ring', '--nodes', 'a,b,c', '--keys', '1000');
    expect(chart.out.split('\n').filter((l) => /^[abc] /.test(l))).toHaveLength(3);
  });

  it('rejects bad node lists with a usage error', async () => {
    expect((await cli('ring', '--nodes', ',')).code).toBe(2);
    expect((await cli('ring', '--nodes', 'a:0')).code).toBe(2);
    expect((await cli('ring', '--nodes', 'a', '--algorithm', 'nope')).code).toBe(2);
  });
});
