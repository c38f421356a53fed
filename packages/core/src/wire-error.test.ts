import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  CompactedError,
  ConfigError,
  type ConsensusError,
  CorruptLogError,
  ErrorCode,
  InvalidArgumentError,
  InvariantError,
  LeadershipLostError,
  MalformedMessageError,
  NotLeaderError,
  ProposalDroppedError,
  SessionExpiredError,
  StoppedError,
  StorageError,
  TimeoutError,
  TransportError,
  UnknownNodeError,
  isConsensusError,
} from './errors';
import { MAX_WIRE_TEXT, errorFromWire, errorToWire } from './wire-error';

/** One error of every code, with its typed fields set: the round trip must keep class, code, fields, message. */
const SAMPLES: Record<ErrorCode, { error: ConsensusError; Class: abstract new (...args: never[]) => ConsensusError; fields: Record<string, unknown> }> = {
  NOT_LEADER: { error: new NotLeaderError('n2'), Class: NotLeaderError, fields: { leaderHint: 'n2' } },
  PROPOSAL_DROPPED: { error: new ProposalDroppedError('transfer-in-progress'), Class: ProposalDroppedError, fields: { reason: 'transfer-in-progress' } },
  LEADERSHIP_LOST: { error: new LeadershipLostError(), Class: LeadershipLostError, fields: {} },
  TIMEOUT: { error: new TimeoutError(1500, 'proposal'), Class: TimeoutError, fields: { timeoutMs: 1500 } },
  ABORTED: { error: new AbortedError('user'), Class: AbortedError, fields: {} },
  STOPPED: { error: new StoppedError('the node n1 is stopped'), Class: StoppedError, fields: {} },
  CORRUPT_LOG: {
    error: new CorruptLogError({ file: '/d/0001.wal', offset: 4096, lastGoodIndex: 17 }, 'crc mismatch'),
    Class: CorruptLogError,
    fields: { file: '/d/0001.wal', offset: 4096, lastGoodIndex: 17 },
  },
  COMPACTED: { error: new CompactedError(3, 10), Class: CompactedError, fields: { index: 3, firstIndex: 10 } },
  STORAGE: { error: new StorageError('disk full'), Class: StorageError, fields: {} },
  CONFIG: { error: new ConfigError('electionTicks must be > heartbeatTicks'), Class: ConfigError, fields: {} },
  INVALID_ARGUMENT: { error: new InvalidArgumentError('key must be a non-empty string'), Class: InvalidArgumentError, fields: {} },
  MALFORMED_MESSAGE: { error: new MalformedMessageError('bad frame'), Class: MalformedMessageError, fields: {} },
  UNKNOWN_NODE: { error: new UnknownNodeError('n9'), Class: UnknownNodeError, fields: { node: 'n9' } },
  TRANSPORT: { error: new TransportError('this node serves no requests'), Class: TransportError, fields: {} },
  SESSION_EXPIRED: { error: new SessionExpiredError('s-1'), Class: SessionExpiredError, fields: { session: 's-1' } },
  INVARIANT: { error: new InvariantError('commit index went backwards'), Class: InvariantError, fields: {} },
};

/** What a wire round trip does to a record: msgpack and JSON both carry exactly plain JSON data. */
const overTheWire = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('errorToWire / errorFromWire', () => {
  it('a sample covers every error code', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.values(ErrorCode).sort());
  });

  for (const [code, { error, Class, fields }] of Object.entries(SAMPLES)) {
    it(`round-trips ${code} as its own class, with its fields and message`, () => {
      const wire = overTheWire(errorToWire(error));
      expect(wire).toEqual({ code, message: error.message, ...fields });
      const back = errorFromWire(wire);
      expect(back).toBeInstanceOf(Class);
      expect(back.code).toBe(code);
      expect(back.name).toBe(error.name);
      expect(back.message).toBe(error.message);
      expect(isConsensusError(back, error.code)).toBe(true);
      for (const [k, v] of Object.entries(fields)) expect((back as unknown as Record<string, unknown>)[k]).toEqual(v);
    });
  }

  it('puts the prefix before the remote message', () => {
    const back = errorFromWire(errorToWire(new InvalidArgumentError('key must be a non-empty string')), { prefix: 'remote: ' });
    expect(back.message).toBe('remote: key must be a non-empty string');
    expect(InvalidArgumentError.is(back)).toBe(true);
  });

  it('sends anything but a consensus-kit error as INVARIANT, without its text', () => {
    expect(errorToWire(new Error('secret internals at /home/x'))).toEqual({ code: 'INVARIANT', message: 'the request handler failed' });
    expect(errorToWire('boom')).toEqual({ code: 'INVARIANT', message: 'the request handler failed' });
  });

  it('never trusts the remote side: unknown codes, bad fields and long text', () => {
    const unknown = errorFromWire({ code: 'FROM_THE_FUTURE', message: 'newer peer' });
    expect(TransportError.is(unknown)).toBe(true);
    expect(unknown.message).toContain('FROM_THE_FUTURE');
    for (const junk of [null, 'x', 42, [], { code: 7 }]) expect(TransportError.is(errorFromWire(junk))).toBe(true);
    // Inherited names are not codes.
    expect(TransportError.is(errorFromWire({ code: 'constructor', message: 'x' }))).toBe(true);

    const hint = errorFromWire({ code: 'NOT_LEADER', message: 'm', leaderHint: 5 }) as NotLeaderError;
    expect(hint.leaderHint).toBeUndefined();
    const dropped = errorFromWire({ code: 'PROPOSAL_DROPPED', message: 'm', reason: 'made-up' }) as ProposalDroppedError;
    expect(ProposalDroppedError.is(dropped)).toBe(true);
    expect(dropped.reason).toBe('queue-full');
    const timeout = errorFromWire({ code: 'TIMEOUT', message: 'm', timeoutMs: -1 }) as TimeoutError;
    expect(timeout.timeoutMs).toBe(0);

    const long = errorFromWire({ code: 'STORAGE', message: 'x'.repeat(100_000) });
    expect(long.message.length).toBe(MAX_WIRE_TEXT);
    expect(errorFromWire({ code: 'STORAGE' }).message).toBe('remote error');
  });

  it('never throws on a record that is not plain data: throwing getters, getters that change their answer, proxies', () => {
    const throwing = Object.defineProperty({ code: 'NOT_LEADER' }, 'message', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(TransportError.is(errorFromWire(throwing))).toBe(true);
    // A code that passes the check on one read and names an inherited key on the next.
    let reads = 0;
    const shifty = Object.defineProperty({ message: 'm' }, 'code', { enumerable: true, get: () => (reads++ < 2 ? 'NOT_LEADER' : '__proto__') });
    const e = errorFromWire(shifty);
    expect(NotLeaderError.is(e) || TransportError.is(e)).toBe(true);
    const proxy = new Proxy({}, {
      get() {
        throw new Error('proxy');
      },
      getOwnPropertyDescriptor() {
        throw new Error('proxy');
      },
    });
    expect(TransportError.is(errorFromWire(proxy))).toBe(true);
    // Inherited fields are not the remote's fields.
    expect(TransportError.is(errorFromWire(Object.create({ code: 'NOT_LEADER', message: 'm' }) as unknown))).toBe(true);
    expect(TransportError.is(errorFromWire(JSON.parse('{"__proto__":{"code":"NOT_LEADER"},"message":"x"}')))).toBe(true);
  });
});
