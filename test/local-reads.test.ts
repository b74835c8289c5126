/**
 * What one account reads of a peer's own copy through the local API (src/peer/local-reads.ts,
 * docs/SECURITY.md "Local processes"): several accounts use one peer in turn, and a visitor reads
 * a channel only while it allows visitors (PROTOCOL.md §2.2 _Channel items at each replica_).
 */
import { describe, expect, it } from 'vitest';
import { authHeaders, createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { attach, download } from './file-kit.js';
import { toStored, type LocalMessage } from '../src/store/peer-store.js';
import { apiMessages } from '../src/peer/message-view.js';

const texts = (r: { body: any }): string[] =>
  (r.body?.messages ?? []).map((m: any) => String(m.text));
const found = (r: { body: any }): string[] =>
  (r.body?.results ?? []).map((x: any) => String(x.message?.text ?? ''));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything `GET /api/events?since=0` replays within `ms`, as text. */
async function replayed(p: TestPeer, ms = 500): Promise<string> {
  const ctrl = new AbortController();
  const res = await fetch(new URL('/api/events?since=0', p.uiUrl), {
    signal: ctrl.signal,
    headers: authHeaders(p.uiUrl),
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const stop = setTimeout(() => ctrl.abort(), ms);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // aborted: the window was read
  } finally {
    clearTimeout(stop);
  }
  return text;
}

describe('a peer’s local API reads by account', () => {
  it('a visitor’s peer forgets a channel that stops allowing visitors and refuses its pushes; a member on the same peer keeps everything', async () => {
    const net = await createTestnet({ peers: 2 });
    const [owner, shared] = net.peers as [TestPeer, TestPeer];
    await signIn(owner, 'alice');
    await signIn(shared, 'carol');
    const ch = (await owner.call('POST', '/api/channels', { name: 'open', allowVisitors: true }))
      .body.id as string;
    const first = await owner.call('POST', `/api/channels/${ch}/messages`, {
      text: 'condor first',
    });
    expect((await shared.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await waitFor(
      async () => texts(await shared.call('GET', `/api/channels/${ch}/messages`)).length === 1,
    );
    expect((await shared.call('POST', '/api/logout')).status).toBe(204);

    expect((await shared.call('POST', '/api/visitor', { name: 'Guest' })).status).toBe(200);
    expect((await shared.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    expect(texts(await shared.call('GET', `/api/channels/${ch}/messages`))).toEqual([
      'condor first',
    ]);
    expect(
      (await owner.call('PATCH', `/api/channels/${ch}`, { allowVisitors: false })).status,
    ).toBe(200);
    // The channel item reaches the visitor's peer, which drops the channel from its list.
    await waitFor(
      async () => !JSON.stringify((await shared.call('GET', '/api/channels')).body).includes(ch),
      10_000,
      'the channel leaves the visitor’s list',
    );
    const later = await owner.call('POST', `/api/channels/${ch}/messages`, {
      text: 'condor members only',
    });
    expect(later.status).toBe(201);
    // Whatever the server and the host still push, and a push that arrives regardless (given
    // here as the server's event, numbered as the server numbered it): refused, not stored.
    const held = await waitFor(() => {
      const m = owner.node.store.getMessage(later.body.id);
      return m?.seq != null ? m : undefined;
    });
    const pushed = { ...toStored(held), seq: held.seq! };
    // As the server pushes it: an `event` of the node's server link.
    shared.node.link.emit('event', 'message', { message: pushed });
    await sleep(1000);
    expect(shared.node.store.getMessage(later.body.id)).toBeUndefined();
    const page = await shared.call('GET', `/api/channels/${ch}/messages`);
    const around = await shared.call('GET', `/api/channels/${ch}/messages?around=${first.body.id}`);
    const search = await shared.call('GET', '/api/search?q=condor');
    // The server tells a visitor there is no such channel, once it no longer allows visitors.
    expect({ page: page.status, around: around.status, search: found(search) }).toEqual({
      page: 404,
      around: 404,
      search: [],
    });

    // carol, a member, logs in again on the same peer: her channel and its messages are there,
    // and what the visitor's peer refused comes from a replica as usual.
    expect((await shared.call('POST', '/api/logout')).status).toBe(204);
    expect(
      (await shared.call('POST', '/api/login', { username: 'carol', password: 'carol-pw' })).status,
    ).toBe(200);
    expect(JSON.stringify((await shared.call('GET', '/api/channels')).body)).toContain(ch);
    const back = await waitFor(
      async () => {
        const r = await shared.call('GET', `/api/channels/${ch}/messages`);
        return texts(r).length === 2 ? r : undefined;
      },
      10_000,
      'carol reads both messages',
    );
    expect(texts(back)).toEqual(['condor first', 'condor members only']);
    const s = await waitFor(
      async () => {
        const r = await shared.call('GET', '/api/search?q=condor');
        return found(r).length === 2 ? r : undefined;
      },
      10_000,
      'carol finds both',
    );
    expect(found(s).sort()).toEqual(['condor first', 'condor members only']);
  });

  it('the next account on a peer gets nothing of the last one’s channels: around, replayed events, another channel’s file', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const diary = (await p.call('POST', '/api/channels', { name: 'diary', allowVisitors: false }))
      .body.id as string;
    const data = Buffer.from('kangaroo file bytes '.repeat(100));
    const up = await attach(p, diary, data, 'diary.txt', 'text/plain');
    expect(up.status).toBe(201);
    const m = await p.call('POST', `/api/channels/${diary}/messages`, {
      text: 'kangaroo diary entry',
      files: [up.body.id],
    });
    expect(m.status).toBe(201);
    expect((await download(p, up.body.url)).data.equals(data)).toBe(true);
    expect((await p.call('POST', '/api/logout')).status).toBe(204);
    await signIn(p, 'bob');
    const mine = (await p.call('POST', '/api/channels', { name: 'mine', allowVisitors: false }))
      .body.id as string;

    const around = await p.call('GET', `/api/channels/${diary}/messages?around=${m.body.id}`);
    expect(around.status).toBe(403);
    expect(around.body.error.code).toBe('E_NOT_MEMBER');
    // An action naming the message says no more than the page: not even that it is held here.
    const react = await p.call(
      'PUT',
      `/api/channels/${diary}/messages/${m.body.id}/reactions/${encodeURIComponent('👍')}`,
    );
    expect(react.status).toBe(403);
    expect(await replayed(p)).not.toContain('kangaroo');
    // The file's bytes are here for alice's channel: bob's channel names no such file.
    const other = await download(p, `/api/channels/${mine}/files/${up.body.id}`);
    expect(other.status).toBe(404);
    expect(other.data.toString()).not.toContain('kangaroo');
    expect(
      (await p.call('GET', `/api/channels/${mine}/files/${up.body.id}/status`)).body.state,
    ).toBe('missing');
  });

  it('a reply shows a preview of a message of its own channel only', () => {
    const msg = (id: string, channelId: string, text: string, replyTo?: string): LocalMessage => ({
      id,
      channelId,
      author: 'alice',
      ts: 1,
      lc: 0,
      text,
      ...(replyTo ? { replyTo } : {}),
      sig: '',
      cert: '',
      state: 'delivered',
      seq: 1,
      hostSeq: null,
      error: null,
    });
    const secret = msg('00000000-0000-7000-8000-000000000001', 'q', 'private words');
    const same = msg('00000000-0000-7000-8000-000000000002', 'p', 'public words');
    const byId = new Map([secret, same].map((m) => [m.id, m]));
    const store = {
      getMessage: (id: string) => byId.get(id),
      related: () => [],
      channelOwner: () => 'alice',
    };
    const shown = apiMessages(
      store,
      [
        msg('00000000-0000-7000-8000-000000000003', 'p', 'a', secret.id),
        msg('00000000-0000-7000-8000-000000000004', 'p', 'b', same.id),
      ],
      'bob',
      { certClaims: () => undefined },
    );
    expect(shown.map((m) => m.replyTo)).toEqual([
      { id: secret.id },
      { id: same.id, author: 'alice', text: 'public words' },
    ]);
  });
});
