/**
 * Direct messages end to end (issue 15) with real `bin/hchat` processes: two users with two
 * devices each. Every message reaches every other device — straight from the sender's device
 * when the recipient device is online and may be reached, through the server's mailbox when
 * not — exactly once, across SIGKILLs of a peer and of the server. Afterwards the server's
 * files and a heap snapshot of its memory hold no text that was sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, waitFor } from './testnet.js';
import { startSwarm, type Swarm } from './swarm.js';

const DEVICES = ['alice', 'alice@2', 'bob', 'bob@2'] as const;
type Device = (typeof DEVICES)[number];

/** The texts a device shows in a conversation (messages only), in its order. */
async function texts(s: Swarm, d: Device, id: string): Promise<string[]> {
  const r = await s.call(d, 'GET', `/api/dms/${id}/messages?limit=500`);
  if (r.status !== 200) throw new Error(`${d}: ${JSON.stringify(r.body)}`);
  return (r.body.messages as any[]).filter((m) => m.kind === 'message').map((m) => m.text);
}

/** Waits until `d` can start a DM (its device is published) and answers the conversation. */
async function startDm(s: Swarm, d: Device, members: string[]): Promise<any> {
  return waitFor(
    async () => {
      const r = await s.call(d, 'POST', '/api/dms', { members });
      return r.status === 201 || r.status === 200 ? r.body : undefined;
    },
    15_000,
    `${d} to start a DM with ${members.join(', ')}`,
  );
}

/** Where each device's incoming envelopes came from, from its connection log. */
function paths(s: Swarm): { p2p: number; server: number } {
  let p2p = 0;
  let server = 0;
  for (const d of DEVICES)
    for (const r of s.log(d))
      if (r.ev === 'dm_in') {
        if (r.peer === 'server') server++;
        else if (r.peer?.startsWith('peer:')) p2p++;
      }
  return { p2p, server };
}

/** Every file under `dir`, whole. */
function filesUnder(dir: string): Array<{ file: string; bytes: Buffer }> {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((e) => {
    if (!e.isFile()) return [];
    const file = path.join(e.parentPath, e.name);
    return [{ file, bytes: fs.readFileSync(file) }];
  });
}

describe('direct messages', () => {
  it('two users with two devices each: every device gets every message exactly once, P2P when it can and through the server when not, across SIGKILLs; the server holds no plaintext', async () => {
    const dumps = tempDir('hchat-heap-');
    const s = await startSwarm([...DEVICES], {
      serverEnv: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dumps}` },
    });
    try {
      const dm = await startDm(s, 'alice', ['bob']);
      expect(dm.members).toEqual(['alice', 'bob']);
      const sent: string[] = [];
      const send = async (d: Device, text: string, expectState?: string) => {
        const r = await s.call(d, 'POST', `/api/dms/${dm.id}/messages`, { text });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        if (expectState) expect(r.body.state).toBe(expectState);
        sent.push(text);
        return r.body.id as string;
      };
      const everywhere = async (what: string) => {
        for (const d of DEVICES) {
          let last: string[] = [];
          await waitFor(
            async () => {
              last = await texts(s, d, dm.id);
              return sent.every((x) => last.filter((y) => y === x).length === 1);
            },
            20_000,
            () => `${d} to show ${what}: ${JSON.stringify(last)}`,
          );
        }
      };

      // Neither shares a channel with the other, and bob never looked alice up: the server's
      // mailbox carries alice's first message; bob's reply finds alice's devices directly.
      await send('alice', 'alpha tangerine 7fq2');
      await everywhere('the first message');
      await send('bob', 'bravo quince 9xk4');
      await send('alice@2', 'charlie mulberry 3pz8');
      await send('bob@2', 'delta persimmon 5wd1');
      await everywhere('four messages');
      const early = paths(s);
      expect(early.server, 'the first message went through the mailbox').toBeGreaterThan(0);
      expect(early.p2p, 'later ones went peer to peer').toBeGreaterThan(0);

      // A device that is away gets it from its mailbox when it comes back.
      await s.kill('bob@2');
      await send('alice', 'echo kumquat 2hv6');
      await waitFor(async () => (await texts(s, 'bob', dm.id)).includes('echo kumquat 2hv6'));
      await s.restart('bob@2');
      await everywhere('what bob@2 missed');

      // The server is killed: a message waits pending, and goes out when it is back.
      s.server.proc.kill('SIGKILL');
      await s.server.exited;
      const pendingId = await send('alice@2', 'foxtrot loquat 8mn3', 'pending');
      await s.restartServer();
      await everywhere('what was written while the server was down');
      await waitFor(async () => {
        const r = await s.call('alice@2', 'GET', `/api/dms/${dm.id}/messages`);
        return r.body.messages.find((m: any) => m.id === pendingId)?.state === 'delivered';
      });

      // The sender is killed while its messages are in flight: whatever it accepted arrives
      // once, after it restarts.
      const inFlight = ['golf damson 4rt9', 'hotel sloe 6yb2', 'india yuzu 1qe5'].map((text) =>
        s
          .call('bob', 'POST', `/api/dms/${dm.id}/messages`, { text })
          .then((r) => (r.status === 201 ? text : undefined))
          .catch(() => undefined),
      );
      await new Promise((r) => setTimeout(r, 15));
      await s.kill('bob');
      for (const t of await Promise.all(inFlight)) if (t) sent.push(t);
      await s.restart('bob');
      await everywhere('what bob accepted before he was killed');

      // Exactly once everywhere, and nothing nobody wrote.
      for (const d of DEVICES) {
        const t = await texts(s, d, dm.id);
        expect(new Set(t).size, `${d} shows each message once`).toBe(t.length);
        const attempted = new Set([
          ...sent,
          'golf damson 4rt9',
          'hotel sloe 6yb2',
          'india yuzu 1qe5',
        ]);
        expect(t.every((x) => attempted.has(x))).toBe(true);
      }
      const final = paths(s);
      console.log(`DM delivery paths: ${final.p2p} P2P, ${final.server} through the server`);

      // The server's files and memory hold no text that was sent (but do hold what it saw).
      const sdata = path.join(s.dir, 'server');
      const files = filesUnder(sdata);
      expect(files.some((f) => f.bytes.includes('bob'))).toBe(true);
      for (const text of sent)
        for (const f of files) expect(f.bytes.includes(text), `${text} in ${f.file}`).toBe(false);
      s.server.proc.kill('SIGUSR2');
      const snapshot = await waitFor(
        () => {
          const f = fs.readdirSync(dumps).find((n) => n.endsWith('.heapsnapshot'));
          if (!f) return undefined;
          const file = path.join(dumps, f);
          const a = fs.statSync(file).size;
          return a > 0 ? file : undefined;
        },
        30_000,
        'a heap snapshot of the server',
      );
      // Written in one go; wait until its size stops changing.
      let size = -1;
      await waitFor(async () => {
        const now = fs.statSync(snapshot).size;
        const same = now === size;
        size = now;
        await new Promise((r) => setTimeout(r, 300));
        return same;
      }, 30_000);
      const heap = fs.readFileSync(snapshot);
      const envelope = s.log('alice').find((r) => r.ev === 'dm_out' && r.peer === 'server');
      expect(envelope, 'alice handed something to the server').toBeDefined();
      expect(heap.includes('dm_fetch'), 'the snapshot holds the server strings').toBe(true);
      for (const text of sent) expect(heap.includes(text), `${text} in the heap`).toBe(false);
      console.log(
        `plaintext scan: ${sent.length} texts, ${files.length} server files, heap ${heap.length} bytes: none found`,
      );
    } finally {
      await s.close();
      fs.rmSync(dumps, { recursive: true, force: true });
    }
  }, 180_000);
});
