export { UI_ACTION_NAMES, UI_LOG_TAIL } from './model';
export type { UiAction, UiActionName, UiActionResult, UiEvent, UiEventKind, UiFrame, UiHello, UiLink, UiLogEntry, UiMembers, UiMessage, UiMode, UiNodeState, UiSource } from './model';
