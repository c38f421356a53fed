/** Errors of the ui package: a `code` to branch on, the reason in the message. */
export type UiErrorCode = 'UI_BAD_OPTIONS' | 'UI_BAD_ACTION';

export class UiError extends Error {
  readonly code: UiErrorCode;
  constructor(code: UiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UiError';
    this.code = code;
  }
}

/** `serveUi` was given options it cannot use (no source, a bad port). */
export class UiOptionsError extends UiError {
  constructor(message: string) {
    super('UI_BAD_OPTIONS', message);
    this.name = 'UiOptionsError';
  }
}

/** A request body that is not a `UiAction` the source accepts: answered with 400 and this message. */
export class UiActionError extends UiError {
  constructor(message: string) {
    super('UI_BAD_ACTION', message);
    this.name = 'UiActionError';
  }
}
