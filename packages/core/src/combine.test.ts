import { describe, expect, it } from 'vitest';
import { combineStateMachines } from './combine';
import { ConfigError, InvalidArgumentError } from './errors';
import type { LogEntry, StateMachine } from './types';

class Register implements StateMachine<string, string, 'get', string> {
  value = '';
  apply(_e: LogEntry, cmd: string) {
    const old = this.value;
    this.value = cmd;
    return old;
  }
  query() {
    return this.value;
  }
  snapshot() {
    return new TextEncoder().encode(this.value);
  }
  restore(d: Uint8Array) {
    this.value = new TextDecoder().decode(d);
  }
}

const entry: LogEntry = { index: 1, term: 1, type: 'command', data: new Uint8Array() };

/** Keeps the time entries it is given. */
class Clocked implements StateMachine<{ at: [number, number] }, number, 'n', number> {
  seen: [number, number][] = [];
  apply(_e: LogEntry, cmd: { at: [number, number] }) {
    this.seen.push(cmd.at);
    return this.seen.length;
  }
  query() {
    return this.seen.length;
  }
  snapshot() {
    return new Uint8Array();
  }
  restore() {}
  timeCommand(term: number, clockMs: number) {
    return { at: [term, clockMs] as [number, number] };
  }
}

describe('combineStateMachines', () => {
  it('keeps time only if a machine does, and hands a time entry to every machine that keeps time, as its own command', () => {
    expect(combineStateMachines({ a: new Register() }).timeCommand).toBeUndefined();
    const r = new Register();
    const x = new Clocked();
    const y = new Clocked();
    const sm = combineStateMachines({ r, x, y });
    const cmd = sm.timeCommand?.(3, 1234);
    expect(cmd).toEqual({ time: [3, 1234] });
    sm.apply(entry, cmd as never);
    expect([x.seen, y.seen, r.value]).toEqual([[[3, 1234]], [[3, 1234]], '']);
    expect(() => sm.apply(entry, { time: 5 } as never)).toThrow(InvalidArgumentError);
  });

  it('routes commands and queries by name', () => {
    const a = new Register();
    const b = new Register();
    const sm = combineStateMachines({ a, b });
    expect(sm.apply(entry, { sm: 'a', cmd: 'x' })).toBe('');
    expect(sm.apply(entry, { sm: 'b', cmd: 'y' })).toBe('');
    expect(sm.apply(entry, { sm: 'a', cmd: 'z' })).toBe('x');
    expect(sm.query({ sm: 'a', q: 'get' })).toBe('z');
    expect(sm.query({ sm: 'b', q: 'get' })).toBe('y');
  });

  it('snapshots and restores every machine together', () => {
    const src = combineStateMachines({ a: new Register(), b: new Register() });
    src.apply(entry, { sm: 'a', cmd: 'one' });
    src.apply(entry, { sm: 'b', cmd: 'two' });
    const a = new Register();
    const b = new Register();
    combineStateMachines({ a, b }).restore(src.snapshot());
    expect([a.value, b.value]).toEqual(['one', 'two']);
  });

  it('fails the same way on every replica for an unknown machine, and validates its input', () => {
    const sm = combineStateMachines({ a: new Register() });
    expect(() => sm.apply(entry, { sm: 'nope', cmd: 'x' } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.apply(entry, { sm: 'toString', cmd: 'x' } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query(null as never)).toThrow(InvalidArgumentError);
    expect(() => combineStateMachines({})).toThrow(ConfigError);
    expect(() => combineStateMachines({ bad: {} as Register })).toThrow(ConfigError);
  });
});
