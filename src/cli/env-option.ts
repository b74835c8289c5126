/**
 * Every flag of `hchat` has an environment variable (`HCHAT_<FLAG>`, SPEC §10), shown in
 * `--help`; the defaults and flags more than one command shares.
 */
import os from 'node:os';
import path from 'node:path';
import { Option } from 'commander';
import { parseMs } from './options.js';

/** The default data folder of a command (`~/.hchat/<what>`). */
export const defaultData = (what: string) => path.join(os.homedir(), '.hchat', what);

/** A flag read from the command line, else from the environment variable `env`. */
export function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/** ε of the hybrid logical clock: the same flag on the server and on peers. */
export function clockSkewOption(): Option {
  return opt(
    '--max-clock-skew-ms <ms>',
    'refuse messages stamped further ahead of this clock (default 60000)',
    'HCHAT_MAX_CLOCK_SKEW_MS',
  ).argParser(parseMs);
}
