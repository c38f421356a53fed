import { ConfigError } from './errors';
import type { OptionSpec, OptionSpecs } from './types';
import { preview } from './validate';

/** The typed object a set of option specs describes (every option optional: absent means the default). */
export type OptionsOf<S extends OptionSpecs> = {
  -readonly [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : S[K]['type'] extends 'string' ? string : number;
};

/**
 * Checks untyped protocol options (a node's config file, CLI flags, the simulator's options) against the
 * protocol's specs. An unknown key is refused with the closest known name ("did you mean"), a value of the
 * wrong type or out of bounds with what was expected: a misspelt `prevote: false` must never be ignored in
 * silence. `undefined` values are dropped, so callers can pass optional fields straight through.
 */
export function parseOptions<S extends OptionSpecs>(protocol: string, specs: S, raw: unknown): OptionsOf<S> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${protocol} options must be an object, got ${preview(raw)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (value === undefined) continue;
    const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
    if (spec === undefined) {
      const known = Object.keys(specs);
      const near = closest(key, known);
      throw new ConfigError(
        `unknown ${protocol} option ${JSON.stringify(key)}` +
          (near !== undefined ? ` (did you mean ${JSON.stringify(near)}?)` : '') +
          (known.length > 0 ? `; ${protocol} takes: ${known.join(', ')}` : `; ${protocol} takes no options`),
      );
    }
    out[key] = checkValue(protocol, key, spec, value);
  }
  return out as OptionsOf<S>;
}

function checkValue(protocol: string, key: string, spec: OptionSpec, value: unknown): unknown {
  const bad = (expected: string) => new ConfigError(`${protocol} option ${key} must be ${expected}, got ${preview(value)}`);
  switch (spec.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'string':
      if (typeof value !== 'string') throw bad('a string');
      if (spec.values !== undefined && !spec.values.includes(value)) throw bad(`one of ${spec.values.join(', ')}`);
      return value;
    case 'integer':
    case 'number': {
      const isInt = spec.type === 'integer';
      if (typeof value !== 'number' || !Number.isFinite(value) || (isInt && !Number.isSafeInteger(value))) {
        throw bad(isInt ? 'an integer' : 'a finite number');
      }
      const what = isInt ? 'an integer' : 'a number';
      if (spec.min !== undefined && value < spec.min) throw bad(`${what} >= ${spec.min}`);
      if (spec.max !== undefined && value > spec.max) throw bad(`${what} <= ${spec.max}`);
      return value;
    }
  }
}

/** The known name within edit distance 2 of `name` (case-insensitive), if exactly one is closest. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] as number;
}
