/**
 * Capped exponential backoff with full jitter (the AWS architecture blog's "Exponential Backoff And Jitter"):
 * the n-th retry waits a uniform random time in [0, min(cap, base * 2^n)). Full jitter spreads the redials of
 * many nodes that lost the same peer, so a restarted node is not hit by a synchronized wave.
 */
export interface BackoffOptions {
  /** First ceiling, in ms (default 50). */
  baseMs?: number;
  /** Largest ceiling, in ms (default 2000). */
  capMs?: number;
  /** Uniform in [0, 1); injected in tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 50;
    this.capMs = options.capMs ?? 2000;
    this.random = options.random ?? Math.random;
  }

  /** The ceiling of the next delay. */
  get ceiling(): number {
    // 2^attempt is capped before it can overflow: attempt stops mattering once base * 2^attempt > cap.
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceiling);
    this.attempt++;
    return delay;
  }

  /** A success: the next failure starts from `baseMs` again. */
  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
