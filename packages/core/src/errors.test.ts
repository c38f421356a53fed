import { describe, expect, it } from 'vitest';
import { ConsensusError, CorruptLogError, ErrorCode, NotLeaderError, ProposalDroppedError, TimeoutError, isConsensusError } from './errors';

describe('typed errors', () => {
  it('carry a stable code, a useful message and their cause', () => {
    const cause = new Error('disk');
    const e = new CorruptLogError({ file: '/d/0001.wal', offset: 4096, lastGoodIndex: 17 }, 'crc mismatch', { cause });
    expect(e.code).toBe(ErrorCode.CORRUPT_LOG);
    expect(e.message).toContain('/d/0001.wal');
    expect(e.message).toContain('4096');
    expect(e.message).toContain('17');
    expect(e.cause).toBe(cause);
    expect(e.name).toBe('CorruptLogError');
    expect(new NotLeaderError('b').message).toContain('b');
    expect(new ProposalDroppedError('too-many-uncommitted').reason).toBe('too-many-uncommitted');
    expect(new TimeoutError(250).timeoutMs).toBe(250);
  });

  it('are recognised without instanceof, as from a second copy of core would be', () => {
    // What another copy of core would produce: a plain object carrying the shared brand.
    const foreign = Object.assign(new Error('x'), { code: 'NOT_LEADER', [Symbol.for('@consensus-kit/core/ConsensusError')]: true });
    expect(isConsensusError(foreign)).toBe(true);
    expect(NotLeaderError.is(foreign)).toBe(true);
    expect(foreign instanceof ConsensusError).toBe(false);
  });

  it('do not mistake ordinary errors or look-alikes for ours', () => {
    expect(isConsensusError(new Error('x'))).toBe(false);
    expect(isConsensusError({ code: 'NOT_LEADER' })).toBe(false);
    expect(isConsensusError(null)).toBe(false);
    expect(isConsensusError(new TimeoutError(1), ErrorCode.NOT_LEADER)).toBe(false);
  });
});
