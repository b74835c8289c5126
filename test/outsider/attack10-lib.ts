/**
 * Attack 10 helpers (DM edits and deletions, PROTOCOL.md §10.4), written from the documents:
 * a hostile member that seals any payload it likes (msg, edit, delete) for chosen devices and
 * leaves it in their mailboxes, what a peer's local API shows, and a scan of a peer's stored rows.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { registerLogin, sleep, type startPeer } from './lib.js';
import { seal, sessionWith, withDevice, type Session } from './dm-lib.js';

export type Peer = Awaited<ReturnType<typeof startPeer>>;
export interface Target {
  username: string;
  deviceId: string;
}

/** A §10.4 payload of any kind, fields as given (valid or not). */
export function dmPayload(p: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ id: crypto.randomUUID(), ts: Date.now(), ...p }), 'utf8');
}

/** A registered user with a raw device that seals whatever it wants for chosen devices. */
export async function hostileMember(srv: { host: string; port: number }, name: string) {
  const u = await withDevice(await registerLogin(srv, name), 40);
  const sessions = new Map<string, Session>();
  return {
    ...u,
    /** Seals `p` for each target device (one session per device) and mails it (`dm_send`). */
    async send(targets: Target[], p: Record<string, unknown> | Buffer) {
      const pt = Buffer.isBuffer(p) ? p : dmPayload(p);
      const envelopes = [];
      for (const t of targets) {
        let s = sessions.get(t.deviceId);
        if (!s) {
          for (let i = 0; ; i++) {
            try {
              s = await sessionWith(u, t.username, t.deviceId);
              break;
            } catch (e) {
              if (i > 20) throw e;
              await sleep(500); // dm_bundles: 1 a second sustained
            }
          }
          sessions.set(t.deviceId, s);
        }
        envelopes.push({ id: crypto.randomUUID(), to: t, body: seal(s, pt) });
      }
      const r = await u.c.req('dm_send', { envelopes });
      const bad = (r.body?.results ?? [r]).filter((x: any) => !x.ok);
      if (bad.length) throw new Error('dm_send: ' + JSON.stringify(r));
    },
  };
}
export type Hostile = Awaited<ReturnType<typeof hostileMember>>;

/** Polls `f` until truthy, or throws after `ms` naming `what`. */
export async function waitFor<T>(
  f: () => Promise<T | undefined | false | null>,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}

/** The messages (not notices) a peer shows in a conversation, oldest first. */
export async function shown(p: Peer, conv: string): Promise<any[]> {
  const r = await p.api('GET', `/api/dms/${conv}/messages?limit=500`);
  return ((r.body?.messages ?? []) as any[]).filter((m) => m.kind === 'message');
}

/** The one message `id` of `author` a peer shows in `conv` (undefined when none). */
export async function shownOne(p: Peer, conv: string, id: string, author: string) {
  const all = (await shown(p, conv)).filter((m) => m.id === id && m.author === author);
  if (all.length > 1) throw new Error(`${all.length} messages ${id} of ${author}`);
  return all[0];
}

/** Everything a peer's local API says about a conversation, as one JSON string. */
export async function everythingShown(p: Peer, conv: string): Promise<string> {
  const list = await p.api('GET', '/api/dms');
  const one = await p.api('GET', `/api/dms/${conv}`);
  const msgs = await p.api('GET', `/api/dms/${conv}/messages?limit=500`);
  return JSON.stringify([list.body, one.body, msgs.body]);
}

const Database: any = createRequire(import.meta.url)('better-sqlite3');

/**
 * The rows of every SQLite database in a process's data folder (read through SQLite, so free
 * pages are not looked at) that hold `needle`, as "file/table" names.
 */
export function rowsHolding(data: string, needle: string): string[] {
  const found: string[] = [];
  const bytes = Buffer.from(needle, 'utf8');
  for (const f of fs.readdirSync(data)) {
    if (!f.endsWith('.db') || f === 'lock.db') continue; // lock.db holds only the process's lock
    let db: any;
    try {
      db = new Database(path.join(data, f), { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 1000');
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((r: any) => r.name as string);
      for (const t of tables) {
        let rows: any[];
        try {
          rows = db
            .prepare(`SELECT * FROM "${t.replace(/"/g, '""')}"`)
            .raw()
            .all();
        } catch {
          continue;
        }
        const hit = rows.some((row) =>
          row.some((v: unknown) =>
            typeof v === 'string'
              ? v.includes(needle)
              : Buffer.isBuffer(v)
                ? v.includes(bytes)
                : false,
          ),
        );
        if (hit) found.push(`${f}/${t}`);
      }
    } catch {
      // a database being created or locked: nothing to say about it
    } finally {
      db?.close();
    }
  }
  return found;
}

/** Opens a peer's event stream now; `stop()` ends it and answers what came. */
export function eventsOf(p: Peer) {
  const ac = new AbortController();
  const out: { event: string; data: any }[] = [];
  const done = (async () => {
    try {
      const r = await fetch(p.base + '/api/events', {
        headers: { authorization: 'Bearer ' + p.token },
        signal: ac.signal,
      });
      const reader = r.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString('utf8');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data) out.push({ event: ev, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events: out,
    async stop() {
      ac.abort();
      await done;
      return out;
    },
  };
}

/** Waits until every peer shows `author`'s message `id` in `conv` and it passes `ok`. */
export async function seenBy(
  peers: Peer[],
  conv: string,
  id: string,
  author: string,
  ok: (m: any) => boolean,
  ms = 15_000,
) {
  await Promise.all(
    peers.map((p) =>
      waitFor(
        async () => {
          const m = await shownOne(p, conv, id, author);
          return m && ok(m);
        },
        ms,
        `${author}'s ${id} in ${conv} at ${p.data}`,
      ).catch(async (e) => {
        throw new Error(
          `${e.message}: shows ${JSON.stringify(await shownOne(p, conv, id, author))}`,
        );
      }),
    ),
  );
}
