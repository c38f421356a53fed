/** The algorithms this package implements; each instance reports its own as `algorithm`. */
export type HashRingAlgorithm = 'ring' | 'maglev' | 'jump' | 'rendezvous' | 'bounded-load' | 'ketama';

/** A node with an optional relative weight (default 1). */
export interface WeightedNode {
  node: string;
  weight?: number;
}

/**
 * Initial nodes: a list of names or `{ node, weight }`, or a `{ [node]: weight }` record (the shape the npm
 * `hashring` package accepts; its key order is JavaScript's own object key order).
 */
export type NodesInput = ReadonlyArray<string | WeightedNode> | Readonly<Record<string, number>>;

/** Keys counted per node, every node present (0 when it got none), in `nodes()` order. */
export type Distribution = Map<string, number>;

/**
 * The one interface every algorithm implements.
 *
 * Lookups are synchronous and never allocate for `get`. Mutations (`add`, `remove`) are cheap to call in a
 * burst: algorithms that keep a lookup structure fold all pending changes into it on the next lookup.
 */
export interface HashRing {
  readonly algorithm: HashRingAlgorithm;
  /** Number of nodes. */
  readonly size: number;
  /** The node that owns `key`. Throws `EMPTY_RING` when there are no nodes. */
  get(key: string): string;
  /**
   * `n` distinct nodes for `key`, the owner first, in an order that depends only on the key and the node set
   * (replica placement). Returns all nodes when `n` exceeds `size`; `n` must be an integer >= 0.
   */
  getN(key: string, n: number): string[];
  /** Adds a node. Throws `DUPLICATE_NODE`, or `INVALID_WEIGHT` unless `weight` is a finite number > 0. */
  add(node: string, weight?: number): this;
  /** Removes a node. Throws `UNKNOWN_NODE`. */
  remove(node: string): this;
  has(node: string): boolean;
  /** The node's weight. Throws `UNKNOWN_NODE`. */
  weight(node: string): number;
  /** Node names in insertion order (jump: bucket order). */
  nodes(): string[];
  /** How many of `keys` each node owns. */
  distribution(keys: Iterable<string>): Distribution;
}
