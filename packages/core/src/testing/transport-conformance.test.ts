import { describe, expect, it } from 'vitest';
import { describeTransportConformance } from '@consensus-kit/core/testing';
import { LocalNetwork } from '../host/local-network';

describeTransportConformance({ describe, it, expect }, 'LocalNetwork', () => ({
  async create(ids) {
    const net = new LocalNetwork();
    return Object.fromEntries(ids.map((id) => [id, net.transport(id)]));
  },
}));
