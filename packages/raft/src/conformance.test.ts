import { describe, expect, it } from 'vitest';
import { describeProtocolConformance } from '@consensus-kit/core/testing';
import { raft } from './index';

const api = { describe, it, expect };
describeProtocolConformance(api, { module: raft });
describeProtocolConformance(api, { module: raft, nodes: 5 });
describeProtocolConformance(api, { module: raft, nodes: 1 });
