import { describeProtocolConformance } from '@consensus-kit/core/testing';
import { raft } from './index';

describeProtocolConformance('raft', raft);
describeProtocolConformance('raft', raft, { nodes: 5 });
describeProtocolConformance('raft', raft, { nodes: 1 });
