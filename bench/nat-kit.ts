/**
 * What the parts of the NAT bench share (bench/nat.ts: links; bench/nat-stream.ts: a livestream):
 * the rig they run on (the server and alice in the namespaces of test/netns-core.ts, and the
 * members who joined her channel), waiting, the server's connection log, and the statistics.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseRecord } from '../src/shared/connlog.js';
import type { HchatProcess } from '../test/hchat-spawn.js';
import type { HomePeer, OwnedNatWorld } from '../test/netns-core.js';

export const KINDS = ['direct', 'punched', 'relayed'] as const;
export type Kind = (typeof KINDS)[number];

export interface Member {
  kind: Kind;
  peer: HomePeer;
  ns: string;
}

/** The world, its server, alice (who hosts `ch`, at home 1) and the members of `ch`. */
export interface Rig {
  world: OwnedNatWorld;
  server: HchatProcess;
  alice: HomePeer;
  members: Member[];
  ch: string;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
/** Nearest rank: of 20 samples, p99 is the largest. */
export const pct = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
/** A log record's time, whole milliseconds since 1970. */
export const time = (r: Record<string, string>) => Date.parse(r.t!);

/** Waits for `check` to give a value, polling; throws after `ms`. */
export async function until<T>(
  check: () => T | undefined | Promise<T | undefined>,
  ms: number,
  what: string,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`nat bench: timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Records of the server's connection log (the relay's `relay_close` counts its bytes). */
export function serverLog(rig: Rig): Array<Record<string, string>> {
  return fs
    .readFileSync(path.join(rig.world.dir, 'server', 'connections.log'), 'utf8')
    .trim()
    .split('\n')
    .map(parseRecord);
}
