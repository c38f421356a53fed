#!/usr/bin/env node
// Where a `node --cpu-prof` profile spent its time: self time by function and by source file, top N each.
// For the zab/raft comparison (scripts/compare/zookeeper.mjs --profile <dir> writes one profile per process).
//
// Usage: node scripts/compare/cpuprofile-top.mjs <file.cpuprofile> [more files] [--top 25]
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
const top = Number(values.top);
if (!Number.isSafeInteger(top) || top < 1) {
  console.error('--top must be a positive integer');
  process.exit(2);
}
if (positionals.length === 0) {
  console.error('usage: cpuprofile-top.mjs <file.cpuprofile> [...] [--top 25]');
  process.exit(2);
}

/** Shortens a script URL to the part a reader recognises: the package and file (packages/zab/dist/index.js). */
function where(url) {
  if (url === '') return '(native)';
  const m = /(?:packages|apps)\/[^/]+\/(?:dist|src)\/.*$/.exec(url) ?? /node_modules\/(?:\.pnpm\/)?(?:[^/]*\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m !== null) return m[1] ?? m[0];
  return url.startsWith('node:') ? url : basename(url);
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Self time per node: the sampled deltas attributed to the sample's node.
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map();
  const byFile = new Map();
  let idle = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const f = `${cf.functionName || '(anonymous)'} ${where(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    byFunction.set(f, (byFunction.get(f) ?? 0) + us);
    const w = where(cf.url);
    byFile.set(w, (byFile.get(w) ?? 0) + us);
  }
  const busy = totalUs - idle;
  const pct = (us) => `${((100 * us) / Math.max(1, busy)).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (percentages of busy time)`);
  console.log('  by file:');
  for (const [w, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, Math.min(top, 15))) console.log(`  ${pct(us)}  ${w}`);
  console.log('  by function (self):');
  for (const [f, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${f}`);
}
