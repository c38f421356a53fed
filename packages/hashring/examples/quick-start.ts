import { createHashRing, isHashRingError, renderDistributionChart } from '@consensus-kit/hashring';

// The default ring: 8192 virtual nodes per unit of weight, O(1) lookups, minimal disruption.
const ring = createHashRing({ nodes: ['cache-a:6379', 'cache-b:6379', { node: 'cache-c:6379', weight: 2 }] });
console.log(ring.get('user:42')); // the node that owns this key
console.log(ring.getN('user:42', 2)); // owner + one replica: distinct nodes, stable order

const keys = Array.from({ length: 100_000 }, (_, i) => `user:${i}`);
const before = keys.map((key) => ring.get(key));
ring.add('cache-d:6379'); // keys move only to the new node: about 1/5 of them
const moved = keys.filter((key, i) => ring.get(key) !== before[i]);
console.log(`${moved.length} keys moved, ${moved.filter((key) => ring.get(key) === 'cache-d:6379').length} to cache-d`);
console.log(renderDistributionChart(ring.distribution(keys), { width: 72 }));

try {
  ring.remove('cache-x:6379');
} catch (error) {
  if (isHashRingError(error)) console.log(error.code); // UNKNOWN_NODE
}
