/**
 * A peer's P2P port against strangers (issue 11, findings 13 and 19): before the handshake has
 * proved who is there, frames are capped small and a deadline runs; and an invisible user's port
 * is closed, so nobody can tell it is there.
 */
import crypto from 'node:crypto';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createTestnet, rawHostLink, rawSession, signIn, waitFor } from '../testnet.js';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/common.js';
import { dialTranscript, signTranscript } from '../../src/shared/handshake.js';
import { channelBinding } from '../../src/shared/tls.js';

/** Writes `bytes` to a port; the frames that came back and whether/when it closed. */
function exchange(
  port: number,
  bytes: Buffer[] | ((s: tls.TLSSocket) => Buffer[]),
  ms = 8000,
): Promise<{ frames: Record<string, unknown>[]; closedAfterMs?: number; error?: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    const d = new FrameDecoder();
    const frames: Record<string, unknown>[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ frames });
    }, ms);
    s.on('data', (b) => {
      try {
        frames.push(...d.push(b));
      } catch {
        /* ignore */
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ frames, error: e.code });
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ frames, closedAfterMs: Date.now() - t0 });
    });
    s.on('secureConnect', () =>
      (typeof bytes === 'function' ? bytes(s) : bytes).forEach((b) => s.write(b)),
    );
  });
}

describe("a peer's P2P port before the handshake (finding 13)", () => {
  it('caps frames at 16 KiB and closes a connection that never completes the handshake', async () => {
    const tn = await createTestnet({ peers: 1 });
    const alice = tn.peers[0]!;
    await signIn(alice, 'alice');
    const port = Number(alice.p2p.split(':')[1]);
    // A 1 MiB frame announced before anyone proved anything: refused at its header.
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1024 * 1024);
    const big = await exchange(port, [header, Buffer.alloc(1000)]);
    expect(big.frames).toEqual([
      { t: 'error', code: 'E_FRAME_TOO_LARGE', message: expect.any(String) },
    ]);
    // Silence: the deadline closes it within about 5 s.
    const silent = await exchange(port, [], 9000);
    expect(silent.frames[0]).toMatchObject({ t: 'error', code: 'E_TIMEOUT' });
    expect(silent.closedAfterMs).toBeLessThan(8000);
    // A hello, then nothing: the auth step has the same deadline.
    const raw = await tn.rawLink();
    await raw.request('register', { username: 'eve', password: 'eve-pw-1' });
    const eve = await rawSession(raw, { username: 'eve', password: 'eve-pw-1' });
    const hostSession = alice.node.session!.sessionId;
    const hello = (s: tls.TLSSocket) => {
      const nonce = crypto.randomBytes(32).toString('base64url');
      const dial = dialTranscript({
        peerNonce: nonce,
        peerSession: eve.sessionId,
        hostSession,
        binding: channelBinding(s),
      });
      const f = { t: 'hello', v: PROTOCOL_VERSION, role: 'peer', cert: eve.cert, nonce };
      return [encodeFrame({ ...f, dial: signTranscript(eve.keys, dial) })];
    };
    const half = await exchange(port, hello, 9000);
    expect(half.frames.map((f) => f.t)).toEqual(['hello', 'error']);
    expect(half.frames[1]).toMatchObject({ code: 'E_TIMEOUT' });
  });
});

describe('an invisible user is unobservable on the P2P port (finding 19)', () => {
  it('closes the port while invisible and opens it again when online', async () => {
    const tn = await createTestnet({ peers: 1 });
    const alice = tn.peers[0]!;
    await signIn(alice, 'alice');
    const general = await alice.call('POST', '/api/channels', {
      name: 'general',
      allowVisitors: true,
    });
    const raw = await tn.rawLink();
    await raw.request('register', { username: 'eve', password: 'eve-pw-1' });
    const eve = await rawSession(raw, { username: 'eve', password: 'eve-pw-1' });
    await raw.request('channel_join', { channelId: general.body.id }); // a co-member sees alice
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    const port = entry.port;
    await alice.call('PUT', '/api/status', { status: 'invisible' });
    // Nothing answers there: the connection is refused, as for a port nobody uses.
    expect((await exchange(port, [], 2000)).error).toBe('ECONNREFUSED');
    // ...while alice works normally.
    expect((await alice.call('GET', '/api/channels')).status).toBe(200);
    await alice.call('PUT', '/api/status', { status: 'online' });
    const back = await waitFor(async () =>
      (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice'),
    );
    const link = rawHostLink(back, eve);
    await link.start();
    expect(link.connected).toBe(true);
  });
});
