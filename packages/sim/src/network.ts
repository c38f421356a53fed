import { pack, unpack } from 'msgpackr';
import { ConfigError, describeEnvelope, type Envelope, type NodeId } from '@consensus-kit/core';
import { blockedLinks, validateLinkSettings, type DelayRange, type FaultAction, type LinkSettings } from './faults';
import type { Rng } from './rng';
import { US_PER_MS, type SimContext } from './sim-context';
import type { NetworkOptions } from './sim-options';

/**
 * The simulated network: per-link delay, drop, duplicate and reorder drawn from its own random stream, an
 * optional msgpackr round trip (what a wire does to a message), and the partition in force. It schedules
 * deliveries; the run loop hands them to the receiving replica, through `receive`.
 */
export class SimNetwork {
  private settings: Required<LinkSettings> & { delay: DelayRange };
  private readonly overrides = new Map<string, LinkSettings>();
  private blocked = new Set<string>();
  /**
   * Stalled directed links (`from>to`) and what was sent on each meanwhile, in order: a TCP connection that hung
   * without breaking. Its bytes arrive late, together, when it recovers (`unstall`, or a `heal`).
   */
  private readonly stalled = new Map<string, { env: Envelope; wire: unknown }[]>();
  /** A recovered link delivers nothing new before the end of its backlog (µs), as a byte stream would. */
  private readonly drainUntil = new Map<string, number>();
  readonly serialize: boolean;

  constructor(
    private readonly ctx: SimContext,
    private readonly rng: Rng,
    private readonly ids: readonly NodeId[],
    n: NetworkOptions,
  ) {
    const base: LinkSettings = {};
    if (n.delay !== undefined) base.delay = n.delay;
    if (n.drop !== undefined) base.drop = n.drop;
    if (n.duplicate !== undefined) base.duplicate = n.duplicate;
    if (n.reorder !== undefined) base.reorder = n.reorder;
    validateLinkSettings(base, 'network');
    this.settings = { delay: n.delay ?? { min: 0.5, max: 5 }, drop: n.drop ?? 0, duplicate: n.duplicate ?? 0, reorder: n.reorder ?? 0 };
    for (const [key, s] of Object.entries(n.links ?? {})) {
      const m = /^(.+)->(.+)$/.exec(key);
      if (m === null || !ids.includes(m[1] as string) || !ids.includes(m[2] as string)) {
        throw new ConfigError(`network.links key ${JSON.stringify(key)} must be "from->to" between existing nodes (${ids.join(' ')})`);
      }
      validateLinkSettings(s, `network.links[${key}]`);
      this.overrides.set(`${m[1]}>${m[2]}`, s);
    }
    this.serialize = n.serialize ?? true;
  }

  /** Puts one envelope sent by `sender` on the wire (or drops it). */
  send(sender: NodeId, env: Envelope): void {
    const ctx = this.ctx;
    ctx.stats.messagesSent++;
    const to = this.ids.indexOf(env.to);
    if (env.from !== sender || to < 0) return this.drop(env, env.from !== sender ? 'forged-sender' : 'unknown-receiver');
    const link = this.overrides.get(`${env.from}>${env.to}`);
    const delay = link?.delay ?? this.settings.delay;
    if (this.rng.chance(link?.drop ?? this.settings.drop)) return this.drop(env, 'lost');
    let wire: unknown;
    try {
      wire = this.serialize ? pack(env.msg) : env.msg;
    } catch (err) {
      return ctx.fail('protocol-error', 'message (not msgpack-encodable)', sender, err);
    }
    const held = this.stalled.size > 0 ? this.stalled.get(`${env.from}>${env.to}`) : undefined;
    if (held !== undefined) {
      held.push({ env, wire });
      if (ctx.tracing) ctx.trace({ ev: 'send', msg: describeEnvelope(env), held: true });
      return;
    }
    const copies = this.rng.chance(link?.duplicate ?? this.settings.duplicate) ? 2 : 1;
    if (copies === 2) ctx.stats.messagesDuplicated++;
    const drain = this.drainUntil.size > 0 ? this.drainUntil.get(`${env.from}>${env.to}`) : undefined;
    for (let i = 0; i < copies; i++) {
      let d = delay.min + this.rng.next() * (delay.max - delay.min);
      if (this.rng.chance(link?.reorder ?? this.settings.reorder)) d += this.rng.next() * 10 * Math.max(delay.max, 1);
      const at = ctx.now + Math.max(1, Math.round(d * US_PER_MS));
      ctx.push(drain !== undefined && drain > at ? drain : at, { k: 'deliver', to, env, wire });
    }
    if (drain !== undefined && drain <= ctx.now) this.drainUntil.delete(`${env.from}>${env.to}`);
    if (ctx.tracing) ctx.trace({ ev: 'send', msg: describeEnvelope(env), copies });
  }

  /**
   * A delivery reached its receiver's process: the envelope to step, or undefined when the link is cut now
   * (a partition that started while the message was in flight) or the receiver is down.
   */
  receive(env: Envelope, wire: unknown, receiverUp: boolean): Envelope | undefined {
    if (!receiverUp) return this.drop(env, 'receiver-down');
    if (this.blocked.has(`${env.from}>${env.to}`)) return this.drop(env, 'partitioned');
    const out: Envelope = this.serialize ? { from: env.from, to: env.to, msg: unpack(wire as Uint8Array) } : env;
    this.ctx.stats.messagesDelivered++;
    this.ctx.observer?.delivered?.(out);
    if (this.ctx.tracing) this.ctx.trace({ ev: 'recv', msg: describeEnvelope(out) });
    return out;
  }

  /** A partition action: replaces the topology in force. `heal` also ends every stall. */
  partition(action: FaultAction): void {
    this.blocked = blockedLinks(action, this.ids);
    if (action.type === 'heal') for (const key of [...this.stalled.keys()]) this.unstallKey(key);
  }

  /** Whether the partition in force cuts the directed link `from` -> `to`. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  /** From now on, what `from` sends to `to` waits (in order) until `unstall`. */
  stall(from: NodeId, to: NodeId): void {
    const key = `${from}>${to}`;
    if (!this.stalled.has(key)) this.stalled.set(key, []);
  }

  /** The stalled link recovers: what waited leaves now, in order, each after the link's delay. */
  unstall(from: NodeId, to: NodeId): void {
    this.unstallKey(`${from}>${to}`);
  }

  private unstallKey(key: string): void {
    const held = this.stalled.get(key);
    if (held === undefined) return;
    this.stalled.delete(key);
    const link = this.overrides.get(key);
    const delay = link?.delay ?? this.settings.delay;
    // In order: a recovered stream delivers its backlog as sent, each no earlier than the one before.
    let at = this.ctx.now;
    for (const { env, wire } of held) {
      const to = this.ids.indexOf(env.to);
      at = Math.max(at, this.ctx.now + Math.max(1, Math.round((delay.min + this.rng.next() * (delay.max - delay.min)) * US_PER_MS)));
      this.ctx.push(at, { k: 'deliver', to, env, wire });
    }
    this.drainUntil.set(key, at);
  }

  /** Settings of the directed link `from` -> `to` from now on; undefined: back to the defaults. */
  setLink(from: NodeId, to: NodeId, settings: LinkSettings | undefined): void {
    if (settings === undefined) this.overrides.delete(`${from}>${to}`);
    else this.overrides.set(`${from}>${to}`, settings);
  }

  /** The default link settings in force (a copy). */
  current(): LinkSettings {
    return { ...this.settings, delay: { ...this.settings.delay } };
  }

  /** Network settings over time (a `network` fault action). */
  update(s: LinkSettings): void {
    const n = this.settings;
    this.settings = { delay: s.delay ?? n.delay, drop: s.drop ?? n.drop, duplicate: s.duplicate ?? n.duplicate, reorder: s.reorder ?? n.reorder };
  }

  private drop(env: Envelope, why: string): undefined {
    this.ctx.stats.messagesDropped++;
    this.ctx.observer?.dropped?.(env, why);
    if (this.ctx.tracing) this.ctx.trace({ ev: 'drop', why, msg: describeEnvelope(env) });
    return undefined;
  }
}
