/**
 * Writes test/golden/keys.json and test/golden/frames.json: the reference frames of protocol
 * version 4 (docs/PROTOCOL.md §1), with real, valid signatures.
 *
 *   npx tsx test/golden/generate.ts
 *
 * Everything is derived from fixed seeds, and Ed25519 signatures are deterministic, so running it
 * again writes the same bytes. The keys are for tests only: every one of them is public here.
 * - the golden server key signs the certificates and tokens below; test/golden-live.test.ts
 *   installs it as a real server's `server-key.pem`, so that the real server and a real peer
 *   check the golden frames' signatures with it;
 * - alice's and bob's session keys are what their golden `login` requests announce; carol's is
 *   the golden host's (on the P2P link the live test's host is a real peer, with its own key).
 *
 * Each frame has `link` (`server` or `p2p`) and, where the live test cannot use the golden value,
 * `fresh`: the members (dotted paths) that must be fresh on a real connection. In a request they
 * are replaced before sending (the value and why are in golden-live.test.ts); in an answer they
 * are checked against the op's schema instead of compared.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import { encodeFrame } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/common.js';
import { bodyDigest, messageId, type ItemBody } from '../../src/shared/message-id.js';
import type { ItemKind } from '../../src/protocol/common.js';
import { signMessage, loadSessionKeys, type SessionKeys } from '../../src/shared/signing.js';
import { signClaims } from '../../src/shared/tokens.js';
import { dialTranscript, transcript, signTranscript } from '../../src/shared/handshake.js';

/** The clock of the golden world: 2025-11-26T09:40:00Z. */
export const T0 = 1764150000000;
const DAY = 24 * 3600 * 1000;

const seed = (label: string) =>
  crypto.createHash('sha256').update(`hchat golden: ${label}`).digest();
/** PKCS#8 DER of the Ed25519 key whose 32-byte seed is `s`. */
const pkcs8 = (s: Buffer) =>
  Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), s]);
const b64url = (b: Buffer) => b.toString('base64url');

const serverPrivate = crypto.createPrivateKey({
  key: pkcs8(seed('server key')),
  format: 'der',
  type: 'pkcs8',
});
const serverSpki = crypto
  .createPublicKey(serverPrivate)
  .export({ type: 'spki', format: 'der' })
  .toString('base64');

interface Who {
  username: string;
  keys: SessionKeys;
  pkcs8: string;
  sessionId: string;
  cert: string;
  token: string;
}

function who(username: string, role: 'user' | 'visitor' = 'user'): Who {
  const der = pkcs8(seed(`${username} session key`)).toString('base64');
  const keys = loadSessionKeys(der);
  const sessionId = b64url(seed(`${username} session id`).subarray(0, 16));
  const iat = T0 - 60_000;
  const cert = signClaims(
    {
      typ: 'key',
      sid: sessionId,
      u: username,
      r: role,
      pk: keys.publicKey,
      iat,
      exp: iat + 30 * DAY,
    },
    serverPrivate,
  );
  const token = signClaims(
    { typ: 'session', sid: sessionId, u: username, r: role, iat },
    serverPrivate,
  );
  return { username, keys, pkcs8: der, sessionId, cert, token };
}

const alice = who('alice');
const bob = who('bob');
const carol = who('carol');
const guest = who('Guest 1', 'visitor');

/** Channel alice creates on the server link; channel carol hosts on the P2P link. */
const C1 = '019abcde-0000-7000-8000-0000000000c1';
const H1 = '019abcde-0000-7000-8000-0000000000d1';

/** An item of a channel's log (PROTOCOL.md §2.2), signed by `author`, fields in wire order. */
function message(
  author: Who,
  m: { channelId: string; ts: number; lc: number; kind?: ItemKind; target?: string } & ItemBody,
) {
  const id = messageId({ ...m, author: author.username });
  const sig = signMessage({ ...m, id, author: author.username }, author.keys);
  return { id, ...m, sig, cert: author.cert };
}

const post1 = message(alice, { channelId: C1, ts: T0, lc: 0, text: 'héllo 👋' });
const stored1 = { ...post1, author: 'alice', seq: 1 };
/** stored1 on a compact link (§3.11): channel 0, certificate 0, id and author left out. */
const { id: _id1, channelId: _c1, cert: _cert1, author: _a1, ...rest1 } = stored1;
const compact1 = { c: 0, ...rest1, k: 0 };
// A reply that mentions bob, its edit, a reaction to the first post, and the reply's delete.
const reply1 = message(alice, {
  channelId: C1,
  ts: T0 + 10,
  lc: 0,
  text: '@bob see above',
  replyTo: post1.id,
  mentions: ['bob'],
});
const edit1 = message(alice, {
  channelId: C1,
  ts: T0 + 20,
  lc: 0,
  kind: 'edit',
  target: reply1.id,
  text: '@bob see above (edited)',
  mentions: ['bob'],
});
const react1 = message(alice, {
  channelId: C1,
  ts: T0 + 30,
  lc: 0,
  kind: 'react',
  target: post1.id,
  emoji: '👍',
});
const delete1 = message(alice, {
  channelId: C1,
  ts: T0 + 40,
  lc: 0,
  kind: 'delete',
  target: reply1.id,
});
// A message written and deleted before it was delivered: its tombstone goes, with its delete.
const unsent1 = message(alice, { channelId: C1, ts: T0 + 50, lc: 0, text: 'typo, never sent' });
const delete2 = message(alice, {
  channelId: C1,
  ts: T0 + 60,
  lc: 0,
  kind: 'delete',
  target: unsent1.id,
});
/** What a delete leaves of an item: its header, its signature and its body's digest. */
function tombstone<T extends { text?: string; replyTo?: string; mentions?: string[] }>(m: T) {
  const { text: _t, replyTo: _r, mentions: _m, ...rest } = m;
  const { sig, cert, ...header } = rest as T & { sig: string; cert: string };
  return { ...header, digest: bodyDigest(m), sig, cert };
}
const p2pPost = message(alice, { channelId: H1, ts: T0 + 1000, lc: 0, text: 'hi carol' });
const hostPost = message(carol, { channelId: H1, ts: T0 + 2000, lc: 0, text: 'hi from the host' });

const peerNonce = b64url(seed('peer nonce'));
const hostNonce = b64url(seed('host nonce'));
const parts = {
  peerNonce,
  hostNonce,
  peerSession: alice.sessionId,
  hostSession: carol.sessionId,
  // On a real connection: that TLS connection's exporter value (docs/PROTOCOL.md §4.1).
  binding: seed('tls-exporter channel binding'),
};

const entry = {
  username: 'alice',
  role: 'user',
  ip: '127.0.0.1',
  port: 40000,
  udpPort: 40001,
  sessionId: alice.sessionId,
  status: 'online',
  hosts: [],
  live: [],
};

const serverHello = {
  t: 'hello',
  v: PROTOCOL_VERSION,
  role: 'server',
  heartbeatMs: 5000,
  timeoutMs: 15000,
  maxFrame: 1048576,
  publicKey: serverSpki,
};

type Frame = { name: string; link: 'server' | 'p2p'; fresh?: string[]; frame: object };
const S = 'server' as const;
const P = 'p2p' as const;

const frames: Frame[] = [
  // ---- peer ↔ server ----------------------------------------------------------------------
  {
    name: 'peer hello',
    link: S,
    frame: {
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'peer',
      agent: 'hchat-peer',
      maxFrame: 1048576,
    },
  },
  { name: 'server hello', link: S, frame: serverHello },
  {
    name: 'register request',
    link: S,
    frame: { t: 'req', id: 1, op: 'register', body: { username: 'alice', password: 'alice-pw' } },
  },
  { name: 'register answer', link: S, frame: { t: 'res', id: 1, body: { username: 'alice' } } },
  {
    name: 'login request',
    link: S,
    frame: {
      t: 'req',
      id: 2,
      op: 'login',
      body: { username: 'alice', password: 'alice-pw', publicKey: alice.keys.publicKey },
    },
  },
  {
    name: 'login answer',
    link: S,
    fresh: ['body.sessionId', 'body.token', 'body.cert'],
    frame: {
      t: 'res',
      id: 2,
      body: {
        username: 'alice',
        role: 'user',
        sessionId: alice.sessionId,
        token: alice.token,
        cert: alice.cert,
      },
    },
  },
  {
    name: 'channel_create request',
    link: S,
    frame: {
      t: 'req',
      id: 3,
      op: 'channel_create',
      body: { id: C1, name: 'golden', allowVisitors: false },
    },
  },
  {
    name: 'channel_create answer',
    link: S,
    fresh: ['body.createdAt'],
    frame: {
      t: 'res',
      id: 3,
      body: {
        id: C1,
        name: 'golden',
        owner: 'alice',
        allowVisitors: false,
        createdAt: T0 - 30_000,
      },
    },
  },
  {
    name: 'history request of a non-member',
    link: S,
    frame: { t: 'req', id: 3, op: 'history', body: { channelId: C1, limit: 50 } },
  },
  {
    name: 'error answer',
    link: S,
    frame: { t: 'res', id: 3, error: { code: 'E_NOT_MEMBER', message: 'join the channel first' } },
  },
  {
    name: 'channel_join request',
    link: S,
    frame: { t: 'req', id: 4, op: 'channel_join', body: { channelId: C1 } },
  },
  {
    name: 'post request',
    link: S,
    frame: { t: 'req', id: 4, op: 'post', body: { message: post1 } },
  },
  {
    name: 'post answer',
    link: S,
    frame: { t: 'res', id: 4, body: { id: post1.id, seq: 1, duplicate: false } },
  },
  {
    name: 'message event',
    link: S,
    frame: { t: 'ev', ev: 'message', body: { channelId: C1, message: stored1 } },
  },
  {
    name: 'sync request',
    link: S,
    frame: { t: 'req', id: 5, op: 'sync', body: { channelId: C1, since: 0, limit: 500 } },
  },
  {
    name: 'sync answer',
    link: S,
    frame: { t: 'res', id: 5, body: { messages: [stored1], lastSeq: 1 } },
  },
  {
    name: 'history request',
    link: S,
    frame: { t: 'req', id: 6, op: 'history', body: { channelId: C1, limit: 50 } },
  },
  {
    name: 'history answer',
    link: S,
    frame: { t: 'res', id: 6, body: { messages: [stored1], hasMore: false, related: [] } },
  },
  // ---- a compact link (§3.11): dave asked for it; alice's post reaches him compact ----
  {
    name: 'compact peer hello',
    link: S,
    frame: {
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'peer',
      agent: 'hchat-peer',
      maxFrame: 1048576,
      compact: 1,
    },
  },
  { name: 'compact server hello', link: S, frame: { ...serverHello, compact: 1 } },
  { name: 'ref (certificate)', link: S, frame: { t: 'ref', k: 0, cert: alice.cert } },
  { name: 'ref (channel)', link: S, frame: { t: 'ref', c: 0, channelId: C1 } },
  { name: 'compact message event', link: S, frame: { t: 'm', ...compact1 } },
  {
    name: 'compact sync answer',
    link: S,
    frame: { t: 'res', id: 5, body: { messages: [compact1], lastSeq: 1 } },
  },
  {
    name: 'post request (reply, mention)',
    link: S,
    frame: { t: 'req', id: 20, op: 'post', body: { message: reply1 } },
  },
  {
    name: 'post answer (reply)',
    link: S,
    frame: { t: 'res', id: 20, body: { id: reply1.id, seq: 2, duplicate: false } },
  },
  {
    name: 'post request (edit)',
    link: S,
    frame: { t: 'req', id: 21, op: 'post', body: { message: edit1 } },
  },
  {
    name: 'post answer (edit)',
    link: S,
    frame: { t: 'res', id: 21, body: { id: edit1.id, seq: 3, duplicate: false } },
  },
  {
    name: 'post request (reaction)',
    link: S,
    frame: { t: 'req', id: 22, op: 'post', body: { message: react1 } },
  },
  {
    name: 'post answer (reaction)',
    link: S,
    frame: { t: 'res', id: 22, body: { id: react1.id, seq: 4, duplicate: false } },
  },
  {
    name: 'post request (delete)',
    link: S,
    frame: { t: 'req', id: 23, op: 'post', body: { message: delete1 } },
  },
  {
    name: 'post answer (delete)',
    link: S,
    frame: { t: 'res', id: 23, body: { id: delete1.id, seq: 5, duplicate: false } },
  },
  {
    name: 'history request (after changes)',
    link: S,
    frame: { t: 'req', id: 24, op: 'history', body: { channelId: C1, limit: 50 } },
  },
  {
    name: 'history answer (after changes)',
    link: S,
    frame: {
      t: 'res',
      id: 24,
      body: {
        messages: [stored1, { ...tombstone(reply1), author: 'alice', seq: 2 }],
        hasMore: false,
        related: [
          { ...react1, author: 'alice', seq: 4 },
          { ...tombstone(edit1), author: 'alice', seq: 3 },
          { ...delete1, author: 'alice', seq: 5 },
        ],
      },
    },
  },
  {
    name: 'post request (tombstone, deletedBy)',
    link: S,
    frame: {
      t: 'req',
      id: 25,
      op: 'post',
      body: { message: tombstone(unsent1), deletedBy: { ...delete2, author: 'alice' } },
    },
  },
  {
    name: 'post answer (tombstone, deletedBy)',
    link: S,
    frame: { t: 'res', id: 25, body: { id: unsent1.id, seq: 6, duplicate: false } },
  },
  {
    name: 'post request (its delete, after)',
    link: S,
    frame: { t: 'req', id: 26, op: 'post', body: { message: delete2 } },
  },
  {
    name: 'post answer (its delete, after)',
    link: S,
    frame: { t: 'res', id: 26, body: { id: delete2.id, seq: 7, duplicate: true } },
  },
  {
    name: 'submit_info request',
    link: S,
    frame: {
      t: 'req',
      id: 7,
      op: 'submit_info',
      body: { ip: '127.0.0.1', port: 40000, udpPort: 40001, status: 'online' },
    },
  },
  {
    name: 'submit_info answer',
    link: S,
    fresh: ['body.entry.sessionId'],
    frame: { t: 'res', id: 7, body: { entry } },
  },
  {
    name: 'unknown operation',
    link: S,
    frame: { t: 'req', id: 8, op: 'frobnicate', body: {} },
  },
  {
    name: 'unknown operation answer',
    link: S,
    frame: {
      t: 'res',
      id: 8,
      error: { code: 'E_UNKNOWN_TYPE', message: 'unknown operation "frobnicate"' },
    },
  },
  { name: 'ping', link: S, frame: { t: 'ping' } },
  { name: 'pong', link: S, frame: { t: 'pong' } },
  {
    name: 'resume request',
    link: S,
    fresh: ['body.token'],
    frame: { t: 'req', id: 1, op: 'resume', body: { token: alice.token } },
  },
  {
    name: 'resume answer',
    link: S,
    fresh: ['body.sessionId', 'body.cert'],
    frame: {
      t: 'res',
      id: 1,
      body: { username: 'alice', role: 'user', sessionId: alice.sessionId, cert: alice.cert },
    },
  },
  {
    name: 'visitor request',
    link: S,
    frame: {
      t: 'req',
      id: 1,
      op: 'visitor',
      body: { name: 'Guest 1', publicKey: guest.keys.publicKey },
    },
  },
  {
    name: 'visitor answer',
    link: S,
    fresh: ['body.sessionId', 'body.token', 'body.cert'],
    frame: {
      t: 'res',
      id: 1,
      body: {
        username: 'Guest 1',
        role: 'visitor',
        sessionId: guest.sessionId,
        token: guest.token,
        cert: guest.cert,
      },
    },
  },
  { name: 'old hello', link: S, frame: { t: 'hello', v: 1, role: 'peer' } },
  {
    name: 'fatal error',
    link: S,
    frame: {
      t: 'error',
      code: 'E_VERSION_MISMATCH',
      message: `protocol version 1 not supported; this server speaks ${PROTOCOL_VERSION}`,
    },
  },
  // ---- peer ↔ peer (member alice, host carol) ------------------------------------------------
  {
    name: 'p2p hello',
    link: P,
    fresh: ['cert', 'dial'],
    frame: {
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'peer',
      cert: alice.cert,
      nonce: peerNonce,
      dial: signTranscript(
        alice.keys,
        dialTranscript({
          peerNonce,
          peerSession: alice.sessionId,
          hostSession: carol.sessionId,
          binding: parts.binding,
        }),
      ),
      maxFrame: 1048576,
    },
  },
  {
    name: 'p2p hello answer',
    link: P,
    fresh: ['cert', 'nonce', 'sig'],
    frame: {
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'host',
      cert: carol.cert,
      nonce: hostNonce,
      sig: signTranscript(carol.keys, transcript('host', parts)),
      heartbeatMs: 2000,
      timeoutMs: 6000,
      maxFrame: 1048576,
    },
  },
  {
    name: 'p2p auth',
    link: P,
    fresh: ['sig'],
    frame: { t: 'auth', sig: signTranscript(alice.keys, transcript('peer', parts)) },
  },
  {
    name: 'p2p subscribe request',
    link: P,
    fresh: ['body.channelIds.0'],
    frame: { t: 'req', id: 1, op: 'subscribe', body: { channelIds: [H1] } },
  },
  {
    name: 'p2p subscribe answer',
    link: P,
    fresh: ['body.channelIds.0'],
    frame: { t: 'res', id: 1, body: { channelIds: [H1] } },
  },
  {
    name: 'p2p post request',
    link: P,
    fresh: ['body.message.channelId', 'body.message.id', 'body.message.sig'],
    frame: { t: 'req', id: 2, op: 'post', body: { message: p2pPost } },
  },
  {
    name: 'p2p post answer',
    link: P,
    fresh: ['body.id'],
    frame: { t: 'res', id: 2, body: { id: p2pPost.id, seq: 1, duplicate: false } },
  },
  {
    name: 'p2p message event',
    link: P,
    fresh: [
      'body.channelId',
      'body.message.id',
      'body.message.channelId',
      'body.message.ts',
      'body.message.lc',
      'body.message.sig',
      'body.message.cert',
    ],
    frame: {
      t: 'ev',
      ev: 'message',
      body: { channelId: H1, message: { ...hostPost, author: 'carol', seq: 2 } },
    },
  },
  {
    name: 'p2p sync request',
    link: P,
    fresh: ['body.channelId'],
    frame: { t: 'req', id: 3, op: 'sync', body: { channelId: H1, since: 0, limit: 500 } },
  },
  {
    name: 'p2p sync answer',
    link: P,
    fresh: [
      'body.messages.0.channelId',
      'body.messages.0.id',
      'body.messages.0.sig',
      'body.messages.1.channelId',
      'body.messages.1.id',
      'body.messages.1.ts',
      'body.messages.1.lc',
      'body.messages.1.sig',
      'body.messages.1.cert',
    ],
    frame: {
      t: 'res',
      id: 3,
      body: {
        messages: [
          { ...p2pPost, author: 'alice', seq: 1 },
          { ...hostPost, author: 'carol', seq: 2 },
        ],
        lastSeq: 2,
      },
    },
  },
  {
    name: 'p2p unknown operation',
    link: P,
    frame: { t: 'req', id: 4, op: 'frobnicate', body: {} },
  },
  {
    name: 'p2p unknown operation answer',
    link: P,
    frame: {
      t: 'res',
      id: 4,
      error: { code: 'E_UNKNOWN_TYPE', message: 'unknown operation "frobnicate"' },
    },
  },
];

const dir = import.meta.dirname;
const keys = {
  note: 'TEST KEYS ONLY, public in this repository. Seeds: SHA-256 of "hchat golden: <label>". See generate.ts.',
  serverKeyPem: serverPrivate.export({ type: 'pkcs8', format: 'pem' }).toString(),
  serverPublicKey: serverSpki,
  sessions: Object.fromEntries(
    [alice, bob, carol, guest].map((w) => [
      w.username,
      { pkcs8: w.pkcs8, publicKey: w.keys.publicKey, sessionId: w.sessionId },
    ]),
  ),
  channels: { serverLink: C1, hosted: H1 },
  nonces: { peer: peerNonce, host: hostNonce },
};
/** Writes `value` as JSON, formatted as the repository's prettier settings say. */
async function write(name: string, value: unknown): Promise<void> {
  const file = path.join(dir, name);
  const options = (await prettier.resolveConfig(file)) ?? {};
  fs.writeFileSync(
    file,
    await prettier.format(JSON.stringify(value), { ...options, filepath: file }),
  );
}
await write('keys.json', keys);
await write(
  'frames.json',
  frames.map((f) => ({ ...f, hex: encodeFrame(f.frame).toString('hex') })),
);
console.log(`wrote ${frames.length} frames`);
