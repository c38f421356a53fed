/** The client operations of the simulator's KV workload (and of the linearizability checker's KV model). */
export type KvInput =
  | { f: 'put'; key: string; value: string }
  | { f: 'get'; key: string }
  | { f: 'cas'; key: string; from: string | null; to: string }
  | { f: 'append'; key: string; value: string };

/** What an operation returned: `get` the value (null when absent), `cas` whether it swapped, others `ok`. */
export type KvOutput = { value: string | null } | { swapped: boolean } | { ok: true };

/**
 * One client operation as the client saw it, whatever the workload (KV, locks...). `status: 'ok'` ops have a
 * result and a completion time; `'info'` ops are indeterminate (timed out, or their leader died): they may or
 * may not have taken effect, at any time after `invoke` (Jepsen's `:info`). An indeterminate op is never
 * recorded as failed.
 */
export interface ClientOp<I = unknown, O = unknown> {
  /** Unique within a history; also the position in invocation order. */
  id: number;
  client: number;
  input: I;
  /** Simulated time of the invocation. */
  invoke: number;
  /** Simulated time the client saw the result; absent for indeterminate ops. */
  complete?: number;
  status: 'ok' | 'info';
  output?: O;
  /** Why an op is indeterminate (`timeout`, `leader-crashed`), or which node served it. */
  note?: string;
}

/** One operation of the KV workload. */
export type HistoryOp = ClientOp<KvInput, KvOutput>;

export type History = HistoryOp[];

/** `put k1=v3`, `cas k0 v1->v4`, `get k2`, `append l0+x7` */
export function describeInput(input: KvInput): string {
  switch (input.f) {
    case 'put':
      return `put ${input.key}=${input.value}`;
    case 'get':
      return `get ${input.key}`;
    case 'cas':
      return `cas ${input.key} ${input.from ?? 'nil'}->${input.to}`;
    case 'append':
      return `append ${input.key}+${input.value}`;
  }
}

export function describeOutput(output: KvOutput | undefined): string {
  if (output === undefined) return '?';
  if ('value' in output) return output.value ?? 'nil';
  if ('swapped' in output) return output.swapped ? 'swapped' : 'failed';
  return 'ok';
}

/** `c2 #17 put k1=v3 -> ok [120, 180]` */
export function describeOp(op: HistoryOp): string {
  const end = op.status === 'ok' ? String(op.complete) : 'inf';
  const out = op.status === 'ok' ? describeOutput(op.output) : 'info';
  return `c${op.client} #${op.id} ${describeInput(op.input)} -> ${out} [${op.invoke}, ${end}]${op.note ? ` (${op.note})` : ''}`;
}


function isKvInput(input: unknown): input is KvInput {
  const i = input as Partial<KvInput> | null;
  return typeof i === 'object' && i !== null && typeof i.key === 'string' && (i.f === 'put' || i.f === 'get' || i.f === 'cas' || i.f === 'append');
}

/** The KV rendering for KV ops; `c0 #3 {"f":"acquire",...} -> {...} [..]` for any other workload's. */
export function describeClientOp(op: ClientOp): string {
  if (isKvInput(op.input)) return describeOp(op as HistoryOp);
  const end = op.status === 'ok' ? String(op.complete) : 'inf';
  const out = op.status === 'ok' ? JSON.stringify(op.output ?? null) : 'info';
  return `c${op.client} #${op.id} ${JSON.stringify(op.input)} -> ${out} [${op.invoke}, ${end}]${op.note ? ` (${op.note})` : ''}`;
}

/** A short label for a timeline bar: `put k1=v3 → ok`. */
export function opLabel(op: ClientOp): string {
  if (isKvInput(op.input)) return `${describeInput(op.input)} → ${op.status === 'ok' ? describeOutput(op.output as KvOutput) : 'info'}`;
  return `${JSON.stringify(op.input)} → ${op.status === 'ok' ? JSON.stringify(op.output ?? null) : 'info'}`;
}

/** The operation's kind for display (`put`, `get`, or the input's `f`/`type` field of another workload). */
export function opKind(op: ClientOp): string {
  const i = op.input as { f?: unknown; type?: unknown } | null;
  const k = typeof i === 'object' && i !== null ? (typeof i.f === 'string' ? i.f : i.type) : undefined;
  return typeof k === 'string' ? k : 'op';
}
