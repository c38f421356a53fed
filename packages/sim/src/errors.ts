import { ConfigError } from '@consensus-kit/core';

/** `--protocol` named nothing the simulator can load. Raised before anything runs. */
export class UnknownProtocolError extends ConfigError {
  readonly protocol: string;
  constructor(protocol: string, reason: string, options?: { cause?: unknown }) {
    super(`unknown protocol ${JSON.stringify(protocol)}: ${reason}`, options);
    this.protocol = protocol;
  }
  static override is(e: unknown): e is UnknownProtocolError {
    return e instanceof UnknownProtocolError;
  }
}

/**
 * A fault schedule or fault setting that cannot be carried out: a partition naming a node that does not
 * exist, an unknown action, a time outside the run. `at` is the position of the offending event in a scripted
 * schedule, when there is one. Raised before anything runs.
 */
export class FaultScheduleError extends ConfigError {
  readonly at: number | undefined;
  constructor(message: string, at?: number) {
    super(at === undefined ? message : `fault schedule event #${at}: ${message}`);
    this.at = at;
  }
  static override is(e: unknown): e is FaultScheduleError {
    return e instanceof FaultScheduleError;
  }
}
