import { spawn } from 'node:child_process';
import { serveUi } from '@consensus-kit/ui';
import { ClusterDir } from '../cluster-file';
import { CliError } from '../errors';
import { hint } from '../invocation';
import { createUiActions } from '../ui-actions';
import { liveSource } from '../ui-live';
import { untilStopped } from '../until-stopped';

export interface ClusterUiOptions {
  /** The cluster directory of a cluster started by `consensus-cli start`. */
  dir: string;
  /** Interface the page is served on (127.0.0.1 unless given). */
  host?: string;
  /** 0 (the default): any free port; the URL says which. */
  port?: number;
  /** Milliseconds between two polls of the nodes (the live source's default when not given). */
  intervalMs?: number;
}

/** The visualizer of a running cluster: its URL, and `close()`, which stops the server and the polling. */
export interface ClusterUi {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the visualizer (#23) for the cluster in `dir`: the nodes polled by the live source, the page's actions
 * run by `createUiActions`, both served by `serveUi` (on 127.0.0.1 unless `host` says otherwise).
 */
export async function serveClusterUi(o: ClusterUiOptions): Promise<ClusterUi> {
  // A directory without a cluster fails here, with the command's own message, not as a page showing nothing.
  new ClusterDir(o.dir).read();
  // Actions still running when the page is closed are waited for: a member being added must not be cut off
  // half-way (a node process started and not yet on record), and the page gets its answer.
  const actions = createUiActions({ dir: o.dir });
  const running = new Set<Promise<unknown>>();
  let closing = false;
  const act: typeof actions = (a) => {
    if (closing) return Promise.resolve({ ok: false, text: 'the page is being closed: no new actions' });
    const p = actions(a);
    running.add(p);
    void p.finally(() => running.delete(p));
    return p;
  };
  const source = liveSource({ dir: o.dir, act, ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}) });
  source.start();
  let server: Awaited<ReturnType<typeof serveUi>>;
  try {
    server = await serveUi({ source, ...(o.host !== undefined ? { host: o.host } : {}), port: o.port ?? 0 });
  } catch (e) {
    await source.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new CliError(`port ${o.port} on ${o.host ?? '127.0.0.1'} is already in use: pick another with --port (0: any free port)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new CliError(`cannot listen on ${o.host}: no such interface here`);
    throw e;
  }
  return {
    url: server.url,
    async close() {
      closing = true;
      if (running.size > 0) {
        console.error(`waiting for ${running.size === 1 ? 'the action' : `${running.size} actions`} from the page to finish...`);
        await Promise.allSettled([...running]);
      }
      await server.close();
      await source.close();
    },
  };
}

/** Said once the page is served on a host other machines may reach: its buttons kill nodes. */
export function exposedWarning(host: string | undefined): string | undefined {
  if (host === undefined || ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) return undefined;
  return `warning: the page is served on ${host}: anyone who can reach it there can kill, partition and reconfigure the cluster`;
}

export interface UiCommandOptions extends ClusterUiOptions {
  /** Open the page in the default browser (only when stdout is a terminal; `--no-open` turns it off). */
  open?: boolean;
  json?: boolean;
  /** Stops the server as Ctrl-C does (tests, embedding). */
  signal?: AbortSignal;
}

/** `consensus-cli ui --dir <d>`: serves the visualizer of a running cluster until Ctrl-C. */
export async function ui(o: UiCommandOptions): Promise<void> {
  const served = await serveClusterUi(o);
  const stop = untilStopped(o.signal);
  try {
    const warning = exposedWarning(o.host);
    if (warning !== undefined) console.error(warning);
    if (o.json) console.log(JSON.stringify({ url: served.url }));
    else console.log(`the cluster in ${o.dir} is shown at ${served.url} (Ctrl-C stops the page; the cluster keeps running)`);
    if (o.open !== false && !o.json && process.stdout.isTTY === true) openBrowser(served.url);
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    stop.dispose();
    await served.close();
  }
}

/** The note `start --detach --ui` prints: the page needs a process that stays, and `ui` is that command. */
export function detachedUiNote(dir: string): string {
  return `note: --ui serves the page from the foreground \`start\`; for a detached cluster run \`${hint(`ui --dir ${dir}`)}\``;
}

/** Opens `url` in the desktop's browser; a machine without one (a server, CI) just has the URL printed. */
function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd as string, args as string[], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener here: the URL is printed
  }
}
