import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, applyMutant, optionSets, type Mutant } from '../../../scripts/mutate/catalogue';

/**
 * `pnpm mutate` (scripts/mutate) applies each mutant of its catalogue as a search/replace on one source line of
 * a protocol package. If a refactor moves or rewrites that line, the pattern no longer matches: this test fails
 * then, instead of the mutant silently turning into the unmodified code (and being reported as missed).
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('pnpm mutate catalogue', () => {
  it('every mutant applies exactly once to the current sources and changes them', () => {
    for (const m of CATALOGUE) {
      const source = readFileSync(join(ROOT, 'packages', m.protocol, 'src', m.file), 'utf8');
      const mutated = applyMutant(source, m);
      expect(mutated, m.name).not.toBe(source);
      expect(mutated.length - source.length, m.name).toBe(m.replace.length - m.find.length);
    }
  });

  it('names are unique, and both protocols have mutants, the three of issue #17 among them', () => {
    const names = CATALOGUE.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z][a-z0-9-]+$/);
    expect(CATALOGUE.filter((m) => m.protocol === 'raft').length).toBeGreaterThanOrEqual(8);
    expect(CATALOGUE.filter((m) => m.protocol === 'paxos').length).toBeGreaterThanOrEqual(4);
    for (const name of ['raft-figure8-commit-old-term', 'raft-readindex-no-heartbeat-quorum', 'raft-snapshot-drops-matching-suffix']) {
      expect(names).toContain(name);
    }
  });

  it('a pattern that is missing or occurs twice fails loudly', () => {
    const m: Mutant = { name: 'x', protocol: 'raft', file: 'f.ts', find: 'a === b', replace: 'a !== b', bug: '' };
    expect(applyMutant('if (a === b) go();', m)).toBe('if (a !== b) go();');
    expect(() => applyMutant('if (a == b) go();', m)).toThrow(/pattern not found in packages\/raft\/src\/f\.ts/);
    expect(() => applyMutant('a === b; a === b', m)).toThrow(/more than once/);
  });

  it('controls run once per distinct set of protocol options', () => {
    const sets = [...optionSets('raft').keys()];
    expect(sets).toContain('{}');
    expect(new Set(sets).size).toBe(sets.length);
  });
});
