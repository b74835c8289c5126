/**
 * Upgrading to protocol 4 loses nothing stored: messages a server backed up under protocol 3
 * (version-1 ids and signatures, PROTOCOL.md §8) still verify, so a member who joins after the
 * upgrade reads them; a forged one in the old form is still refused.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { mallorysChannel } from './hostile/kit.js';
import { legacyMessageId } from '../src/shared/message-id.js';

describe('messages stored before protocol 4', () => {
  it('verify as they were signed, and a member joining later reads them', async () => {
    const net = await createTestnet({ peers: 1 });
    const bob = net.peers[0] as TestPeer;
    await signIn(bob, 'bob');
    // The channel's owner has no peer online: bob reads it from the server's backup.
    const { mallory, ch } = await mallorysChannel(net, bob, 'old-times');
    const old = (text: string, ts: number) => {
      const fields = { channelId: ch, author: 'mallory', ts, lc: 0, text };
      const id = legacyMessageId(fields);
      const bytes = JSON.stringify(['hchat/message/1', id, ch, 'mallory', ts, 0, text]);
      const sig = crypto
        .sign(null, Buffer.from(bytes), mallory.keys.privateKey)
        .toString('base64url');
      return { id, channelId: ch, ts, lc: 0, text, sig, cert: mallory.cert };
    };
    const genuine = old('written under protocol 3', Date.now() - 60_000);
    const forged = { ...old('also old', Date.now() - 50_000), text: 'altered since' };
    // As the old server stored them (no check on the way into the store).
    const stored = await net.server.store.insertMessages([
      { message: genuine, author: 'mallory' },
      { message: forged, author: 'mallory' },
    ]);
    expect(stored.every((r) => !(r instanceof Error))).toBe(true);

    const texts = async () =>
      ((await bob.call('GET', `/api/channels/${ch}/messages`)).body.messages as any[]).map(
        (m) => m.text,
      );
    await waitFor(
      async () => (await texts()).includes('written under protocol 3'),
      10_000,
      'bob reads the old message',
    );
    expect(await texts()).toEqual(['written under protocol 3']);
  });
});
