/**
 * The world of the second new-user walk (test/outsider/newuser2-*.test.ts): a real `bin/hchat
 * server` and one `bin/hchat peer` per user, each user registered and logged in on their own peer
 * through the local API, as README's "Running it yourself" starts them. Pages are opened with
 * test/browser.ts (Debian's Chromium). One world per file, stopped after it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { launchHchat, type Launched } from '../hchat-spawn.js';
import { api } from '../testnet.js';

export interface World {
  /** Each user's `ui=` URL, token included. */
  ui: Record<string, string>;
  /** The server as `--server` takes it, pinned: `host:port#fingerprint`. */
  pin: string;
  /** The folder the world's data folders are in. */
  dir: string;
}

/**
 * Starts a server and a peer per name in `beforeAll`, and stops them all in `afterAll`.
 * `devices` adds peers where an account of `names` logs in again (its second device): key the
 * peer's name in `ui`, value the account's.
 */
export function world(
  names: readonly string[],
  devices: Readonly<Record<string, string>> = {},
): World {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-newuser2-'));
  const running: Launched[] = [];
  const w: World = { ui: {}, pin: '', dir };
  async function start(args: string[]): Promise<Record<string, string>> {
    // A loaded 2-core machine (other test runs beside this one) may take more than the default
    // 15 s to print a ready line.
    const l = launchHchat(args, {}, 40_000);
    running.push(l);
    return (await l.ready).ready;
  }
  beforeAll(async () => {
    const server = await start(['server', '--port', '0', '--http-port', '0', '--data', `${dir}/s`]);
    const pin = `${server.tcp}#${server.fingerprint}`;
    w.pin = pin;
    await Promise.all(
      names.map(async (n) => {
        const ui = (await start(['peer', '--server', pin, '--data', `${dir}/${n}`])).ui!;
        w.ui[n] = ui;
        const password = `${n}-pass1`;
        const r = await api(ui, 'POST', '/api/register', { username: n, password });
        if (r.status !== 201) throw new Error(`register ${n}: ${JSON.stringify(r.body)}`);
        const l = await api(ui, 'POST', '/api/login', { username: n, password });
        if (l.status !== 200) throw new Error(`login ${n}: ${JSON.stringify(l.body)}`);
      }),
    );
    await Promise.all(
      Object.entries(devices).map(async ([key, n]) => {
        const ui = (await start(['peer', '--server', pin, '--data', `${dir}/${key}`])).ui!;
        w.ui[key] = ui;
        const l = await api(ui, 'POST', '/api/login', { username: n, password: `${n}-pass1` });
        if (l.status !== 200) throw new Error(`login ${n} on ${key}: ${JSON.stringify(l.body)}`);
      }),
    );
  }, 80_000);
  afterAll(async () => {
    for (const l of running) {
      if (l.proc.exitCode === null && l.proc.signalCode === null) {
        l.proc.kill('SIGKILL');
        await l.exited;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return w;
}

/** `owner`'s new channel `name` (visitors allowed), joined by `members`; its id. */
export async function channel(
  w: World,
  owner: string,
  name: string,
  members: string[] = [],
): Promise<string> {
  const ch = await api(w.ui[owner]!, 'POST', '/api/channels', { name, allowVisitors: true });
  if (ch.status !== 201) throw new Error(`create ${name}: ${JSON.stringify(ch.body)}`);
  for (const m of members) {
    const j = await api(w.ui[m]!, 'POST', `/api/channels/${ch.body.id}/join`);
    if (j.status !== 200) throw new Error(`join ${name}: ${JSON.stringify(j.body)}`);
  }
  return ch.body.id as string;
}

export async function post(w: World, user: string, channelId: string, text: string) {
  const r = await api(w.ui[user]!, 'POST', `/api/channels/${channelId}/messages`, { text });
  if (r.status !== 201) throw new Error(`post: ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

/** Opens a channel from Home's directory ("# name by owner"), as README says. */
export async function openFromHome(page: Page, name: string, owner: string): Promise<void> {
  await page.getByRole('button', { name: /^Home/ }).first().click();
  await page.getByRole('button', { name: `# ${name} by ${owner}` }).click();
  await page.getByRole('heading', { name: `#${name}` }).waitFor();
}

/** Polls `check` until it is true or `ms` passed; the last answer. */
export async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether a click at the middle of `sel` lands on it, else what is drawn over it. */
export async function clickable(sel: Locator): Promise<string> {
  const box = await sel.boundingBox();
  if (!box) return 'not laid out';
  return sel.evaluate(
    (el, [x, y]) => {
      const hit = document.elementFromPoint(x!, y!);
      if (hit && (hit === el || el.contains(hit))) return 'yes';
      return `covered by <${hit?.tagName.toLowerCase()}> ${(hit?.textContent ?? '').slice(0, 60)}`;
    },
    [box.x + box.width / 2, box.y + box.height / 2],
  );
}

/** Saves a screenshot where the finding's report points (test-artifacts/, not docs/). */
export async function evidence(page: Page, name: string): Promise<void> {
  const dir = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `newuser2-${name}.png`) });
}
