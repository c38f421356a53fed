import { pack, unpack } from 'msgpackr';
import { MalformedMessageError, type LogEntry, type StateMachine } from '@consensus-kit/core';
import type { KvInput, KvOutput } from './history';

/**
 * A client command as it travels in the log. `c`/`o` (client id, op id) make every command unique, so that
 * the simulator can map the log back to its history and detect a command committed twice.
 */
export interface KvCommand {
  c: number;
  o: number;
  in: KvInput;
}

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return pack(cmd);
}

export function decodeCommand(data: Uint8Array): KvCommand {
  let v: unknown;
  try {
    v = unpack(data);
  } catch (cause) {
    throw new MalformedMessageError('command is not valid msgpack', { cause });
  }
  const cmd = v as Partial<KvCommand>;
  if (typeof cmd !== 'object' || cmd === null || typeof cmd.c !== 'number' || typeof cmd.o !== 'number' || typeof cmd.in !== 'object') {
    throw new MalformedMessageError('not a simulator command');
  }
  return cmd as KvCommand;
}

/** The one sequential semantics shared by the replicas' state machine and the checker's model. */
export function kvStep(current: string | undefined, input: KvInput): { next: string | undefined; output: KvOutput } {
  switch (input.f) {
    case 'put':
      return { next: input.value, output: { ok: true } };
    case 'get':
      return { next: current, output: { value: current ?? null } };
    case 'cas': {
      const swapped = (current ?? null) === input.from;
      return { next: swapped ? input.to : current, output: { swapped } };
    }
    case 'append':
      return { next: current === undefined ? input.value : `${current} ${input.value}`, output: { ok: true } };
  }
}

/** The replicated KV store every simulated replica applies its committed log to. */
export class KvStateMachine implements StateMachine<KvCommand, KvOutput, string, string | null> {
  private data = new Map<string, string>();

  apply(_entry: LogEntry, command: KvCommand): KvOutput {
    const { next, output } = kvStep(this.data.get(command.in.key), command.in);
    if (next === undefined) this.data.delete(command.in.key);
    else this.data.set(command.in.key, next);
    return output;
  }

  query(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    return pack([...this.data.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }

  restore(data: Uint8Array): void {
    this.data = new Map(data.length === 0 ? [] : (unpack(data) as [string, string][]));
  }
}
