// One lint config for the whole repository (typescript-eslint flat config).
// The purity block is the contract of DESIGN.md: protocol packages are deterministic state machines, so their
// sources may not read the clock, draw randomness, schedule timers or import Node's I/O modules.
import tseslint from 'typescript-eslint';
import purityPlugin from './rules/pure-import-graph.js';

const purityMessage =
  'protocols are pure and deterministic: time enters as tick(), randomness as the injected random()';

export const protocolPurity = {
  files: ['packages/{raft,paxos,zab}/src/**/*.ts'],
  ignores: ['**/*.test.ts', '**/*.bench.ts'],
  rules: {
    'no-restricted-properties': [
      'error',
      { object: 'Date', property: 'now', message: purityMessage },
      { object: 'performance', property: 'now', message: purityMessage },
      { object: 'Math', property: 'random', message: purityMessage },
      { object: 'process', property: 'hrtime', message: purityMessage },
      { object: 'globalThis', property: 'setTimeout', message: purityMessage },
      { object: 'globalThis', property: 'setInterval', message: purityMessage },
    ],
    'no-restricted-globals': [
      'error',
      ...['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'clearTimeout', 'clearInterval', 'clearImmediate', 'performance', 'fetch', 'process'].map(
        (name) => ({ name, message: purityMessage }),
      ),
    ],
    'no-restricted-syntax': [
      'error',
      { selector: 'NewExpression[callee.name="Date"]', message: purityMessage },
      { selector: 'AwaitExpression', message: purityMessage },
      { selector: 'FunctionDeclaration[async=true], ArrowFunctionExpression[async=true], FunctionExpression[async=true]', message: purityMessage },
    ],
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          { group: ['node:*'], message: purityMessage },
          { group: ['fs', 'fs/*', 'net', 'dgram', 'http', 'https', 'tls', 'child_process', 'timers', 'timers/*', 'worker_threads', 'crypto'], message: purityMessage },
        ],
      },
    ],
  },
};

/**
 * DESIGN r2: a protocol's whole import graph is free of Node built-ins and of the `Buffer` global, and so is
 * core's main entry, which every protocol imports. The direct-import rules above cannot see a chain
 * (raft.ts -> core -> a file that imports node:events); this rule follows it and names it.
 */
export const protocolImportGraph = {
  files: ['packages/{raft,paxos,zab}/src/**/*.ts', 'packages/core/src/index.ts'],
  ignores: ['**/*.test.ts', '**/*.bench.ts'],
  plugins: { '@consensus-kit': purityPlugin },
  rules: { '@consensus-kit/pure-import-graph': 'error' },
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.turbo/**', '**/coverage/**', '**/*.d.ts'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
      eqeqeq: ['error', 'smart'],
    },
  },
  protocolPurity,
  protocolImportGraph,
);
