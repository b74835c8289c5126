/**
 * The tracker's visibility rule (src/server/tracker.ts, docs/PROTOCOL.md §3.5) as properties over
 * random memberships, entries and viewers: the list is the rule applied to every entry, a
 * visitor sees only hosts and streamers of the channels it views, a user only co-members, and
 * nobody sees a channel in `hosts`/`live` that it cannot read.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  TrackerList,
  entryKey,
  eventFor,
  viewOf,
  type Memberships,
  type Viewer,
} from '../src/server/tracker.js';
import type { TrackerEntry } from '../src/protocol/common.js';

const USERS = ['ann', 'ben', 'cat', 'dan', 'eve'];
const CHANNELS = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'];

function memberships(pairs: Array<[number, number]>): Memberships {
  const byUser = new Map<string, Set<string>>();
  const byChannel = new Map<string, Set<string>>();
  for (const [u, c] of pairs) {
    const user = USERS[u]!;
    const ch = CHANNELS[c]!;
    if (!byUser.has(user)) byUser.set(user, new Set());
    byUser.get(user)!.add(ch);
    if (!byChannel.has(ch)) byChannel.set(ch, new Set());
    byChannel.get(ch)!.add(user);
  }
  return {
    channelsOf: (u) => byUser.get(u.toLowerCase()) ?? new Set(),
    membersOf: (c) => byChannel.get(c) ?? new Set(),
  };
}

const arbEntry = fc
  .record({
    u: fc.nat(USERS.length - 1),
    visitor: fc.boolean(),
    port: fc.integer({ min: 1, max: 40 }),
    online: fc.boolean(),
    hosts: fc.subarray(CHANNELS),
    live: fc.subarray(CHANNELS, { maxLength: 2 }),
  })
  .map((r): TrackerEntry => ({
    username: USERS[r.u]!,
    role: r.visitor ? 'visitor' : 'user',
    ip: '127.0.0.1',
    port: r.port,
    udpPort: r.port,
    sessionId: `s${r.port}`.padEnd(22, 'x'),
    status: r.online ? 'online' : 'invisible',
    hosts: r.visitor ? [] : r.hosts,
    live: r.visitor ? [] : r.live.map((c) => ({ streamId: `${c}-stream`, channelId: c })),
  }));

const arbViewer = fc
  .record({
    u: fc.nat(USERS.length - 1),
    visitor: fc.boolean(),
    views: fc.subarray(CHANNELS),
  })
  .map((r): Viewer => ({
    username: USERS[r.u]!,
    role: r.visitor ? 'visitor' : 'user',
    views: new Set(r.visitor ? r.views : []),
  }));

const arbWorld = fc.record({
  pairs: fc.array(fc.tuple(fc.nat(USERS.length - 1), fc.nat(CHANNELS.length - 1)), {
    maxLength: 15,
  }),
  entries: fc.array(arbEntry, { maxLength: 25 }),
  viewer: arbViewer,
});

describe('tracker visibility rule', () => {
  it('get_list is the rule applied to every entry, in key order', () => {
    fc.assert(
      fc.property(arbWorld, ({ pairs, entries, viewer }) => {
        const m = memberships(pairs);
        const list = new TrackerList();
        const latest = new Map<string, TrackerEntry>();
        for (const e of entries) {
          list.upsert(e, 'g');
          latest.set(entryKey(e), e);
        }
        const expected = [...latest.keys()]
          .sort()
          .map((k) => viewOf(viewer, latest.get(k)!, m))
          .filter((e) => e !== undefined);
        expect(list.visibleTo(viewer, m)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('shows others only online, relevant entries, cut to what the viewer can read', () => {
    fc.assert(
      fc.property(arbWorld, ({ pairs, entries, viewer }) => {
        const m = memberships(pairs);
        const mine = viewer.role === 'user' ? m.channelsOf(viewer.username) : new Set<string>();
        for (const e of entries) {
          const v = viewOf(viewer, e, m);
          const own = e.role === viewer.role && e.username === viewer.username;
          if (own) {
            expect(v).toBe(e);
            continue;
          }
          if (!v) continue;
          expect(e.status).toBe('online');
          const readable = (c: string) => mine.has(c) || viewer.views.has(c);
          expect(v.hosts.every(readable)).toBe(true);
          expect(v.live.every((l) => readable(l.channelId))).toBe(true);
          if (viewer.role === 'visitor') {
            // A visitor sees no mere member: only hosts and streamers of channels it views.
            expect(v.hosts.length + v.live.length).toBeGreaterThan(0);
          } else {
            const theirs = m.channelsOf(e.username);
            const shares = e.role === 'user' && [...mine].some((c) => theirs.has(c));
            expect(shares || v.hosts.length + v.live.length > 0).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('tells a viewer of a change exactly when its view of the entry changed', () => {
    fc.assert(
      fc.property(arbWorld, arbEntry, ({ pairs, entries, viewer }, next) => {
        const m = memberships(pairs);
        for (const before of entries) {
          const after = { ...next, username: before.username, role: before.role };
          const was = viewOf(viewer, before, m);
          const is = viewOf(viewer, after, m);
          const ev = eventFor(viewer, { before, after }, m);
          if (!was && !is) expect(ev).toBeUndefined();
          if (is && JSON.stringify(is) !== JSON.stringify(was))
            expect(ev).toEqual({ ev: 'peer_joined', entry: is });
          if (was && !is) expect(ev).toEqual({ ev: 'peer_left', entry: was });
          expect(eventFor(viewer, { before }, m)).toEqual(
            was ? { ev: 'peer_left', entry: was } : undefined,
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  it('caps entries per account and per address group, not counting a replaced one', () => {
    const list = new TrackerList();
    const caps = { entriesPerAccount: 2, entriesPerAddress: 3 };
    const e = (u: string, port: number): TrackerEntry => ({
      username: u,
      role: 'user',
      ip: '127.0.0.1',
      port,
      udpPort: port,
      sessionId: 'x'.repeat(22),
      status: 'online',
      hosts: [],
      live: [],
    });
    list.upsert(e('ann', 1), 'g');
    list.upsert(e('ann', 2), 'g');
    expect(list.overCap(e('ann', 3), 'g', caps)).toBe('account');
    expect(list.overCap(e('ann', 2), 'g', caps)).toBeUndefined();
    expect(list.overCap(e('ann', 3), 'g', caps, entryKey(e('ann', 2)))).toBeUndefined();
    list.upsert(e('ben', 1), 'g');
    expect(list.overCap(e('cat', 1), 'g', caps)).toBe('address');
    expect(list.overCap(e('cat', 1), 'h', caps)).toBeUndefined();
    list.remove(entryKey(e('ben', 1)));
    expect(list.overCap(e('cat', 1), 'g', caps)).toBeUndefined();
  });
});
