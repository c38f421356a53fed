export { parseUiAction } from './action';
export { UiActionError, UiError, UiOptionsError, type UiErrorCode } from './errors';
export { UI_ACTION_NAMES, UI_LOG_TAIL } from './model';
export type { UiAction, UiActionName, UiActionResult, UiEvent, UiEventKind, UiFrame, UiHello, UiLink, UiLogEntry, UiMembers, UiMessage, UiMode, UiNodeState, UiSource } from './model';
export { serveUi, UI_ACTION_BODY_LIMIT, UI_MAX_STREAMS, type ServeUiOptions, type UiServer, type UiServerStats } from './server';
