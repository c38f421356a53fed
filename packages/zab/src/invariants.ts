import type { Invariant } from '@consensus-kit/core/testing';
export function zabInvariants(): Invariant[] {
  return [];
}
