/**
 * How a command's process stops: on a signal (Ctrl-C, a supervisor, a closing terminal), once, or
 * when the process that started it ends.
 */

/** Signals that stop a process: Ctrl-C, a supervisor, a closing terminal. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs `stop` on SIGINT, SIGTERM (a supervisor) or SIGHUP (a closing terminal), then exits;
 * `onTerm`, when given, runs instead on SIGTERM. Returns the stop, for other reasons to end.
 */
export function onSignals(stop: () => Promise<void>, onTerm?: () => Promise<void>): () => void {
  let stopping = false;
  const handler = (signal?: NodeJS.Signals) => {
    // A second signal while stopping (a drain, a store that hangs) ends the process at once.
    if (stopping) {
      if (signal) process.exit(1);
      return;
    }
    stopping = true;
    (signal === 'SIGTERM' && onTerm ? onTerm : stop)().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('hchat: error while stopping:', err);
        process.exit(1);
      },
    );
  };
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return () => handler();
}

/**
 * Calls `stop` when the process that started this one ends (it is then adopted by init or a
 * subreaper): `npm start` killed by a signal it does not pass on leaves no demo behind.
 */
export function stopWithParent(stop: () => void, parent: number): void {
  if (process.ppid !== parent) stop();
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 500).unref();
}
