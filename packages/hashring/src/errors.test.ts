import { describe, expect, it } from 'vitest';
import { HashRingError, HashRingErrorCode, isHashRingError } from './errors.js';

describe('HashRingError', () => {
  it('carries a code from the table, the node, and the cause', () => {
    const cause = new Error('root');
    const error = new HashRingError('UNKNOWN_NODE', 'no node named "x"', { node: 'x', cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('HashRingError');
    expect(error.code).toBe(HashRingErrorCode.UNKNOWN_NODE);
    expect(error.node).toBe('x');
    expect(error.cause).toBe(cause);
    expect(Object.keys(HashRingErrorCode)).toEqual(['EMPTY_RING', 'UNKNOWN_NODE', 'INVALID_WEIGHT', 'DUPLICATE_NODE', 'INVALID_ARGUMENT']);
  });

  it('isHashRingError recognises errors from another copy of the package by their Symbol.for brand', () => {
    const foreign = Object.assign(new Error('from another copy'), {
      code: 'EMPTY_RING',
      [Symbol.for('@consensus-kit/hashring/HashRingError')]: true,
    });
    expect(isHashRingError(foreign)).toBe(true);
    expect(isHashRingError(new HashRingError('EMPTY_RING', 'x'))).toBe(true);
    expect(isHashRingError(new Error('plain'))).toBe(false);
    expect(isHashRingError({ code: 'EMPTY_RING' })).toBe(false);
    expect(isHashRingError(null)).toBe(false);
    expect(isHashRingError('EMPTY_RING')).toBe(false);
  });
});
