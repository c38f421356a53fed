import { describe, expect, it } from 'vitest';
import { describeProtocolConformance } from '@consensus-kit/core/testing';
import { paxos } from './index';

const api = { describe, it, expect };
// A small WINDOW keeps the no-op fill of a reconfiguration short; the default runs too.
describeProtocolConformance(api, { module: paxos });
describeProtocolConformance(api, { module: paxos, nodes: 5, protocolOptions: { window: 8 } });
describeProtocolConformance(api, { module: paxos, nodes: 1 });
