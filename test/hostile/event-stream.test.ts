/**
 * Event-stream readers that never read (issue 11, finding 16), played by local processes with the
 * token: the peer's memory must not grow with the traffic they do not take, a reader that falls
 * behind is closed with a reason, the number of streams is capped, and a normal reader keeps
 * getting every event.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, collectEvents, createTestnet, signIn, tempDir, waitFor } from '../testnet.js';
import { spawnHchat, spawnServer } from '../processes.js';
import { LOCAL_API_LIMITS } from '../../src/shared/limits.js';

/** Resident memory of process `pid`, in bytes (Linux). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Opens `/api/events` over a raw socket; resolves with the socket once the header is back. */
function openStream(
  uiUrl: string,
  read = true,
): Promise<{ socket: net.Socket; head: string; text: () => string }> {
  const u = new URL(uiUrl);
  const token = u.searchParams.get('token');
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), '127.0.0.1');
    let text = '';
    socket.on('error', () => {});
    socket.once('connect', () =>
      socket.write(
        `GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${u.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      ),
    );
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      // A stalled reader: from here on, it never reads a byte.
      if (!read) socket.pause();
      else socket.on('data', (more: Buffer) => (text += more.toString('latin1')));
      resolve({ socket, head: text.slice(0, end), text: () => text });
    };
    socket.on('data', onData);
    setTimeout(() => reject(new Error('no answer to GET /api/events')), 10_000).unref();
  });
}

describe('event-stream readers that never read', () => {
  it('keep the peer’s memory bounded and do not starve a reader', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const p = await spawnHchat(['peer', '--server', s.ready.tcp!, '--data', path.join(dir, 'p')]);
    const ui = p.ready.ui!;
    await api(ui, 'POST', '/api/register', { username: 'alice', password: 'alice-pw' });
    await api(ui, 'POST', '/api/login', { username: 'alice', password: 'alice-pw' });
    const ch = (await api(ui, 'POST', '/api/channels', { name: 'flood' })).body;
    const text = 'x'.repeat(4000);
    const post = async (n: number) => {
      // Eight at a time: enough to be quick, not a flood of the API itself.
      for (let i = 0; i < n; i += 8)
        await Promise.all(
          Array.from({ length: Math.min(8, n - i) }, () =>
            api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text }),
          ),
        );
    };
    // Warm up: the window of kept events fills, caches and the heap reach their working size.
    await post(400);
    const before = rss(p.proc.pid!);

    const stalled = await Promise.all(Array.from({ length: 20 }, () => openStream(ui, false)));
    const reader = collectEvents(ui);
    await reader.ready;
    await post(1000);
    const last = (
      await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: 'the last one' })
    ).body;
    await waitFor(
      () => reader.events.some((e) => e.event === 'message' && e.data.message?.id === last.id),
      20_000,
      'the normal reader to get the last message',
    );
    const grown = rss(p.proc.pid!) - before;
    console.log(`peer RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB with 20 stalled readers`);
    // 1,000 posts of 4,000 characters are ~8 MB of events per stream, ~160 MB for 20 (before
    // the fix: +166 MiB for 1,200 posts); now each stalled stream holds at most 64 KiB.
    expect(grown).toBeLessThan(64 * 2 ** 20);

    for (const r of stalled) r.socket.destroy();
  }, 120_000);

  it('closes a reader that fell behind the window, with the reason as its last event', async () => {
    const net0 = await createTestnet({ peers: 1 });
    const p = net0.peers[0]!;
    const stalled = await openStream(p.uiUrl, false);
    const reader = collectEvents(p.uiUrl);
    await reader.ready;
    // Many big events, more than the kernel's socket buffers and the window together hold.
    // The normal reader shares this process's event loop with the emitter, so the emitter waits
    // for it to stay within half the window (500 of 1,000 events): a reader that reads keeps up,
    // while the stalled one, which reads nothing, falls behind the window all the same.
    const big = 'y'.repeat(20_000);
    const got = () => reader.events.filter((e) => e.data?.filler).length;
    for (let i = 0; i < 3000; i++) {
      p.node.events.emit('status', { filler: big, i });
      if (i % 100 !== 99) continue;
      await new Promise((r) => setImmediate(r));
      await waitFor(
        () => got() >= i + 1 - 500,
        20_000,
        () => `the normal reader to stay within 500 events (has ${got()} of ${i + 1})`,
      );
    }
    // Reading now, the stalled reader finds its stream ended, with the reason last.
    const tail = await new Promise<string>((resolve, reject) => {
      let t = '';
      stalled.socket.on('data', (d: Buffer) => (t = (t + d.toString('latin1')).slice(-4000)));
      stalled.socket.once('close', () => resolve(t));
      stalled.socket.resume();
      setTimeout(
        () => reject(new Error(`the stalled stream was not closed: ${t.slice(-300)}`)),
        20_000,
      ).unref();
    });
    // Meanwhile the normal reader got every event, in order.
    await waitFor(
      () => got() === 3000,
      30_000,
      () => `the normal reader to get all 3000 (has ${got()})`,
    );
    const ids = reader.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(tail).toMatch(/event: error\ndata: \{"code":"E_SLOW_CONSUMER"/);
  });

  it(`caps event streams at ${LOCAL_API_LIMITS.maxEventStreams}; the next one gets 503`, async () => {
    const net0 = await createTestnet({ peers: 1 });
    const p = net0.peers[0]!;
    await signIn(p, 'alice');
    const open = [];
    for (let i = 0; i < LOCAL_API_LIMITS.maxEventStreams; i++) open.push(await openStream(p.uiUrl));
    for (const o of open) expect(o.head).toMatch(/^HTTP\/1\.1 200/);
    const extra = await openStream(p.uiUrl);
    expect(extra.head).toMatch(/^HTTP\/1\.1 503/);
    await waitFor(() => extra.text().includes('E_TOO_MANY_STREAMS'), 5000, 'the error body');
    // Closing one makes room again.
    open.pop()!.socket.destroy();
    await waitFor(
      async () => {
        const again = await openStream(p.uiUrl);
        again.socket.destroy();
        return again.head.startsWith('HTTP/1.1 200');
      },
      5000,
      'room for a new stream',
    );
    for (const o of open) o.socket.destroy();
  });
});
