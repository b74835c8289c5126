/**
 * Resuming `GET /api/events` (README "Events": "reconnect with `?since=<id>`"), as a browser
 * does it: its EventSource reconnects to the URL it was opened at (which may carry an older
 * `since=`) with the last id it got as `Last-Event-ID`; after its peer restarted, that id is
 * from before (ids start again at 1). One real peer process, fetch as the reader.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, authHeaders, tempDir } from './testnet.js';
import { spawnHchat, spawnServer } from './processes.js';

/** The ids of the `message` events a stream opened with `query` and `headers` sends in `ms`. */
async function messageIds(
  ui: string,
  query: string,
  headers: Record<string, string>,
  ms = 800,
): Promise<number[]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), ms);
  let text = '';
  try {
    const res = await fetch(new URL(`/api/events${query}`, ui), {
      signal: ctrl.signal,
      headers: { ...authHeaders(ui), ...headers },
    });
    expect(res.status).toBe(200);
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) text += decoder.decode(chunk, { stream: true });
  } catch {
    // aborted: the stream never ends by itself
  } finally {
    clearTimeout(timer);
  }
  return [...text.matchAll(/^id: (\d+)\nevent: message\n/gm)].map((m) => Number(m[1]));
}

describe('an event stream resumed by the browser', () => {
  it('starts after Last-Event-ID over an older ?since=, and replays all kept after a restart', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const p = await spawnHchat(['peer', '--server', s.ready.tcp!, '--data', path.join(dir, 'p')]);
    const ui = p.ready.ui!;
    await api(ui, 'POST', '/api/register', { username: 'erin', password: 'erin-pass1' });
    await api(ui, 'POST', '/api/login', { username: 'erin', password: 'erin-pass1' });
    const ch = (await api(ui, 'POST', '/api/channels', { name: 'resume' })).body;
    for (let i = 1; i <= 3; i++)
      expect(
        (await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: `m${i}` })).status,
      ).toBe(201);
    const all = await messageIds(ui, '?since=0', {});
    expect(all.length).toBeGreaterThanOrEqual(3);
    const [first, second] = all;

    // The browser's reconnection: the URL's `since` is older than the header, which wins.
    const resumed = await messageIds(ui, `?since=${first! - 1}`, { 'last-event-id': `${second}` });
    expect(resumed).toEqual(all.filter((id) => id > second!));

    // An id past the last one was given by this peer before a restart: everything kept, not
    // nothing (the messages it caught up on before its page came back were lost that way).
    const fromBefore = await messageIds(ui, '', { 'last-event-id': '999999' });
    expect(fromBefore).toEqual(all);
  });

  it('after a real restart that told more than the reader had seen, the reader still gets it all', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const args = ['peer', '--server', s.ready.tcp!, '--data', path.join(dir, 'p')];
    const p = await spawnHchat(args);
    const ui = p.ready.ui!;
    await api(ui, 'POST', '/api/register', { username: 'erin', password: 'erin-pass1' });
    await api(ui, 'POST', '/api/login', { username: 'erin', password: 'erin-pass1' });
    const ch = (await api(ui, 'POST', '/api/channels', { name: 'resume' })).body;
    await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: 'before' });
    const seen = await messageIds(ui, '?since=0', {});
    const lastSeen = seen.at(-1)!;
    p.proc.kill('SIGINT');
    await p.exited;
    // The same peer again (its session resumes), telling more than the reader saw before.
    const again = await spawnHchat([...args, '--ui-port', new URL(ui).port]);
    for (let i = 1; i <= 12; i++)
      expect(
        (await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: `after ${i}` })).status,
      ).toBe(201);
    const kept = await messageIds(ui, '?since=0', {});
    expect(kept.length).toBeGreaterThanOrEqual(12);
    // The browser comes back with the id it had: every message event of this run reaches it.
    expect(await messageIds(ui, '', { 'last-event-id': `${lastSeen}` })).toEqual(kept);
    again.proc.kill('SIGINT');
  });

  it('a stream ends cleanly when its peer stops (no cut chunked response for the browser to log)', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const p = await spawnHchat(['peer', '--server', s.ready.tcp!, '--data', path.join(dir, 'p')]);
    const ui = p.ready.ui!;
    const res = await fetch(new URL('/api/events', ui), { headers: authHeaders(ui) });
    expect(res.status).toBe(200);
    const read = (async () => {
      let text = '';
      for await (const chunk of res.body!) text += Buffer.from(chunk).toString();
      return text;
    })();
    await new Promise((r) => setTimeout(r, 200));
    p.proc.kill('SIGINT');
    // A cut stream rejects ("terminated"); an ended one resolves with what it said.
    await expect(read).resolves.toContain(': hybrid chat events');
    await p.exited;
  });
});
