export { DEFAULT_HISTORY_REVISIONS, KvStateMachine } from './kv-state-machine';
export type { KvEvent } from './mvcc-store';
export type { KvQueryResult, KvStateMachineOptions } from './kv-state-machine';
export { SessionTable } from './sessions';
export type { SessionSnapshot, SessionTableOptions, StoredAnswer } from './sessions';
export { MAX_KEY_BYTES, MAX_TXN_OPS, MAX_VALUE_BYTES, admitCommand, admitQuery, validateCommand, validateQuery, validateSession, valuesEqual } from './commands';
export { FutureRevisionError, InvalidTxnError, RevisionCompactedError } from './errors';
export type { InvalidTxnReason } from './errors';
export { LeaseNotFoundError } from './errors';
export { DEFAULT_MAX_LEASES, DEFAULT_MIN_LEASE_TTL_MS, MAX_KEEPALIVE_IDS, MAX_LEASE_TTL_MS } from './lease';
export type { LeaseGrantResult, LeaseInfo, LeaseKeepAliveResult, LeaseRevokeResult, TimeResult } from './commands';
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
export type { KvServiceContext, KvServiceOptions } from './service';
export { WatchHub } from './watch-hub';
export type { WatchEvents, WatchHubOptions, WatchSource } from './watch-hub';
export { watchKeys } from './watch-client';
export type { Watch, WatchBatch, WatchOptions } from './watch-client';
export { KvClient } from './client';
export { createKvClient } from './tcp';
export type { CreateKvClientOptions } from './tcp';
export type { CallOptions, DeleteOptions, GetOptions, KvClientOptions, PutOptions, RangeOptions, ReadOptions } from './client';
export { KvLeases } from './client';
export type { GrantOptions, TimeToLiveOptions } from './client';
export type { KeepAliveOptions, LeaseKeepAlive, LeaseLost, LeaseLostReason } from './lease-keeper';
export { canSubscribe, validateWireRequest } from './wire';
export type { Consistency, KvChannel, KvSubscribeChannel, KvSubscribeOptions, KvWatchRequest, KvWireRequest, PushSink, WatchPush } from './wire';
