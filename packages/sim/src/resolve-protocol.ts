import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ProtocolModule } from '@consensus-kit/core';
import { UnknownProtocolError } from './errors';
import type { InvariantSource } from './invariant';
import { createToyModule, toy, toyInvariants } from './toy/index';

export interface ResolvedProtocol {
  /** The name to show and to put in the replay command. */
  name: string;
  module: ProtocolModule;
  invariants?: InvariantSource;
}

/**
 * Built-in protocols: the correct toy Raft, and the toy with one known bug each (to see what a failing run
 * looks like, and to test the simulator itself).
 */
export const BUILTIN_PROTOCOLS: Record<string, () => ResolvedProtocol> = {
  toy: () => ({ name: 'toy', module: toy, invariants: toyInvariants }),
  'toy-commit-one-ack': () => ({ name: 'toy-commit-one-ack', module: createToyModule({ commitOnOneAck: true }, 'toy-commit-one-ack'), invariants: toyInvariants }),
  'toy-forget-vote': () => ({ name: 'toy-forget-vote', module: createToyModule({ forgetVoteOnRestart: true }, 'toy-forget-vote'), invariants: toyInvariants }),
  'toy-local-reads': () => ({ name: 'toy-local-reads', module: createToyModule({ localReads: true }, 'toy-local-reads'), invariants: toyInvariants }),
};

export interface ResolveOptions {
  /** A path to a user's module (ESM, or TypeScript under tsx) exporting a ProtocolModule. */
  module?: string;
  /** Where relative paths and packages are resolved from. Default `process.cwd()`. */
  cwd?: string;
}

const NAME = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * Finds a protocol by name: a built-in (`toy`...), or the package `@consensus-kit/<name>` with its named
 * export `<name>` (a ProtocolModule) and optional `invariants`; or, with `module`, the file at that path, using
 * the export named `name` when given, else `default`, else its only ProtocolModule export. Throws
 * `UnknownProtocolError` when nothing usable is found.
 */
export async function resolveProtocol(name: string | undefined, options: ResolveOptions = {}): Promise<ResolvedProtocol> {
  const cwd = options.cwd ?? process.cwd();
  if (options.module !== undefined) {
    const path = isAbsolute(options.module) ? options.module : resolve(cwd, options.module);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    } catch (cause) {
      throw new UnknownProtocolError(options.module, `cannot load module ${path}: ${(cause as Error).message}`, { cause });
    }
    const candidates = name !== undefined ? [name, camel(name)] : ['default'];
    let found = candidates.map((k) => mod[k]).find(isProtocolModule);
    if (found === undefined && name === undefined) {
      const all = Object.values(mod).filter(isProtocolModule);
      if (all.length === 1) found = all[0];
    }
    if (found === undefined) {
      throw new UnknownProtocolError(name ?? options.module, `${path} has no ProtocolModule export ${name !== undefined ? `named ${name}` : '(default, or a single one)'}`);
    }
    return { name: name ?? found.name, module: found, ...invariantsOf(mod) };
  }
  if (name === undefined) throw new UnknownProtocolError('', 'give --protocol <name> or --module <path>');
  const builtin = BUILTIN_PROTOCOLS[name];
  if (builtin !== undefined) return builtin();
  if (!NAME.test(name)) throw new UnknownProtocolError(name, 'a protocol name is lower-case letters, digits and dashes');
  const spec = `@consensus-kit/${name}`;
  const mod = await importPackage(spec, cwd);
  if (mod === undefined) {
    throw new UnknownProtocolError(name, `package ${spec} is not installed where the simulator or ${cwd} can see it (built-ins: ${Object.keys(BUILTIN_PROTOCOLS).join(', ')}; or pass --module <path>)`);
  }
  const found = [mod[name], mod[camel(name)]].find(isProtocolModule);
  if (found === undefined) throw new UnknownProtocolError(name, `${spec} has no named export "${camel(name)}" that is a ProtocolModule ({ name, options, parseOptions, create })`);
  return { name, module: found, ...invariantsOf(mod) };
}

async function importPackage(spec: string, cwd: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    if (!isNotFound(e)) throw new UnknownProtocolError(spec, `loading it failed: ${(e as Error).message}`, { cause: e });
  }
  // Not visible from this package: try from the working directory (the workspace root, a user's project),
  // and from where the package manager was started (`pnpm sim` runs scripts in the package's directory).
  let path: string | undefined;
  for (const dir of [cwd, process.env.INIT_CWD].filter((d): d is string => d !== undefined && d !== '')) {
    try {
      path = createRequire(join(dir, 'package.json')).resolve(spec);
      break;
    } catch {
      // try the next place
    }
  }
  if (path === undefined) return undefined;
  try {
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new UnknownProtocolError(spec, `loading ${path} failed: ${(e as Error).message}`, { cause: e });
  }
}

function isNotFound(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
}

function invariantsOf(mod: Record<string, unknown>): { invariants?: InvariantSource } {
  const inv = mod.invariants;
  if (typeof inv === 'function' || Array.isArray(inv)) return { invariants: inv as InvariantSource };
  return {};
}

function isProtocolModule(v: unknown): v is ProtocolModule {
  const m = v as Partial<ProtocolModule> | null;
  return typeof m === 'object' && m !== null && typeof m.create === 'function' && typeof m.parseOptions === 'function' && typeof m.name === 'string';
}

function camel(s: string): string {
  return s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
