import { describeProtocolConformance } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { toy } from './index';

// The toy is the simulator's own reference protocol: it goes through the same contract suite as Raft, Paxos
// and ZAB, except for the two abilities it does not have (membership changes, leadership transfer).
for (const nodes of [3, 5, 1]) {
  describeProtocolConformance({ describe, it, expect }, { module: toy, nodes, without: ['membership', 'transfer'] });
}
