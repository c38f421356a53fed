import { describeProtocolConformance, solo } from '@consensus-kit/core/testing';

describeProtocolConformance('solo', solo, { nodes: 1 });
