/** The client operations of the simulator's KV workload (and of the linearizability checker's KV model). */
export type KvInput =
  | { f: 'put'; key: string; value: string }
  | { f: 'get'; key: string }
  | { f: 'cas'; key: string; from: string | null; to: string }
  | { f: 'append'; key: string; value: string };

/** What an operation returned: `get` the value (null when absent), `cas` whether it swapped, others `ok`. */
export type KvOutput = { value: string | null } | { swapped: boolean } | { ok: true };

/**
 * One client operation as the client saw it. `status: 'ok'` ops have a result and a completion time;
 * `'info'` ops are indeterminate (timed out, or their leader died): they may or may not have taken effect,
 * at any time after `invoke` (Jepsen's `:info`). An indeterminate op is never recorded as failed.
 */
export interface HistoryOp {
  /** Unique within a history; also the position in invocation order. */
  id: number;
  client: number;
  input: KvInput;
  /** Simulated time of the invocation. */
  invoke: number;
  /** Simulated time the client saw the result; absent for indeterminate ops. */
  complete?: number;
  status: 'ok' | 'info';
  output?: KvOutput;
  /** Why an op is indeterminate (`timeout`, `leader-crashed`), or which node served it. */
  note?: string;
}

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

