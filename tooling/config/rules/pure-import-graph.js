// The purity of a protocol is a property of its whole import graph, not of its own files (DESIGN r2): a pure
// raft.ts that imports a core file that imports node:events pulls Node into every "pure" protocol. This rule
// follows, from the linted file, every runtime import that stays inside the repository (relative paths, and
// `@consensus-kit/*` packages resolved to their sources through the `@consensus-kit/source` export condition)
// and reports any Node built-in (`node:*`, or a bare `fs`, `events`, `crypto`, ...) or any use of the `Buffer`
// global found anywhere in that graph, naming the chain of files that reaches it. Third-party packages are
// not followed. Type-only imports (`import type`, `export type`) are erased and not followed.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import tseslint from 'typescript-eslint';

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

/** Whether a module specifier names a Node built-in: `node:*`, `fs`, `fs/promises`, ... */
export function isNodeBuiltin(specifier) {
  if (specifier.startsWith('node:')) return true;
  return BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0]);
}

/** path -> { mtimeMs, imports: { specifier, line }[], buffer: line | undefined } */
const parsed = new Map();

function scan(file) {
  const mtimeMs = statSync(file).mtimeMs;
  const hit = parsed.get(file);
  if (hit !== undefined && hit.mtimeMs === mtimeMs) return hit;
  const code = readFileSync(file, 'utf8');
  const { ast, scopeManager } = tseslint.parser.parseForESLint(code, { loc: true, range: true, sourceType: 'module', ecmaVersion: 'latest', filePath: file });
  const result = { mtimeMs, ...collect(ast, scopeManager) };
  parsed.set(file, result);
  return result;
}

/** The runtime imports of a parsed file and the line of its first use of the `Buffer` global, if any. */
function collect(ast, scopeManager) {
  const imports = [];
  const add = (source, node, typeOnly) => {
    if (!typeOnly && source !== null && source !== undefined && typeof source.value === 'string') imports.push({ specifier: source.value, line: node.loc.start.line });
  };
  for (const node of ast.body) {
    if (node.type === 'ImportDeclaration') add(node.source, node, node.importKind === 'type');
    else if (node.type === 'ExportNamedDeclaration' || node.type === 'ExportAllDeclaration') add(node.source, node, node.exportKind === 'type');
  }
  // Dynamic imports with a literal specifier.
  const visit = (node) => {
    if (node === null || typeof node !== 'object') return;
    if (node.type === 'ImportExpression' && node.source.type === 'Literal') add(node.source, node, false);
    for (const key of Object.keys(node)) {
      if (key === 'parent' || key === 'loc' || key === 'range') continue;
      const v = node[key];
      if (Array.isArray(v)) v.forEach(visit);
      else if (v !== null && typeof v === 'object' && typeof v.type === 'string') visit(v);
    }
  };
  visit(ast);
  const bufferRef = scopeManager.globalScope?.through.find((ref) => ref.identifier.name === 'Buffer');
  return { imports, buffer: bufferRef?.identifier.loc.start.line };
}

function findRoot(from) {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

const workspaces = new Map();

/** Package name -> directory, for every workspace package under packages/, apps/ and tooling/. */
function workspacePackages(root) {
  let map = workspaces.get(root);
  if (map !== undefined) return map;
  map = new Map();
  for (const group of ['packages', 'apps', 'tooling']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const pj = join(base, name, 'package.json');
      if (!existsSync(pj)) continue;
      try {
        const pkg = JSON.parse(readFileSync(pj, 'utf8'));
        if (typeof pkg.name === 'string') map.set(pkg.name, { dir: join(base, name), exports: pkg.exports });
      } catch {
        // an unreadable package.json is some other tool's problem
      }
    }
  }
  workspaces.set(root, map);
  return map;
}

function resolveFile(base) {
  const candidates = [base, `${base}.ts`, `${base}.tsx`, `${base}.mts`, join(base, 'index.ts')];
  if (/\.[mc]?js$/.test(base)) candidates.unshift(base.replace(/\.([mc]?)js$/, '.$1ts'));
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** Where a runtime import leads inside the repository: a file, `{ builtin }`, or undefined (third-party, unknown). */
function resolveImport(specifier, fromFile, root) {
  if (isNodeBuiltin(specifier)) return { builtin: specifier };
  if (specifier.startsWith('.') || specifier.startsWith('/')) return resolveFile(resolve(dirname(fromFile), specifier));
  if (!specifier.startsWith('@consensus-kit/')) return undefined;
  const [scope, name, ...rest] = specifier.split('/');
  const pkg = workspacePackages(root).get(`${scope}/${name}`);
  if (pkg === undefined) return undefined;
  const subpath = rest.length === 0 ? '.' : `./${rest.join('/')}`;
  const entry = typeof pkg.exports === 'object' && pkg.exports !== null ? pkg.exports[subpath] : undefined;
  const target = typeof entry === 'string' ? entry : entry?.['@consensus-kit/source'];
  if (typeof target !== 'string') return undefined;
  return resolveFile(join(pkg.dir, target));
}

/**
 * The first impurity reachable from `file` (breadth-first, so the chain is a shortest one), as
 * `{ chain: [file, ...], what }`, or undefined when the graph is pure.
 */
export function findImpurity(file, root = findRoot(file), start = undefined) {
  if (root === undefined) return undefined;
  const parent = new Map([[file, undefined]]);
  const queue = [file];
  const chainTo = (f) => {
    const chain = [];
    for (let at = f; at !== undefined; at = parent.get(at)) chain.unshift(at);
    return chain.map((p) => relative(root, p));
  };
  while (queue.length > 0) {
    const current = queue.shift();
    let info = current === file ? start : undefined;
    try {
      info ??= scan(current);
    } catch {
      continue; // unparsable: the TypeScript build reports it
    }
    if (info.buffer !== undefined) return { chain: chainTo(current), what: `the Buffer global (line ${info.buffer})` };
    for (const { specifier, line } of info.imports) {
      const target = resolveImport(specifier, current, root);
      if (target === undefined) continue;
      if (typeof target === 'object') return { chain: chainTo(current), what: `Node built-in '${target.builtin}' (line ${line})` };
      if (parent.has(target)) continue;
      parent.set(target, current);
      queue.push(target);
    }
  }
  return undefined;
}

export const pureImportGraph = {
  meta: {
    type: 'problem',
    docs: { description: 'a protocol\'s whole import graph stays free of Node built-ins and the Buffer global (DESIGN r2)' },
    schema: [],
    messages: {
      impure: 'protocols are pure: {{chain}} reaches {{what}}; protocols import only core\'s main entry and pure files',
    },
  },
  create(context) {
    return {
      'Program:exit'(node) {
        const file = resolve(context.physicalFilename ?? context.filename);
        // The linted file is taken as ESLint parsed it (it may not be on disk yet: editors, lintText); the files
        // it reaches are read from disk.
        const found = findImpurity(file, findRoot(file), collect(context.sourceCode.ast, context.sourceCode.scopeManager));
        if (found !== undefined) context.report({ node, messageId: 'impure', data: { chain: found.chain.join(' -> '), what: found.what } });
      },
    };
  },
};

export default { meta: { name: '@consensus-kit/purity' }, rules: { 'pure-import-graph': pureImportGraph } };
