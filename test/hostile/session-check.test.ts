/**
 * `session_check` (docs/PROTOCOL.md §3.3, §4.1; SECURITY.md "P2P links"), asked by parties who
 * have no business with the session, against a real `hchat server` process. PROTOCOL.md: a host
 * asks it about a session that is dialling it, and "the answer says no more than that handshake
 * would". So it MUST NOT tell anyone else whether a session is live: a session id is in every
 * certificate (every message carries its author's, every tracker entry names its session), and
 * a visitor's session lives exactly while the visitor is around. Whoever asks about a session
 * that never dialled them gets what they get for a session that does not exist.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { spawnServer } from '../processes.js';
import { RawClient } from './front-door-client.js';

/** An Ed25519 session key as PROTOCOL.md §2 wants it: the public key's 32 bytes, base64url. */
function sessionKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const pk = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64url');
  return { privateKey, pk };
}

const b64u = (n: number) => crypto.randomBytes(n).toString('base64url');

/** What an answer says, as an asker sees it: the body, or the error's code. */
const said = (f: Record<string, any>) => JSON.stringify(f.body ?? f.error?.code ?? f.t);

async function startServer() {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-sessioncheck-'));
  const srv = await spawnServer(data);
  return Number(/:(\d+)$/.exec(srv.ready.tcp!)![1]);
}

/** A registered user logged in on a connection of its own, from `localAddress`. */
async function user(port: number, name: string, localAddress = '127.0.0.1') {
  const c = await RawClient.open(port, localAddress);
  expect(
    (await c.request('register', { username: name, password: `pw-${name}` })).body,
  ).toBeTruthy();
  const key = sessionKey();
  const r = await c.request('login', { username: name, password: `pw-${name}`, publicKey: key.pk });
  expect(r.body?.username).toBe(name);
  return { c, key, sessionId: r.body.sessionId as string, cert: r.body.cert as string };
}

/**
 * A dial proof as §4.1 has the dialling peer sign it in its hello: its nonce, its session, the
 * host session it dials, the connection's channel binding.
 */
function dialProof(
  key: ReturnType<typeof sessionKey>,
  peerSession: string,
  hostSession: string,
  nonce = b64u(32),
  binding = b64u(32),
) {
  const data = JSON.stringify(['hchat/p2p-dial/1', nonce, peerSession, hostSession, binding]);
  const sig = crypto.sign(null, Buffer.from(data), key.privateKey).toString('base64url');
  return { nonce, binding, sig };
}

describe('hostile: session_check is no oracle of who is around', () => {
  it('a user who no longer shares a channel, and an anonymous visitor, learn nothing of a session that never dialled them', async () => {
    const port = await startServer();
    const victim = await user(port, 'victim');
    const channelId = uuidv7();
    expect(
      (await victim.c.request('channel_create', { id: channelId, name: 'c', allowVisitors: false }))
        .body,
    ).toBeTruthy();
    expect(
      (
        await victim.c.request('submit_info', {
          ip: '127.0.0.1',
          port: 40100,
          udpPort: 40101,
          status: 'online',
        })
      ).body,
    ).toBeTruthy();

    // eve shares the channel for a while: the tracker shows her the victim's entry, with its
    // session id (§3.5). Then she leaves: from then on the tracker shows her nothing of it.
    const eve = await user(port, 'eve', '127.0.8.1');
    expect((await eve.c.request('channel_join', { channelId })).body).toBeTruthy();
    const seen = (await eve.c.request('get_list', {})).body.peers as { sessionId: string }[];
    expect(seen.map((e) => e.sessionId)).toContain(victim.sessionId);
    expect((await eve.c.request('channel_leave', { channelId })).body).toBeTruthy();
    const after = (await eve.c.request('get_list', {})).body.peers as { username: string }[];
    expect(after.map((e) => e.username)).not.toContain('victim');

    // Anyone at all: a visitor, no password.
    const anon = await RawClient.open(port, '127.0.9.1');
    const v = await anon.request('visitor', { name: 'anon', publicKey: sessionKey().pk });
    expect(v.body?.role).toBe('visitor');

    // The victim's session, and one that does not exist, asked as PROTOCOL.md §3.3 says, and with
    // whatever an asker could make up for the proof of a dial (§4.1) that never happened.
    const unknown = b64u(16);
    const asks = (asker: { request: RawClient['request'] }, sessionId: string) =>
      Promise.all([
        asker.request('session_check', { sessionId }),
        asker.request('session_check', {
          sessionId,
          proof: dialProof(sessionKey(), sessionId, b64u(16)),
        }),
      ]);
    const answers = async (asker: RawClient) => ({
      victim: (await asks(asker, victim.sessionId)).map(said),
      unknown: (await asks(asker, unknown)).map(said),
    });
    for (const [who, asker] of [
      ['eve', eve.c],
      ['a visitor', anon],
    ] as const) {
      const live = await answers(asker);
      console.log(
        `${who} asking about a live session: ${live.victim.join(' ')}; unknown: ${live.unknown.join(' ')}`,
      );
      expect(live.victim, `${who}: a live session answers as an unknown one`).toEqual(live.unknown);
    }

    // The victim logs out: still the same answers, so nobody learnt when it left.
    expect((await victim.c.request('logout', {})).body).toBeTruthy();
    for (const asker of [eve.c, anon]) {
      const gone = await answers(asker);
      expect(gone.victim).toEqual(gone.unknown);
    }
    for (const c of [victim.c, eve.c, anon]) c.close();
  });

  it('a host learns about a session that dialled it, with the proof from its hello, and about no other', async () => {
    const port = await startServer();
    const member = await user(port, 'member');
    const host = await user(port, 'host', '127.0.8.1');
    const other = await user(port, 'other', '127.0.9.1');
    const unknown = b64u(16);
    const check = async (asker: typeof host, sessionId: string, proof: object) =>
      said(await asker.c.request('session_check', { sessionId, proof }));

    // The member's hello to the host's session: the host shows it and is answered.
    const toHost = dialProof(member.key, member.sessionId, host.sessionId);
    expect(await check(host, member.sessionId, toHost)).toBe('{"live":true}');
    const asUnknown = await check(host, unknown, dialProof(member.key, unknown, host.sessionId));
    expect(asUnknown).toBe('{"live":false}');
    // The same proof shown by another session, a proof of a dial to another host, one signed by
    // another key, or for another session: answered as an unknown session.
    expect(await check(other, member.sessionId, toHost)).toBe(asUnknown);
    const toOther = dialProof(member.key, member.sessionId, other.sessionId);
    expect(await check(host, member.sessionId, toOther)).toBe(asUnknown);
    const forged = dialProof(host.key, member.sessionId, host.sessionId);
    expect(await check(host, member.sessionId, forged)).toBe(asUnknown);
    const another = dialProof(member.key, other.sessionId, host.sessionId);
    expect(await check(host, other.sessionId, another)).toBe(asUnknown);
    // The other session is answered about with its own dial to the asker.
    const ok = dialProof(other.key, other.sessionId, host.sessionId);
    expect(await check(host, other.sessionId, ok)).toBe('{"live":true}');

    // Once the member logs out, the host learns it from the same proof.
    expect((await member.c.request('logout', {})).body).toBeTruthy();
    expect(await check(host, member.sessionId, toHost)).toBe('{"live":false}');
    for (const c of [member.c, host.c, other.c]) c.close();
  });
});
