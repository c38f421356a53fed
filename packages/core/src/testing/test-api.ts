/**
 * The few functions of a test runner the conformance suites need, passed in by the caller (vitest's or
 * jest's `describe`, `it` and `expect`), so that `@consensus-kit/core/testing` imports without any test
 * runner installed and works under whichever one a project uses:
 *
 * ```ts
 * import { describe, expect, it } from 'vitest';
 * describeProtocolConformance({ describe, it, expect }, { module: raft });
 * ```
 */
export interface TestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => void | Promise<void>, timeout?: number): void;
  // The matcher object of vitest or jest; its exact type belongs to the runner.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  expect: (actual: unknown) => any;
}
