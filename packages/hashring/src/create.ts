/**
 * `createHashRing(options)`: one factory for every algorithm. Without `algorithm` it builds the default,
 * a `VnodeRing` (see `ring.ts` for why, and the README for which algorithm to pick).
 */
import { BoundedLoadRing, type BoundedLoadOptions } from './bounded-load.js';
import { JumpHash, type JumpHashOptions } from './jump.js';
import { KetamaRing, type KetamaOptions } from './ketama.js';
import { MaglevHash, type MaglevOptions } from './maglev.js';
import { RendezvousHash, type RendezvousOptions } from './rendezvous.js';
import { VnodeRing, type VnodeRingOptions } from './ring.js';
import { HashRingError } from './errors.js';
import type { HashRing, HashRingAlgorithm } from './types.js';

export type CreateHashRingOptions =
  | ({ algorithm?: 'ring' } & VnodeRingOptions)
  | ({ algorithm: 'maglev' } & MaglevOptions)
  | ({ algorithm: 'jump' } & JumpHashOptions)
  | ({ algorithm: 'rendezvous' } & RendezvousOptions)
  | ({ algorithm: 'bounded-load' } & BoundedLoadOptions)
  | ({ algorithm: 'ketama' } & KetamaOptions);

export function createHashRing(options?: { algorithm?: 'ring' } & VnodeRingOptions): VnodeRing;
export function createHashRing(options: { algorithm: 'maglev' } & MaglevOptions): MaglevHash;
export function createHashRing(options: { algorithm: 'jump' } & JumpHashOptions): JumpHash;
export function createHashRing(options: { algorithm: 'rendezvous' } & RendezvousOptions): RendezvousHash;
export function createHashRing(options: { algorithm: 'bounded-load' } & BoundedLoadOptions): BoundedLoadRing;
export function createHashRing(options: { algorithm: 'ketama' } & KetamaOptions): KetamaRing;
export function createHashRing(options?: CreateHashRingOptions): HashRing;
export function createHashRing(options: CreateHashRingOptions = {}): HashRing {
  const algorithm: HashRingAlgorithm | undefined = options.algorithm;
  switch (algorithm) {
    case undefined:
    case 'ring':
      return new VnodeRing(options as VnodeRingOptions);
    case 'maglev':
      return new MaglevHash(options as MaglevOptions);
    case 'jump':
      return new JumpHash(options as JumpHashOptions);
    case 'rendezvous':
      return new RendezvousHash(options as RendezvousOptions);
    case 'bounded-load':
      return new BoundedLoadRing(options as BoundedLoadOptions);
    case 'ketama':
      return new KetamaRing(options as KetamaOptions);
    default:
      throw new HashRingError('INVALID_ARGUMENT', `unknown algorithm ${JSON.stringify(algorithm satisfies never)}`);
  }
}
