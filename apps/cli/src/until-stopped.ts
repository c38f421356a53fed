/**
 * For a command that runs until told to stop (`watch`, `lease keepalive`): an AbortSignal that fires on
 * Ctrl-C, SIGTERM or SIGHUP, or when `signal` (a caller's, in tests and embedding) aborts. `dispose()` removes
 * the process listeners again; call it in a `finally`.
 */
export function untilStopped(signal?: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  const onStop = () => stop.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onStop);
  if (signal?.aborted) stop.abort();
  else signal?.addEventListener('abort', onStop, { once: true });
  return {
    signal: stop.signal,
    dispose() {
      for (const sig of signals) process.off(sig, onStop);
      signal?.removeEventListener('abort', onStop);
    },
  };
}
