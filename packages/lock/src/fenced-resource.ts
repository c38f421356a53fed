import { InvalidArgumentError, preview } from '@consensus-kit/core';
import { StaleTokenError } from './errors';

/**
 * The resource side of fencing (Chubby §2.4 sequencers; Kleppmann, "How to do distributed locking"): a resource
 * that lock holders write to remembers the highest fencing token it has accepted and refuses any lower one, so
 * a holder that lost its lock without knowing (paused, partitioned, a delayed packet) cannot overwrite the work
 * of the holder after it. Tokens are the lock service's grant indexes: a later holder always has a higher one.
 *
 * Keep one per guarded resource (per lock name), next to the data it protects; persist `highest` with it if the
 * resource outlives the process.
 */
export class FencedResource {
  private top: number;

  constructor(
    readonly name = 'resource',
    highest = 0,
  ) {
    checkToken(highest, 'highest');
    this.top = highest;
  }

  /** The highest token accepted so far (0 before any). */
  get highest(): number {
    return this.top;
  }

  /** Accepts `token` if it is at least the highest seen (and records it); false for a stale one. */
  accept(token: number): boolean {
    checkToken(token);
    if (token < this.top) return false;
    this.top = token;
    return true;
  }

  /**
   * The guard a resource puts around a write: runs `write` only for a token at least the highest seen (the
   * current holder, or a newer one), else throws `StaleTokenError` and runs nothing.
   */
  ifOwner<T>(token: number, write: () => T): T {
    if (!this.accept(token)) throw new StaleTokenError(token, this.top, this.name);
    return write();
  }
}

function checkToken(token: unknown, what = 'fencing token'): asserts token is number {
  if (typeof token !== 'number' || !Number.isSafeInteger(token) || token < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${preview(token)}`);
}
