export { DEFAULT_LOCK_DELAY_MS, DEFAULT_MAX_SESSIONS, DEFAULT_MIN_SESSION_TTL_MS, DONE_REQUESTS_KEPT, LockStateMachine } from './lock-state-machine';
export type { LockInfo, LockQueryResult, LockRequest, LockStateMachineOptions, SessionInfo } from './lock-state-machine';
export { MAX_LOCK_NAME_LENGTH, MAX_PERMITS, MAX_SESSION_TTL_MS, validateLockCommand, validateLockQuery } from './commands';
export type { LockCommand, LockEvent, LockKind, LockMode, LockQuery, LockResult, RequestState } from './commands';
export { LockKindError, LockSessionExpiredError } from './errors';
