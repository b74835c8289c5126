/**
 * `hchat demo`: a server and three peers on temporary data (demo.ts), stopped by a signal or when
 * the process that started it ends.
 */
import type { Command } from 'commander';
import { STOP_SIGNALS, onSignals, stopWithParent } from './signals.js';

/** Adds `hchat demo` to `program`. */
export function addDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'a server and three peers (alice, bob, carol) on temporary data, ready to chat; stops (and deletes its data) on a signal or when the process that started it ends',
    )
    .action(async () => {
      // A signal (or the parent's end) while the demo starts stops it as soon as it has started.
      const parent = process.ppid;
      let early = false;
      const earlyStop = () => (early = true);
      for (const s of STOP_SIGNALS) process.on(s, earlyStop);
      const { runDemo } = await import('./demo.js');
      const stop = await runDemo((line) => console.log(line));
      for (const s of STOP_SIGNALS) process.off(s, earlyStop);
      const trigger = onSignals(stop);
      stopWithParent(trigger, parent);
      if (early) trigger();
    });
}
