export { DEFAULT_HISTORY_REVISIONS, KvStateMachine } from './kv-state-machine';
export type { KvEvent } from './mvcc-store';
export type { KvQueryResult, KvStateMachineOptions } from './kv-state-machine';
export { SessionTable } from './sessions';
export type { SessionSnapshot, SessionTableOptions, StoredAnswer } from './sessions';
export { MAX_KEY_BYTES, MAX_TXN_OPS, MAX_VALUE_BYTES, admitCommand, admitQuery, validateCommand, validateQuery, validateSession, valuesEqual } from './commands';
export { FutureRevisionError, InvalidTxnError, RevisionCompactedError } from './errors';
export type { InvalidTxnReason } from './errors';
export type {
  CasResult,
  CompactResult,
  CompareOp,
  CompareTarget,
  DeleteResult,
  KeyValue,
  KvCommand,
  KvCompare,
  KvQuery,
  KvRequest,
  KvResult,
  KvStatus,
  KvValue,
  PutResult,
  SessionStamp,
  TxnCompare,
  TxnOp,
  TxnOpResult,
  TxnRequest,
  TxnResult,
} from './commands';
export { createKvService } from './service';
export type { KvServiceOptions } from './service';
export { KvClient } from './client';
export { createKvClient } from './tcp';
export type { CreateKvClientOptions } from './tcp';
export type { CallOptions, DeleteOptions, GetOptions, KvClientOptions, PutOptions, RangeOptions, ReadOptions } from './client';
export { validateWireRequest } from './wire';
export type { Consistency, KvChannel, KvWireRequest } from './wire';
