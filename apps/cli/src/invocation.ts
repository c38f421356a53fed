/**
 * The command a user types to run this CLI, for the hints it prints ("Try: ... put hello world"). Installed, it
 * is `consensus-cli`; in a clone it runs through the root package's `cli` script (`pnpm start` starts
 * a cluster from the sources, `pnpm cli ...` drives it, as the README's tour shows), and pnpm may itself run through npx. A hint
 * naming `consensus-cli` there would send the user to a command their shell does not have.
 */
export function invocation(env: NodeJS.ProcessEnv = process.env): string {
  const script = env.npm_lifecycle_event;
  // `pnpm start` (the root package's start script) and `pnpm cli` are the two scripts that run it.
  if (script !== 'cli' && script !== 'start') return 'consensus-cli';
  const execPath = env.npm_execpath ?? '';
  if (/pnpm/.test(execPath)) return /[\\/]_npx[\\/]/.test(execPath) ? 'npx --yes pnpm@10 cli' : 'pnpm cli';
  if (/npm-cli|[\\/]npm[\\/]/.test(execPath)) return 'npm run cli --';
  if (/yarn/.test(execPath)) return 'yarn cli';
  return 'consensus-cli';
}

/** `consensus-cli <args>` as the user would type it here. */
export function hint(args: string, env: NodeJS.ProcessEnv = process.env): string {
  return `${invocation(env)} ${args}`;
}

/**
 * Error messages name follow-up commands as `` `consensus-cli ...` `` (in backquotes): shown, those name the
 * command as the user runs it.
 */
export function localizeHints(message: string, env: NodeJS.ProcessEnv = process.env): string {
  const name = invocation(env);
  return name === 'consensus-cli' ? message : message.replace(/`consensus-cli /g, `\`${name} `);
}
