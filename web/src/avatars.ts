/**
 * Who has an avatar, as this page knows it (README "Avatars"): asked of the local API in batches
 * (`GET /api/avatars?users=`) for the users shown, kept per user with its hash, and changed by
 * the event stream's `avatar` events. A picture is only ever requested for a user listed with a
 * hash, as `/api/avatars/<user>?v=<hash>`, so a new one shows at once and a user without one
 * costs no failed request. Users without one get a default drawn here: initials on a colour
 * derived from the name.
 */
import { useEffect, useState } from 'react';
import { api, type Avatar } from './api.js';
import { withKey } from './auth.js';
// A username the API accepts (src/protocol/common.ts Username); a visitor's name may not be one.
import { USERNAME } from '../../src/shared/mention-syntax.js';

/** Names per request (the API takes at most 100). */
const BATCH = 100;
/** Colours of the default avatar: classes `avatar-c0` … `avatar-c11` (avatars.css). */
const COLOURS = 12;

/** null: known to have none; absent: not asked yet (or the answer failed). */
const known = new Map<string, { hash: string; ts: number } | null>();
/** Every name this page asked about, by lower case, as shown. */
const names = new Map<string, string>();
const wanted = new Set<string>();
const asking = new Set<string>();
let timer: ReturnType<typeof setTimeout> | undefined;
const bus = new EventTarget();

const keyOf = (username: string) => username.toLowerCase();

/** The picture's address: its hash in the query, so a new one is a new address. */
export function avatarUrl(username: string, hash: string): string {
  return withKey(`/api/avatars/${encodeURIComponent(username)}?v=${hash}`);
}

/** The default avatar of a user: up to two initials, and a colour that is always the same. */
export function defaultAvatar(username: string): { initials: string; colour: number } {
  const parts = username.split(/[\s_.-]+/).filter((p) => p !== '');
  const first = (s: string | undefined) => [...(s ?? '')][0]?.toUpperCase() ?? '';
  const initials = first(parts[0]) + first(parts[1]) || '?';
  // FNV-1a over the lower-cased name's code points: cheap, and spreads similar names apart.
  let h = 0x811c9dc5;
  for (const ch of username.toLowerCase()) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return { initials, colour: h % COLOURS };
}

/** The event stream said a user's avatar changed (or this page just set its own). */
export function avatarChanged(a: Avatar): void {
  const key = keyOf(a.username);
  const had = known.get(key);
  if (had && had.hash === a.hash) return;
  if (had && had.ts > a.ts) return; // an older change arriving late
  known.set(key, { hash: a.hash, ts: a.ts });
  bus.dispatchEvent(new Event(key));
}

/**
 * Asks again about every user this page asked about: after a reconnection (answered from the
 * peer's cache while offline, and changes were missed) or a missed stretch of events.
 */
export function refreshAvatars(): void {
  for (const key of names.keys()) if (!asking.has(key)) wanted.add(key);
  schedule();
}

/** A user's avatar as known now (undefined: none, or not known yet), updated as it changes. */
export function useAvatar(username: string): { hash: string; ts: number } | undefined {
  const key = keyOf(username);
  const [now, setNow] = useState(() => known.get(key) ?? undefined);
  useEffect(() => {
    const on = () => setNow(known.get(key) ?? undefined);
    on();
    bus.addEventListener(key, on);
    if (!known.has(key)) want(username);
    return () => bus.removeEventListener(key, on);
  }, [key, username]);
  return now;
}

function want(username: string): void {
  const key = keyOf(username);
  if (!USERNAME.test(username)) {
    known.set(key, null); // a visitor's name: nobody can have set one for it
    return;
  }
  names.set(key, username);
  if (asking.has(key)) return;
  wanted.add(key);
  schedule();
}

/** Once the components of this render have all said whom they show: one request per 100 names. */
function schedule(): void {
  if (timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    const batch = [...wanted].map((key) => names.get(key) ?? key);
    wanted.clear();
    for (let i = 0; i < batch.length; i += BATCH) void ask(batch.slice(i, i + BATCH));
  }, 10);
}

async function ask(batch: string[]): Promise<void> {
  for (const n of batch) asking.add(keyOf(n));
  try {
    const got = await api.avatars(batch);
    const byKey = new Map(got.map((a) => [keyOf(a.username), a]));
    for (const n of batch) {
      const key = keyOf(n);
      const a = byKey.get(key);
      const had = known.get(key);
      if (a) avatarChanged(a);
      else if (had !== null) {
        known.set(key, null);
        if (had) bus.dispatchEvent(new Event(key));
      }
    }
  } catch {
    // Unknown for now (the peer is between states): shown as the default, asked again later.
  } finally {
    for (const n of batch) asking.delete(keyOf(n));
  }
}
