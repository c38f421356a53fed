import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@consensus-kit/core';
import { StaleTokenError } from './errors';
import { FencedResource } from './fenced-resource';
import { validateWireRequest } from './wire';

describe('FencedResource', () => {
  it('accepts the current token and newer ones, refuses older ones (a stale holder)', () => {
    const r = new FencedResource('db');
    expect(r.accept(5)).toBe(true);
    expect(r.accept(5)).toBe(true);
    expect(r.accept(9)).toBe(true);
    expect(r.accept(7)).toBe(false);
    expect(r.highest).toBe(9);
  });

  it('ifOwner runs the write for a current token and throws StaleTokenError, running nothing, for a stale one', () => {
    const r = new FencedResource('db', 10);
    const writes: string[] = [];
    expect(r.ifOwner(12, () => writes.push('new'))).toBe(1);
    expect(() => r.ifOwner(11, () => writes.push('stale'))).toThrow(StaleTokenError);
    expect(writes).toEqual(['new']);
  });

  it('refuses a malformed token', () => {
    expect(() => new FencedResource().accept(-1)).toThrow(InvalidArgumentError);
    expect(() => new FencedResource().accept(1.5)).toThrow(InvalidArgumentError);
  });
});

describe('lock wire requests', () => {
  it('refuses bad bodies, and time entries from a client, with InvalidArgumentError', () => {
    for (const bad of [null, { t: 'nope' }, { t: 'lock.write', cmd: { op: 'time', term: 1, ms: 1 } }, { t: 'lock.events', session: 0 }, { t: 'lock.read', q: { op: 'x' } }]) {
      expect(() => validateWireRequest(bad)).toThrow(InvalidArgumentError);
    }
    expect(() => validateWireRequest({ t: 'lock.write', cmd: { op: 'open', ttl: 1000 } })).not.toThrow();
  });
});
