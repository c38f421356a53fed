/**
 * Typed errors for @consensus-kit/hashring.
 *
 * The package is standalone (it imports nothing from the rest of consensus-kit), so it carries its own small
 * error class shaped like core's: a readonly `code` from one `as const` table, `cause` passed through, and a
 * `Symbol.for` brand so `isHashRingError` still answers true when two copies of this package are loaded.
 */

export const HashRingErrorCode = {
  /** A lookup was made on a ring with no nodes. */
  EMPTY_RING: 'EMPTY_RING',
  /** `remove`, `weight`, `release`... named a node that is not in the ring. */
  UNKNOWN_NODE: 'UNKNOWN_NODE',
  /** A weight that is not a finite number > 0 (or a weight given to an algorithm that has none). */
  INVALID_WEIGHT: 'INVALID_WEIGHT',
  /** `add` named a node that is already in the ring. */
  DUPLICATE_NODE: 'DUPLICATE_NODE',
  /** Any other argument out of its domain (a negative `n`, a table size that is not prime, a non-string key...). */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
} as const;

export type HashRingErrorCode = (typeof HashRingErrorCode)[keyof typeof HashRingErrorCode];

const BRAND: unique symbol = Symbol.for('@consensus-kit/hashring/HashRingError') as never;

export class HashRingError extends Error {
  override readonly name = 'HashRingError';
  readonly code: HashRingErrorCode;
  /** The node the error is about, when there is one. */
  readonly node: string | undefined;
  readonly [BRAND] = true;

  constructor(code: HashRingErrorCode, message: string, options: { node?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.node = options.node;
  }
}

/** True for any `HashRingError`, including one thrown by another copy of this package. */
export function isHashRingError(error: unknown): error is HashRingError {
  return typeof error === 'object' && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
}
