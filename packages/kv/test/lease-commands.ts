import type { KvCommand } from '../src/commands';

/** The lease commands the simulated lease clients send, as the kv store takes them. */
export const leaseGrant = (id: number, ttlMs: number): KvCommand => ({ op: 'leaseGrant', id, ttl: ttlMs });
export const leaseKeepAlive = (ids: number[]): KvCommand => ({ op: 'leaseKeepAlive', ids });
export const putWithLease = (key: string, value: string, lease: number): KvCommand => ({ op: 'put', key, value, lease });
