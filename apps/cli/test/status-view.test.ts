import { describe, expect, it } from 'vitest';
import type { Status } from '@consensus-kit/core';
import type { ClusterFile } from '../src/cluster-file';
import type { NodeReport } from '../src/node-runner';
import { renderDetails, statusRows } from '../src/render';
import { agreedLeader } from '../src/supervisor';

const cluster: ClusterFile = {
  version: 1,
  clusterId: 'c',
  protocol: 'raft',
  nodes: ['n1', 'n2', 'n3', 'n4', 'n5'].map((id, i) => ({ id, host: '127.0.0.1', port: 7101 + i, httpPort: 7201 + i })),
};

function report(id: string, s: Partial<Status>): NodeReport {
  const status: Status = {
    id,
    role: 'follower',
    term: 3,
    leader: 'n1',
    commitIndex: 0,
    appliedIndex: 0,
    lastIndex: 0,
    config: { voters: cluster.nodes.map((n) => n.id), learners: [] },
    ...s,
  };
  return { id, pid: 1, address: '', http: '', status };
}

describe('the status view reads neutral statuses (DESIGN r2)', () => {
  it("each node's lag is the leader's lastIndex minus its own; protocol details pass through verbatim", () => {
    const reports = [
      report('n1', { role: 'leader', lastIndex: 40, commitIndex: 40, details: { progress: { n2: { match: 35 } } } }),
      report('n2', { lastIndex: 35 }),
      report('n3', { lastIndex: 41 }), // an uncommitted tail the leader will truncate: not "behind"
      undefined,
      report('n5', { role: 'candidate', leader: undefined, term: 4, lastIndex: 10 }),
    ];
    const rows = statusRows(cluster, reports, [1, 2, 3, undefined, 5]);
    expect(rows.map((r) => r.lag)).toEqual([0, 5, 0, null, 30]);
    expect(rows.map((r) => r.role)).toEqual(['leader', 'follower', 'follower', 'down', 'candidate']);
    expect(rows[0]?.details).toEqual({ progress: { n2: { match: 35 } } });
    expect(rows[1]?.details).toBeNull();
    expect(renderDetails(rows).split('\n')[0]).toBe('n1\t{"progress":{"n2":{"match":35}}}');
    // Without a leader there is nothing to be behind.
    expect(statusRows(cluster, [undefined, report('n2', { leader: undefined })], [1, 2]).map((r) => r.lag)).toEqual([null, null, null, null, null]);
  });

  it('a leader is agreed only by a majority of the nodes, in its own term', () => {
    const leader = report('n1', { role: 'leader' });
    const follows = (id: string, term = 3) => report(id, { term });
    expect(agreedLeader(cluster, [leader, follows('n2'), follows('n3'), undefined, undefined])).toBe('n1');
    expect(agreedLeader(cluster, [leader, follows('n2'), undefined, undefined, undefined])).toBeUndefined();
    expect(agreedLeader(cluster, [leader, follows('n2'), follows('n3', 2), undefined, undefined])).toBeUndefined();
  });
});
