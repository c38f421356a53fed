// Types for the parts of the npm `hashring` package (3.x, untyped) that the compatibility tests and the
// bench use. It is a devDependency: the reference our ketama mode is tested and measured against.
declare module 'hashring' {
  type Servers = string | string[] | Record<string, number | { weight?: number; vnodes?: number }>;
  interface Options {
    'vnode count'?: number;
    compatibility?: 'ketama' | 'hash_ring';
    replicas?: number;
    'max cache size'?: number;
    'default port'?: number;
  }
  class HashRing {
    constructor(servers?: Servers, algorithm?: string, options?: Options);
    servers: Array<{ string: string; weight: number }>;
    ring: Array<{ value: number; server: string }>;
    get(key: string): string | undefined;
    range(key: string, size?: number, unique?: boolean): string[];
    add(servers: Servers): this;
    remove(server: string): this;
    has(server: string): boolean;
  }
  export = HashRing;
}
