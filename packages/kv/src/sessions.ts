/**
 * Exactly-once client sessions live in core (DESIGN r2, "Sessions"), shared by every state machine that takes
 * client commands; kv keeps its typed errors in them through `storeError` (see `errors.ts`). Re-exported here
 * for kv's earlier importers.
 */
export { SessionTable } from '@consensus-kit/core';
export type { SessionSnapshot, SessionTableOptions, StoredAnswer } from '@consensus-kit/core';
