// SPEC §9: one line per connection, opened and closed. A server that stops (SIGTERM: a drain,
// then its close; SIGINT: its close at once) ended the links still open without a `close`
// record: they were failed, and their sockets' close came after the log was shut. Real
// `bin/hchat` processes on 127.0.0.1; the log is read from the server's data folder.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { parseRecord } from '../../src/shared/connlog.js';
import { killAll, registerLogin, serverHello, startPeer, startServer, type Proc } from './lib.js';
import { waitFor } from '../testnet.js';

afterAll(killAll);

/** The records of a data folder's connections.log. */
function records(data: string): Record<string, string>[] {
  return fs
    .readFileSync(path.join(data, 'connections.log'), 'latin1')
    .split('\n')
    .filter(Boolean)
    .map(parseRecord);
}

/** Sends `signal` to `p` and waits (bounded) for it to exit. */
async function stopWith(p: Proc, signal: NodeJS.Signals): Promise<number | null> {
  const exited = new Promise<number | null>((r) => p.child.once('exit', (code) => r(code)));
  p.child.kill(signal);
  return Promise.race([
    exited,
    new Promise<number | null>((_, reject) =>
      setTimeout(() => reject(new Error(`no exit after ${signal}`)), 30_000),
    ),
  ]);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: every link the server had open gets its close record before it exits`, async () => {
    const srv = await startServer(['--drain-ms', '500']);
    // A real peer, logged in; two sessions that stay through the drain (they do not move); a
    // connection that never logged in.
    const peer = await startPeer(srv);
    await peer.api('POST', '/api/register', { username: 'carol', password: 'pw-carol' });
    expect(
      (await peer.api('POST', '/api/login', { username: 'carol', password: 'pw-carol' })).status,
    ).toBe(200);
    const alice = await registerLogin(srv, 'alice');
    const bob = await registerLogin(srv, 'bob');
    const { c: stranger } = await serverHello(srv);
    const sessions = ['alice', 'bob', 'carol'];
    await waitFor(() => {
      const auth = records(srv.data).filter((r) => r.ev === 'auth');
      return sessions.every((u) => auth.some((r) => r.peer?.startsWith(`peer:${u}@`)));
    });

    expect(await stopWith(srv, signal)).toBe(0);
    await Promise.all([alice.c.closeP, bob.c.closeP, stranger.closeP]);

    const log = records(srv.data);
    const end = log.findIndex((r) => r.ev === 'shutdown');
    expect(end).toBe(log.length - 1);
    const opened = log.filter((r) => r.ev === 'open').map((r) => r.conn);
    expect(opened.length).toBeGreaterThanOrEqual(4);
    const closes = log.slice(0, end).filter((r) => r.ev === 'close');
    // One close per link, each once.
    expect(closes.map((r) => r.conn).sort()).toEqual([...opened].sort());
    // The sessions that were still there when the server closed are named, with the reason.
    for (const u of ['alice', 'bob']) {
      expect(closes.find((r) => r.peer?.startsWith(`peer:${u}@`))).toMatchObject({
        reason: 'E_SHUTTING_DOWN',
      });
    }
    expect(closes.some((r) => r.peer?.startsWith('peer:carol@'))).toBe(true);
    expect(closes.find((r) => r.conn === opened[opened.length - 1])).toMatchObject({
      peer: expect.stringMatching(/^peer:-@127\.0\.0\.1:\d+$/),
      reason: 'E_SHUTTING_DOWN',
    });
  }, 60_000);
}
