/**
 * `KetamaRing`: placements identical to the npm `hashring` package (3.x, itself libketama's algorithm), so
 * a service can switch libraries without its caches reshuffling. `ketama.test.ts` checks `get` and `getN`
 * against the real package on thousands of keys, with weights, additions and removals.
 *
 * The algorithm, as that package implements it:
 * - total = sum of the weights, in server order; server s gets `floor((w / total) * vnodeCount * n)` vnodes
 *   (n = number of servers, vnodeCount = 40), the same floating-point expression, evaluated in the same order;
 * - vnode i of server s is `md5(name + '-' + i)`; each of its first `replicas` (4; 3 with
 *   `compatibility: 'hash_ring'`) little-endian uint32 words is a point (160 points per server of weight 1);
 * - points are sorted ascending; equal points keep server order (its `Array#sort` is stable);
 * - a key's position is the first little-endian uint32 of `md5(key)`; it belongs to the first point >= that
 *   position, wrapping to the first point; `getN` walks on from there, like its `range(key, n)`.
 * - server order is insertion order, except that, like the object keys that package rebuilds its server
 *   list from on `add`, names that are array indices ("0", "42") move to the front in numeric order.
 *
 * Not supported from that package: a custom hasher, `default port`, per-server vnode counts, `swap`.
 *
 * Because each server's vnode count depends on n and on every weight, ketama cannot change incrementally:
 * any add or remove re-derives all counts (the md5 digests are cached per server, so a rebuild is a sort,
 * not a rehash), and adding a server may also move keys between old servers. Use it to migrate, not for
 * new deployments.
 */
import { md5String } from './md5.js';
import { PointIndex, ownerArray, sortPoints } from './point-index.js';
import type { Distribution, HashRing, NodesInput } from './types.js';
import { assertKey, assertNodeName, duplicateNode, emptyRing, integerOption, nodeEntries, normalizeWeight, replicaCount, unknownNode } from './validate.js';

export interface KetamaOptions {
  nodes?: NodesInput;
  /** Vnodes per server before weighting (`'vnode count'` in the npm package). Default 40. */
  vnodeCount?: number;
  /** `'ketama'` (4 points per vnode, the default) or `'hash_ring'` (3, as Python's hash_ring). */
  compatibility?: 'ketama' | 'hash_ring';
}

export class KetamaRing implements HashRing {
  readonly algorithm = 'ketama' as const;
  readonly vnodeCount: number;
  readonly replicas: number;
  private servers: string[] = [];
  private readonly weights = new Map<string, number>();
  private readonly digests = new Map<string, Uint32Array>();
  private readonly index = new PointIndex();
  private owners: string[] = [];
  private dirty = false;
  private seen = new Uint32Array(0);
  private stamp = 0;

  constructor(options: KetamaOptions = {}) {
    this.vnodeCount = integerOption('vnodeCount', options.vnodeCount ?? 40, 1, 1 << 16);
    this.replicas = options.compatibility === 'hash_ring' ? 3 : 4;
    // The npm package only re-sorts its server list on add(); the initial list keeps its own order.
    for (const [node, weight] of nodeEntries(options.nodes)) this.insert(node, weight);
  }

  get size(): number {
    return this.servers.length;
  }

  get(key: string): string {
    assertKey(key);
    if (this.dirty) this.rebuild();
    if (this.index.count === 0) throw emptyRing();
    return this.owners[this.index.ownerOf(md5String(key))]!;
  }

  getN(key: string, n: number): string[] {
    assertKey(key);
    if (this.dirty) this.rebuild();
    const want = replicaCount(n, this.servers.length);
    const out: string[] = [];
    if (want === 0 || this.index.count === 0) return out;
    const index = this.index;
    const count = index.count;
    if (this.seen.length < this.owners.length) this.seen = new Uint32Array(this.owners.length);
    if (++this.stamp === 0x100000000) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    const seen = this.seen;
    const stamp = this.stamp;
    let i = index.locate(md5String(key));
    for (let steps = count; steps > 0 && out.length < want; steps--) {
      const owner = index.ownerAt(i);
      if (seen[owner] !== stamp) {
        seen[owner] = stamp;
        out.push(this.owners[owner]!);
      }
      if (++i === count) i = 0;
    }
    return out;
  }

  add(node: string, weight?: number): this {
    this.insert(node, weight);
    this.servers = objectKeyOrder(this.servers);
    return this;
  }

  remove(node: string): this {
    if (!this.weights.has(node)) throw unknownNode(node);
    this.weights.delete(node);
    this.digests.delete(node);
    this.servers = this.servers.filter((s) => s !== node);
    this.dirty = true;
    return this;
  }

  has(node: string): boolean {
    return this.weights.has(node);
  }

  weight(node: string): number {
    const w = this.weights.get(node);
    if (w === undefined) throw unknownNode(node);
    return w;
  }

  /** Servers in the npm package's order. */
  nodes(): string[] {
    return [...this.servers];
  }

  distribution(keys: Iterable<string>): Distribution {
    const out = new Map<string, number>(this.servers.map((s) => [s, 0]));
    for (const key of keys) {
      const node = this.get(key);
      out.set(node, out.get(node)! + 1);
    }
    return out;
  }

  /** Exact fraction of the hash space each server owns, in `nodes()` order. */
  shares(): Map<string, number> {
    if (this.dirty) this.rebuild();
    const byServer = this.index.arcShares(this.owners.length);
    return new Map(this.owners.map((server, i) => [server, byServer[i]!]));
  }

  /** Points on the continuum (after pending changes). */
  get pointCount(): number {
    if (this.dirty) this.rebuild();
    return this.index.count;
  }

  /** Bytes held by the lookup arrays and the cached digests. */
  get byteLength(): number {
    if (this.dirty) this.rebuild();
    let bytes = this.index.byteLength;
    for (const d of this.digests.values()) bytes += d.byteLength;
    return bytes;
  }

  private insert(node: string, weight: number | undefined): void {
    assertNodeName(node);
    const w = normalizeWeight(weight, node);
    if (this.weights.has(node)) throw duplicateNode(node);
    this.weights.set(node, w);
    this.servers.push(node);
    this.dirty = true;
  }

  private rebuild(): void {
    this.dirty = false;
    const servers = this.servers;
    const n = servers.length;
    let total = 0;
    for (const s of servers) total += this.weights.get(s)!;
    const lengths = servers.map((s) => Math.floor((this.weights.get(s)! / total) * this.vnodeCount * n));
    let count = 0;
    for (const length of lengths) count += length * this.replicas;
    const points = new Uint32Array(count);
    const owners = ownerArray(count, n);
    let at = 0;
    for (let s = 0; s < n; s++) {
      const words = this.digestsOf(servers[s]!, lengths[s]!);
      for (let i = 0; i < lengths[s]!; i++) {
        for (let j = 0; j < this.replicas; j++) {
          points[at] = words[i * 4 + j]!;
          owners[at++] = s;
        }
      }
    }
    sortPoints(points, owners); // stable: equal points stay in server order
    this.index.set(points, owners, n);
    this.owners = [...servers];
  }

  /** md5(name + '-' + i) as 4 words each, for i < length, cached and grown on demand. */
  private digestsOf(name: string, length: number): Uint32Array {
    const words = this.digests.get(name);
    const have = words === undefined ? 0 : words.length / 4;
    if (words !== undefined && have >= length) return words;
    const grown = new Uint32Array(length * 4);
    if (words !== undefined) grown.set(words);
    const out = new Uint32Array(4);
    for (let i = have; i < length; i++) {
      md5String(`${name}-${i}`, out);
      grown.set(out, i * 4);
    }
    this.digests.set(name, grown);
    return grown;
  }
}

/** True for the strings JavaScript orders first among object keys: canonical array indices 0..2^32-2. */
function isArrayIndex(name: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(name) && Number(name) < 4294967295;
}

/** The order `Object.keys` would give an object built by inserting `names` in order. */
function objectKeyOrder(names: string[]): string[] {
  const indices = names.filter(isArrayIndex).sort((a, b) => Number(a) - Number(b));
  if (indices.length === 0) return names;
  return indices.concat(names.filter((name) => !isArrayIndex(name)));
}
