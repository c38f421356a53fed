import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '@consensus-kit/kv';
import { UI_ACTION_NAMES, type UiAction, type UiActionName, type UiActionResult } from '@consensus-kit/ui';
import { ClusterDir, NODE_ID, type ClusterFile } from './cluster-file';
import { addMemberNode, cutLinks, healLinks, removeMemberNode, transferLeadership } from './commands/admin';
import { bench } from './commands/bench';
import { killNode, restartNode } from './commands/cluster';
import { configInForce, forgetPendingAdd, membershipNotes, pendingAddOf, setPendingAdd } from './pending-add';
import { fetchReports, stopNode } from './supervisor';
import { connectKv, connectNode } from './connect';
import { withDeadline } from './deadline';
import { describeError } from './errors';
import { dirTarget } from './target';

/** The bounds of a bench started from the page: short and light, so the page stays a view of the cluster, not a load test. */
export const UI_BENCH_LIMITS = { maxSeconds: 10, maxClients: 64, defaultSeconds: 3, defaultClients: 16, graceMs: 2000 } as const;

export interface UiActionsOptions {
  /** The cluster directory of a cluster started by `consensus-cli start`. */
  dir: string;
  /** How long a put or get may take before it is reported as failed (ms). Default 5000. */
  kvTimeoutMs?: number;
  /** How long any other action may take (ms); `add-member` gets twice this. Default 30,000. */
  timeoutMs?: number;
}

/** Runs one action from the page; never rejects: a bad request or a failure is `{ ok: false, text }`. */
export type UiActions = (action: UiAction) => Promise<UiActionResult>;

/** The key `add-member` waits on (no node id has a NUL). */
const ADDING = '\0add-member';

/** A field of an action that is not what the action takes: becomes `{ ok: false, text }`. */
class BadAction extends Error {}

/**
 * The actions the page may run on a cluster the CLI started in `dir`, each as the command of the same name does
 * it (the command's own internals, without their printing): `put`/`get` through a kv client, `kill` (SIGKILL, as
 * `kill`), `restart` (as `restart`), `partition` (a node from every peer, or one link both ways, as `partition`),
 * `heal`, `transfer` (`leader transfer`), `add-member` and `remove-member` (`members add`/`members remove`) and
 * a short `bench` of writes (one at a time). Every field is checked first (a node of the cluster, a non-empty key,
 * a value within the store's limit, numbers in range).
 */
export function createUiActions(o: UiActionsOptions): UiActions {
  const kvTimeoutMs = o.kvTimeoutMs ?? 5000;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const target = () => dirTarget(o.dir);
  let benchRunning = false;
  const chains = new Map<string, Promise<unknown>>();
  /**
   * Per node, the restart queued or running while nothing was queued after it. A Restart clicked meanwhile joins it
   * (the same answer, when it is done) rather than queueing a restart of its own: three clicks queued three restarts,
   * each up to 15 s, and the page waited ~45 s for the last answer.
   */
  const restarts = new Map<string, Promise<{ restarted: string; pid: number }>>();
  /**
   * Runs `fn` once every earlier action on `key` (a node id) has settled. A node's kill, restart, add and remove
   * each stop or spawn its process and rewrite its pid file: two at once (a double-clicked Restart) both spawned
   * a process, and the one its pid file no longer named kept running, untracked (Kill: "not running").
   */
  const serial = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    // Another action queued on the node after a restart: a Restart clicked next is a restart of its own again.
    restarts.delete(key);
    const next = (chains.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    chains.set(key, tail);
    void tail.then(() => {
      if (chains.get(key) === tail) chains.delete(key);
    });
    return next;
  };

  const run = async (a: UiAction, cluster: ClusterFile): Promise<UiActionResult> => {
    switch (a.action) {
      case 'put': {
        const key = keyOf(a);
        const value = field(a, 'value', 'string', true) ?? '';
        if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new BadAction(`the value is ${Buffer.byteLength(value)} bytes, larger than a key can hold (${MAX_VALUE_BYTES} bytes)`);
        const r = await withKv(`put ${key}`, (kv, signal) => kv.put(key, value, signal ? { signal } : {}));
        return { ok: true, text: `put ${key} = ${shorten(value)} at revision ${r.revision}`, data: { key, revision: r.revision } };
      }
      case 'get': {
        const key = keyOf(a);
        const r = await withKv(`get ${key}`, (kv, signal) => kv.get(key, signal ? { signal } : {}));
        if (r === undefined) return { ok: true, text: `${key} is not set`, data: { key, found: false } };
        const value = typeof r.value === 'string' ? r.value : Buffer.from(r.value).toString('base64');
        return { ok: true, text: `${key} = ${shorten(value)} (revision ${r.modRevision})`, data: { key, found: true, value, modRevision: r.modRevision } };
      }
      case 'kill': {
        const id = nodeOf(cluster, a, 'node');
        const r = await serial(id, () => killNode(o.dir, id));
        return { ok: true, text: `${id} killed (pid ${r.pid}) with SIGKILL`, data: r };
      }
      case 'restart': {
        const id = nodeOf(cluster, a, 'node');
        let running = restarts.get(id);
        if (running === undefined) {
          const mine = serial(id, async () => {
            await adoptPendingAdd(id);
            return restartNode(o.dir, id);
          });
          restarts.set(id, mine);
          const done = () => {
            if (restarts.get(id) === mine) restarts.delete(id);
          };
          void mine.then(done, done);
          running = mine;
        }
        const r = await running;
        return { ok: true, text: `${id} restarted (pid ${r.pid})`, data: r };
      }
      case 'partition': {
        const id = nodeOf(cluster, a, 'node');
        const peer = field(a, 'peer', 'string', false);
        if (peer !== undefined) {
          nodeOf(cluster, a, 'peer');
          if (peer === id) throw new BadAction(`cannot cut ${id} off from itself`);
        }
        const r = await cutLinks({ target: target(), timeout: timeoutMs }, id, peer === undefined ? [] : [peer]);
        return { ok: true, text: `cut ${id} off from ${r.from.join(', ')}`, data: r };
      }
      case 'heal': {
        const r = await healLinks({ target: target(), timeout: timeoutMs });
        if (r.failed.length > 0) return { ok: false, text: `could not reach ${r.failed.join('; ')}: heal again`, data: r };
        const down = r.down.length > 0 ? ` (not running: ${r.down.join(', ')})` : '';
        return { ok: true, text: `every link restored${r.healed.length > 0 ? ` on ${r.healed.join(', ')}` : ''}${down}`, data: r };
      }
      case 'transfer': {
        const to = nodeOf(cluster, a, 'to');
        // A stopped node cannot take the lead: said now, not after the transfer's timeout.
        if (new ClusterDir(o.dir).livePid(to) === undefined) throw new BadAction(`${to} is not running: restart it before making it the leader`);
        const r = await transferLeadership({ target: target(), timeout: timeoutMs }, to);
        return { ok: true, text: `leadership moved to ${r.leader ?? to} (term ${r.term})`, data: r };
      }
      case 'add-member': {
        const role = field(a, 'role', 'string', false) ?? 'voter';
        if (role !== 'voter' && role !== 'learner' && role !== 'observer') throw new BadAction(`role ${JSON.stringify(role)} is not voter, learner or observer`);
        // A non-voting member: raft's and Multi-Paxos' learner is what ZooKeeper (and ZAB) call an observer.
        if (role === 'observer' && cluster.protocol !== 'zab') throw new BadAction(`${cluster.protocol} has no observers (ZAB's non-voting members): add the node as a learner`);
        const given = field(a, 'node', 'string', false);
        if (given !== undefined && !NODE_ID.test(given)) throw new BadAction(`node id ${JSON.stringify(given)} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
        // The id is chosen once the adds before it are done (two clicks would both have picked the same one).
        const [id, r] = await serial(ADDING, async () => {
          const id = given ?? nextNodeId(new ClusterDir(o.dir).read());
          const known = new ClusterDir(o.dir).read().nodes.some((n) => n.id === id);
          try {
            return [id, await serial(id, () => addMemberNode({ dir: o.dir, learner: role !== 'voter', timeout: timeoutMs * 2 }, id))] as const;
          } catch (e) {
            // A new node that is on record after the add failed was kept because the change may have committed
            // (members add keeps it, stopped, so `members remove` reaches it). Marked, so status and the page say so.
            if (known || !new ClusterDir(o.dir).read().nodes.some((n) => n.id === id)) throw e;
            throw await pendingAdd(id, e);
          }
        });
        if ('promoted' in r) return { ok: true, text: `${id} promoted from learner to voter`, data: r };
        return { ok: true, text: `${id} added as ${role === 'observer' ? 'an' : 'a'} ${role} at ${r.address}`, data: r };
      }
      case 'remove-member': {
        const id = nodeOf(cluster, a, 'node');
        // A node whose add gave up with the outcome unknown: not a member (the configuration in force does not list
        // it) is taken off the record; a member is removed through the log as any other.
        if (pendingAddOf(new ClusterDir(o.dir).node(cluster, id)) !== undefined) {
          const f = await serial(id, () => forgetPendingAdd(o.dir, id, (cd, x) => stopNode(cd, x), fetchReports));
          if (f !== undefined) {
            return { ok: true, text: `${id} taken off the record: the configuration in force (leader ${f.leader}, term ${f.term}) does not list it, so its add did not take effect`, data: f };
          }
        }
        const r = await serial(id, () => removeMemberNode({ dir: o.dir, timeout: timeoutMs }, id));
        return { ok: true, text: `${id} removed (its data stays in ${r.dataDir})`, data: r };
      }
      case 'bench': {
        const seconds = numberOf(a, 'seconds', UI_BENCH_LIMITS.defaultSeconds, 0.5, UI_BENCH_LIMITS.maxSeconds, false);
        const clients = numberOf(a, 'clients', UI_BENCH_LIMITS.defaultClients, 1, UI_BENCH_LIMITS.maxClients, true);
        if (benchRunning) return { ok: false, text: 'a bench is already running: wait for its result' };
        benchRunning = true;
        try {
          const r = await bench({ dir: o.dir, clients, durationMs: Math.round(seconds * 1000), warmupMs: 0, valueSize: 256, op: 'put', quiet: true, graceMs: UI_BENCH_LIMITS.graceMs });
          const l = r.latencyMs;
          // Every request failed (no leader, no majority): not a result to report as a throughput.
          if (r.ops === 0) return { ok: false, text: `bench: no write succeeded in ${(r.durationMs / 1000).toFixed(1)} s (${r.errors} errors): has the cluster a leader and a majority?`, data: { ops: 0, errors: r.errors, clients, durationMs: r.durationMs } };
          return {
            ok: true,
            text: `bench: ${r.opsPerSec.toLocaleString('en-US')} writes/s with ${clients} in flight for ${(r.durationMs / 1000).toFixed(1)} s, p50 ${l.p50} ms, p99 ${l.p99} ms (${r.errors} errors)`,
            data: { opsPerSec: r.opsPerSec, ops: r.ops, errors: r.errors, clients, durationMs: r.durationMs, p50: l.p50, p99: l.p99 },
          };
        } finally {
          benchRunning = false;
        }
      }
    }
  };

  /**
   * Marks a new node whose add gave up with its outcome unknown, and says what the configuration in force says of
   * it now. The mark stays until the node is removed: the change may still commit after this answer (a leader
   * appended it, or it was in flight), so the file cannot be rolled back on a "not a member" seen now; status and
   * the page compare the mark with the configuration whenever they look.
   */
  const pendingAdd = async (id: string, e: unknown): Promise<BadAction> => {
    const reason = describeError(e);
    const cd = new ClusterDir(o.dir);
    // Running: the add failed after the node became a learner (its promotion did not happen), and members add kept
    // it running and on record. Nothing is unknown there.
    if (cd.livePid(id) !== undefined) return new BadAction(`add-member ${id}: ${reason}`);
    const recorded = cd.read();
    const inForce = configInForce(await fetchReports(recorded).catch(() => []));
    const c = inForce?.config;
    if (inForce !== undefined && c !== undefined && (c.voters.includes(id) || c.learners.includes(id) || (c.outgoing ?? []).includes(id))) {
      // The change committed after all: a member, stopped, with its address where the other nodes need it.
      const as = c.learners.includes(id) ? 'learner' : 'voter';
      return new BadAction(`add-member ${id}: ${reason}. The configuration in force (leader ${inForce.leader}, term ${inForce.term}) lists ${id} as a ${as}: the add took effect; it is stopped (Restart runs it)`);
    }
    setPendingAdd(o.dir, id, { since: new Date().toISOString(), reason });
    // The add wrote the node into every other node's peers. Those are the boot configuration of a Raft node that
    // has no snapshot and no config entry yet (raft.ts: the log's configurations over `peers`), so every node
    // restarted now would count this stopped node as a voter, one a majority may need: a 1-node cluster restarted
    // never elected again, and no leader could then confirm it is not a member. Running nodes keep its address
    // in memory, which reaches it if the learner change still commits.
    cd.setPeerAddress(cd.read().nodes.map((n) => n.id).filter((n) => n !== id), id, undefined);
    let note: string | undefined;
    try {
      const cluster = new ClusterDir(o.dir).read();
      note = membershipNotes(cluster, await fetchReports(cluster)).find((m) => m.node === id)?.text;
    } catch {
      // the mark is written; status tells later
    }
    return new BadAction(`add-member ${id}: ${reason}. ${id} is kept on record, stopped, marked "outcome unknown"${note !== undefined ? `; ${note.slice(note.indexOf(';') + 2)}` : ''} (status and the page show what the configuration says; Remove member takes it out either way)`);
  };

  /**
   * Before a node marked "add outcome unknown" is started again: the configuration in force must list it. Then its
   * mark is cleared and its address given back to the other nodes (their configs and, at once, the running ones),
   * which pendingAdd took away; otherwise starting it is refused, saying what to do instead.
   */
  const adoptPendingAdd = async (id: string): Promise<void> => {
    const cd = new ClusterDir(o.dir);
    const cluster = cd.read();
    const node = cd.node(cluster, id);
    if (pendingAddOf(node) === undefined) return;
    const inForce = configInForce(await fetchReports(cluster));
    if (inForce === undefined) throw new BadAction(`no leader answers to tell whether ${id} became a member (its add gave up with the outcome unknown): it stays stopped`);
    const c = inForce.config;
    if (!c.voters.includes(id) && !c.learners.includes(id) && !(c.outgoing ?? []).includes(id)) {
      throw new BadAction(`${id}'s add did not take effect (the configuration in force, leader ${inForce.leader} term ${inForce.term}, does not list it): Remove member takes it off the record`);
    }
    const address = `${node.host}:${node.port}`;
    const others = cluster.nodes.filter((n) => n.id !== id);
    cd.setPeerAddress(others.map((n) => n.id), id, address);
    await Promise.all(
      others.map(async (n) => {
        const { rpc } = connectNode(target(), `${n.host}:${n.port}`);
        try {
          await rpc.request({ t: 'admin.peers', peers: { [id]: address } }, { timeoutMs: 3000 }).catch(() => undefined);
        } finally {
          await rpc.close();
        }
      }),
    );
    setPendingAdd(o.dir, id, undefined);
  };

  /** A kv client for one request, closed after it; the request gives up after `kvTimeoutMs`. */
  const withKv = async <T>(what: string, fn: (kv: ReturnType<typeof connectKv>['kv'], signal: AbortSignal | undefined) => Promise<T>): Promise<T> => {
    const { kv } = connectKv(target(), { timeoutMs: kvTimeoutMs + 1000 });
    try {
      return await withDeadline(kvTimeoutMs, { what, note: 'no majority answered in time' }, (signal) => fn(kv, signal));
    } finally {
      await kv.close();
    }
  };

  return async (action: UiAction): Promise<UiActionResult> => {
    try {
      const a = actionOf(action);
      const cluster = new ClusterDir(o.dir).read();
      return await run(a, cluster);
    } catch (e) {
      return { ok: false, text: describeError(e) };
    }
  };
}

const shorten = (s: string, max = 60) => (s.length > max ? `${s.slice(0, max)}...` : s);

/** The action, checked to be an object naming a known action. */
function actionOf(a: unknown): UiAction {
  if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new BadAction('an action is a JSON object: { "action": ... }');
  const name = (a as { action?: unknown }).action;
  if (typeof name !== 'string' || !UI_ACTION_NAMES.includes(name as UiActionName)) {
    throw new BadAction(`unknown action ${JSON.stringify(name ?? null)} (one of ${UI_ACTION_NAMES.join(', ')})`);
  }
  return a as UiAction;
}

function field(a: UiAction, name: string, type: 'string', required: true): string;
function field(a: UiAction, name: string, type: 'string', required: false): string | undefined;
function field(a: UiAction, name: string, type: 'string', required: boolean): string | undefined {
  const v = (a as unknown as Record<string, unknown>)[name];
  if (v === undefined || v === null) {
    if (required) throw new BadAction(`${a.action} needs "${name}"`);
    return undefined;
  }
  if (typeof v !== type) throw new BadAction(`${a.action}: "${name}" must be a ${type}`);
  return v as string;
}

function keyOf(a: UiAction): string {
  const key = field(a, 'key', 'string', true);
  if (key === '') throw new BadAction(`${a.action} needs a key: it is empty`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new BadAction(`the key is longer than ${MAX_KEY_BYTES} bytes`);
  return key;
}

/** The node named by field `name`, which must be a node of the cluster. */
function nodeOf(cluster: ClusterFile, a: UiAction, name: string): string {
  const id = field(a, name, 'string', true);
  if (!cluster.nodes.some((n) => n.id === id)) {
    throw new BadAction(`${JSON.stringify(id)} is not a node of this cluster (${cluster.nodes.map((n) => n.id).join(', ')})`);
  }
  return id;
}

function numberOf(a: UiAction, name: string, byDefault: number, min: number, max: number, integer: boolean): number {
  const v = (a as unknown as Record<string, unknown>)[name];
  if (v === undefined || v === null) return byDefault;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new BadAction(`${a.action}: "${name}" must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

/** The first id n<k> no node of the cluster has (nor had, as far as the cluster file knows). */
function nextNodeId(cluster: ClusterFile): string {
  const taken = new Set(cluster.nodes.map((n) => n.id));
  for (let k = cluster.nodes.length + 1; ; k++) if (!taken.has(`n${k}`)) return `n${k}`;
}
