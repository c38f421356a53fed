import { describe, expect, it } from 'vitest';
import { BoundedLoadRing } from './bounded-load.js';
import { createHashRing } from './create.js';
import { JumpHash } from './jump.js';
import { KetamaRing } from './ketama.js';
import { MaglevHash } from './maglev.js';
import { RendezvousHash } from './rendezvous.js';
import { DEFAULT_VNODES, VnodeRing } from './ring.js';

describe('createHashRing', () => {
  it('defaults to a VnodeRing with 8192 points per node', () => {
    const ring = createHashRing({ nodes: ['a'] });
    expect(ring).toBeInstanceOf(VnodeRing);
    expect(ring.algorithm).toBe('ring');
    expect(ring.vnodes).toBe(DEFAULT_VNODES);
    expect(createHashRing()).toBeInstanceOf(VnodeRing);
  });

  it('builds every algorithm by name, passing its options through', () => {
    expect(createHashRing({ algorithm: 'maglev', tableSize: 101 })).toBeInstanceOf(MaglevHash);
    expect(createHashRing({ algorithm: 'maglev', tableSize: 101 }).tableSize).toBe(101);
    expect(createHashRing({ algorithm: 'jump' })).toBeInstanceOf(JumpHash);
    expect(createHashRing({ algorithm: 'rendezvous' })).toBeInstanceOf(RendezvousHash);
    expect(createHashRing({ algorithm: 'bounded-load', c: 1.5 }).c).toBe(1.5);
    expect(createHashRing({ algorithm: 'bounded-load' })).toBeInstanceOf(BoundedLoadRing);
    expect(createHashRing({ algorithm: 'ketama', compatibility: 'hash_ring' })).toBeInstanceOf(KetamaRing);
    expect(createHashRing({ algorithm: 'ring', vnodes: 10 }).vnodes).toBe(10);
  });

  it('rejects an unknown algorithm', () => {
    expect(() => createHashRing({ algorithm: 'chord' } as never)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('rejects nodes that are neither a list nor a record', () => {
    expect(() => createHashRing({ nodes: 'a,b' as never })).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
