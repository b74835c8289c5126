// Outsider attacks on files (issue 14; docs/PROTOCOL.md §9, README "Local API" and "Files"),
// written from the documents alone: our own manifests, file ids and file-carrying messages
// (files-lib.ts), raw clients of the server link (§3) and of a real peer's P2P port (§4, §9.3),
// a hostile seeder announced through the tracker, a hostile author, and the local API of real
// `bin/hchat` processes. Each test quotes the guarantee it checks. Tests marked FINDING failed
// when they were written (see the comment above each): presence leaks through file_sources (to
// visitors, of invisible users), another channel's bytes through the shared store, a removed
// member's grant still honoured by the host, a second attachment never backed up, lying file
// references shown and served, and a duplicated file id that breaks a channel. All seven are
// fixed; the tests stay as the guard.
import { test, expect, describe, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import os from 'node:os';
import { execFile } from 'node:child_process';
import path from 'node:path';
import {
  startServer,
  startPeer,
  registerLogin,
  serverHello,
  killAll,
  names,
  sharedServer,
  sleep,
  newKey,
  uuid7,
  p2pConnect,
  frame,
  b64u,
} from './lib.js';
import {
  CHUNK,
  manifestOf,
  refOf,
  signFilesMessage,
  grantClaims,
  tamper,
  verifiesWith,
  hostileSeeder,
  signChannelDelete,
  frameSizes,
  parseDisposition,
  dispositionName,
  type Manifest,
  type SeederConn,
} from './files-lib.js';

afterAll(killAll);

// Every test comes from 127.0.0.1: raise the per-address registration and visitor budgets.
const SRV = ['--max-registrations-per-address', '1000', '--max-visitors-per-address', '1000'];

/**
 * The server of the describes of one test each that need no flags of their own: each names its
 * users with a suffix of its own (`names`), and its channels and files are its own.
 */
const shared = sharedServer(SRV);
afterAll(shared.end);

type Server = Awaited<ReturnType<typeof startServer>>;
type Peer = Awaited<ReturnType<typeof startPeer>>;
type RawUser = Awaited<ReturnType<typeof registerLogin>>;

/**
 * A peer signed in as `name`. `started` is its process when it was started earlier (processes
 * take seconds to start: tests start the ones they need side by side).
 */
async function userPeer(
  srv: Server,
  name: string,
  extra: string[] = [],
  started?: Promise<Peer>,
): Promise<Peer> {
  const p = await (started ?? startPeer(srv, extra));
  await p.api('POST', '/api/register', { username: name, password: name + '-pw' });
  // Many logins from one address: the server's login budget (§7 E_RATE_LIMITED) says how long
  // to wait, as any client must.
  for (let i = 0; ; i++) {
    const l = await p.api('POST', '/api/login', { username: name, password: name + '-pw' });
    if (l.status === 200) return p;
    const wait = l.body?.error?.code === 'E_RATE_LIMITED' ? l.body.error.retryAfterMs : undefined;
    if (wait === undefined || i >= 5)
      throw new Error('login ' + name + ' ' + JSON.stringify(l.body));
    await sleep(wait);
  }
}

async function rawVisitor(srv: Server, name: string) {
  const { c, hello } = await serverHello(srv);
  const key = newKey();
  const r = await c.req('visitor', { name, publicKey: key.pk });
  if (!r.body) throw new Error('visitor ' + JSON.stringify(r));
  return {
    c,
    hello,
    key,
    cert: r.body.cert as string,
    sessionId: r.body.sessionId as string,
    username: r.body.username as string,
  };
}

/** POST /api/channels/:id/files (README "Local API"): the body is the file's bytes. */
async function upload(
  p: Peer,
  ch: string,
  data: Buffer | Uint8Array,
  name: string,
  type: string | null = 'application/octet-stream',
  headers: Record<string, string> = {},
  query = '',
) {
  const send = () =>
    fetch(p.base + `/api/channels/${ch}/files?name=${encodeURIComponent(name)}${query}`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer ' + p.token,
        ...(type !== null ? { 'content-type': type } : {}),
        ...headers,
      },
      body: new Uint8Array(data),
    });
  const r = await send();
  const text = await r.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: r.status, body };
}

/** GET on the local API, the bytes kept (the file route answers bytes, not JSON). */
async function getRaw(p: Peer, route: string, ms = 25000) {
  const ctrl = new AbortController();
  const t = setTimeout(() => ctrl.abort(), ms);
  try {
    const r = await fetch(p.base + route, {
      headers: { authorization: 'Bearer ' + p.token },
      signal: ctrl.signal,
    });
    const data = Buffer.from(await r.arrayBuffer());
    return { status: r.status, headers: r.headers, data };
  } catch {
    return { status: 0, headers: new Headers(), data: Buffer.alloc(0) };
  } finally {
    clearTimeout(t);
  }
}

/** Waits until the server says it holds the file whole (`file_sources.server`, §9.2). */
async function serverHolds(u: { c: RawUser['c'] }, channelId: string, fileId: string) {
  let s: any;
  for (let i = 0; i < 100; i++) {
    s = await u.c.req('file_sources', { channelId, fileId });
    if (s.body?.server) return;
    await sleep(100);
  }
  throw new Error('the server never held ' + fileId + ': ' + JSON.stringify(s));
}

/** Puts a whole file to the server as a member would (§9.4 Attach): file_put, chunks, file_held. */
async function backup(u: RawUser, channelId: string, data: Buffer, name: string, type: string) {
  const f = manifestOf(data, name, type);
  const put = await u.c.req('file_put', { channelId, manifest: f.manifest });
  if (!put.body) throw new Error('file_put ' + JSON.stringify(put));
  for (const i of put.body.missing as number[])
    await u.c.req('file_chunk_put', {
      channelId,
      fileId: f.id,
      index: i,
      data: f.parts[i]!.toString('base64'),
    });
  return f;
}

const code = (r: any) => r.error?.code ?? (r.body ? 'OK' : 'NONE');

/** A peer's connection log (§6), one string per record. */
const logOf = (p: Peer) =>
  fs.existsSync(path.join(p.data, 'connections.log'))
    ? fs.readFileSync(path.join(p.data, 'connections.log'), 'utf8').split('\n')
    : [];

// ---------------------------------------------------------------------------------------------
// Stage 1: alice's peer hosts the private channel A (file F, 3 chunks) and the channel P that
// allows visitors (file G); bob (raw) is a member of A; mallory (raw) is a user who owns her own
// channel B; vic is a visitor viewing P.
// ---------------------------------------------------------------------------------------------
describe('server and P2P doors of a private channel', () => {
  let srv: Server;
  let alice: Peer;
  let bob: RawUser;
  let mallory: RawUser;
  let vic: Awaited<ReturnType<typeof rawVisitor>>;
  let A: string;
  let P: string;
  let B: string;
  let dataF: Buffer;
  let F: ReturnType<typeof manifestOf>;
  let G: ReturnType<typeof manifestOf>;

  beforeAll(async () => {
    srv = await startServer(SRV);
    alice = await userPeer(srv, 'alice');
    A = (await alice.api('POST', '/api/channels', { name: 'secret', allowVisitors: false })).body
      .id;
    P = (await alice.api('POST', '/api/channels', { name: 'lobby', allowVisitors: true })).body.id;
    bob = await registerLogin(srv, 'bob');
    expect(code(await bob.c.req('channel_join', { channelId: A }))).toBe('OK');
    dataF = crypto.randomBytes(2 * CHUNK + 1000);
    F = manifestOf(dataF, 'plans.bin', 'application/octet-stream');
    const upF = await upload(alice, A, dataF, 'plans.bin');
    expect(upF.body.id).toBe(F.id); // our §9.1 reading gives the system's id
    await alice.api('POST', `/api/channels/${A}/messages`, { files: [F.id] });
    // One attachment at a time: a second one attached at once is not backed up (FINDING below).
    await serverHolds(bob, A, F.id);
    const dataG = crypto.randomBytes(CHUNK + 10);
    G = manifestOf(dataG, 'lobby.bin', 'application/octet-stream');
    expect((await upload(alice, P, dataG, 'lobby.bin')).body.id).toBe(G.id);
    await alice.api('POST', `/api/channels/${P}/messages`, { files: [G.id] });
    await serverHolds(bob, P, G.id);
    mallory = await registerLogin(srv, 'mallory');
    B = (await mallory.c.req('channel_create', { id: uuid7(), name: 'mine', allowVisitors: false }))
      .body.id;
    // alice is a member of mallory's B too: a grant for B must still not open A's files at her peer.
    expect((await alice.api('POST', `/api/channels/${B}/join`)).status).toBe(200);
    vic = await rawVisitor(srv, 'vic');
    expect(code(await vic.c.req('channel_join', { channelId: P }))).toBe('OK');
  }, 30000);

  test('a user who is not a member gets nothing of a private channel’s file from the server', async () => {
    // §9.2 file_manifest: "for a session that may read the channel (as `history`: E_NOT_MEMBER …)";
    // file_chunk: "rights as file_manifest"; file_put: "a member of the channel … E_NOT_MEMBER".
    const m = mallory.c;
    expect(code(await m.req('history', { channelId: A, limit: 10 }))).toBe('E_NOT_MEMBER');
    expect(code(await m.req('file_manifest', { channelId: A, fileId: F.id }))).toBe('E_NOT_MEMBER');
    expect(code(await m.req('file_chunk', { channelId: A, fileId: F.id, index: 0 }))).toBe(
      'E_NOT_MEMBER',
    );
    expect(code(await m.req('file_put', { channelId: A, manifest: F.manifest }))).toBe(
      'E_NOT_MEMBER',
    );
    const cp = await m.req('file_chunk_put', {
      channelId: A,
      fileId: F.id,
      index: 0,
      data: F.parts[0]!.toString('base64'),
    });
    expect(cp.body).toBeUndefined();
  });

  test('file_sources gives no grant, and names no holder, to a session that may not read the channel', async () => {
    // §9.3: a grant "says that session sid of (r, u) may read channel c"; file_sources answers
    // "a grant for this session". Handing one to a non-reader would open every peer's door.
    for (const who of [mallory, vic]) {
      const s = await who.c.req('file_sources', { channelId: A, fileId: F.id });
      expect(s.body?.grant, who.username).toBeUndefined();
      expect(s.body?.holders ?? [], who.username).toEqual([]);
    }
  });

  test('a visitor is told a private channel does not exist, at every file operation', async () => {
    // §3.3 history: "E_CHANNEL_NOT_FOUND … for a visitor on one that does not allow visitors";
    // §9.2 file_manifest/file_chunk: rights "as history".
    expect(code(await vic.c.req('file_manifest', { channelId: A, fileId: F.id }))).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    expect(code(await vic.c.req('file_chunk', { channelId: A, fileId: F.id, index: 0 }))).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    // file_put and file_chunk_put are "user" operations (§3.2: visitors get E_VISITOR_READ_ONLY).
    expect(code(await vic.c.req('file_put', { channelId: A, manifest: F.manifest }))).toBe(
      'E_VISITOR_READ_ONLY',
    );
  });

  test('a visitor reads the files of a channel that allows visitors, but writes nothing and is never listed as a holder', async () => {
    // §9.2: file_manifest/file_chunk rights "as history" (visitors read allowVisitors channels);
    // file_put/file_chunk_put are "user" (E_VISITOR_READ_ONLY); file_held is "recorded for users only".
    const man = await vic.c.req('file_manifest', { channelId: P, fileId: G.id });
    expect(man.body?.manifest).toEqual(G.manifest);
    const ch = await vic.c.req('file_chunk', { channelId: P, fileId: G.id, index: 1 });
    expect(Buffer.from(ch.body.data, 'base64').equals(G.parts[1]!)).toBe(true);
    expect(code(await vic.c.req('file_put', { channelId: P, manifest: G.manifest }))).toBe(
      'E_VISITOR_READ_ONLY',
    );
    expect(
      code(
        await vic.c.req('file_chunk_put', {
          channelId: P,
          fileId: G.id,
          index: 0,
          data: G.parts[0]!.toString('base64'),
        }),
      ),
    ).toBe('E_VISITOR_READ_ONLY');
    await vic.c.req('submit_info', { ip: '127.0.0.1', port: 9, udpPort: 9, status: 'online' });
    await vic.c.req('file_held', { channelId: P, fileId: G.id });
    const s = await bob.c.req('file_sources', { channelId: P, fileId: G.id });
    expect(s.body.holders).not.toContain('vic');
  });

  // FINDING: file_sources answers a visitor `holders` naming every online member that said
  // file_held (here dave, who is neither host nor streamer and absent from the visitor's
  // get_list): any visitor learns which members of an open channel are online right now.
  test('a visitor is not told which members are online through file_sources', async () => {
    // §3.5 Tracker visibility: "a visitor sees the entries that host or stream a channel it
    // views … Nothing else reaches it". §9.2 file_sources: holders are "users who … have a
    // tracker entry now", i.e. online: naming a member who is neither host nor streamer tells
    // the visitor that member is online.
    const dave = await registerLogin(srv, 'dave');
    await dave.c.req('channel_join', { channelId: P });
    await dave.c.req('submit_info', { ip: '127.0.0.1', port: 9, udpPort: 9, status: 'online' });
    await dave.c.req('file_held', { channelId: P, fileId: G.id });
    // Control: a member of P sees dave as a holder (he is online and says he holds it).
    expect(
      (await bob.c.req('file_sources', { channelId: P, fileId: G.id })).body.holders,
    ).toContain('dave');
    const list = await vic.c.req('get_list', {});
    expect(list.body.peers.map((e: any) => e.username)).not.toContain('dave');
    const s = await vic.c.req('file_sources', { channelId: P, fileId: G.id });
    expect(s.body.holders).not.toContain('dave');
  });

  test('a file id of another channel is not found through a channel one may read', async () => {
    // §9.2 file_chunk_put: "a file not put to this channel is E_NOT_FOUND"; file_chunk:
    // "E_NOT_FOUND for a chunk not held" (for that channel). Ids are content hashes: knowing one
    // must not open the file through one's own channel.
    expect(code(await mallory.c.req('file_manifest', { channelId: B, fileId: F.id }))).toBe(
      'E_NOT_FOUND',
    );
    expect(code(await mallory.c.req('file_chunk', { channelId: B, fileId: F.id, index: 0 }))).toBe(
      'E_NOT_FOUND',
    );
    expect(
      code(
        await mallory.c.req('file_chunk_put', {
          channelId: B,
          fileId: F.id,
          index: 0,
          data: F.parts[0]!.toString('base64'),
        }),
      ),
    ).toBe('E_NOT_FOUND');
    expect(code(await vic.c.req('file_manifest', { channelId: P, fileId: F.id }))).toBe(
      'E_NOT_FOUND',
    );
    expect(code(await vic.c.req('file_chunk', { channelId: P, fileId: F.id, index: 2 }))).toBe(
      'E_NOT_FOUND',
    );
  });

  // FINDING: the server's store is shared by content: mallory's file_put of F's manifest into her
  // own channel B answers `missing: []` (it confirms that some channel holds exactly this file)
  // and file_chunk(B, F) then serves A's bytes, which she never uploaded. Anyone who knows a
  // manifest (chunk hashes only: a former member, a leaked manifest) reads the file without
  // reading its channel.
  test('putting a known manifest into one’s own channel neither confirms nor opens another channel’s copy', async () => {
    // §9.2 file_put answers `missing: [chunk index]` for the caller's channel; file_chunk has
    // "rights as file_manifest" ("a session that may read the channel"). mallory knows F's
    // manifest (chunk hashes only, not the bytes): she must still have to upload every chunk,
    // and learn nothing about whether another channel holds it.
    const put = await mallory.c.req('file_put', { channelId: B, manifest: F.manifest });
    expect(put.body?.fileId).toBe(F.id);
    const chunk = await mallory.c.req('file_chunk', { channelId: B, fileId: F.id, index: 0 });
    const leaked = chunk.body?.data && Buffer.from(chunk.body.data, 'base64').equals(F.parts[0]!);
    expect({ missing: put.body.missing, chunk0: code(chunk), leaked: !!leaked }).toEqual({
      missing: [0, 1, 2],
      chunk0: 'E_NOT_FOUND',
      leaked: false,
    });
  });

  test('file_put refuses manifests that lie about themselves', async () => {
    // §9.1: name 1–255 characters without control characters or / \; size ≥ 1 and chunks has
    // exactly ceil(size / chunkBytes) entries; chunkBytes 262144; type `type/subtype`; width and
    // height 1–65535; preview a data:image/(jpeg|png|webp);base64 URL of ≤ 2,048 characters.
    // §9.2 file_put: "E_BAD_REQUEST for a manifest whose chunk count is not its size's; E_FILE_TOO_LARGE".
    const h = F.manifest.chunks[0]!;
    const base: Manifest = {
      name: 'x.bin',
      size: 10,
      type: 'text/plain',
      chunkBytes: CHUNK,
      chunks: [h],
    };
    const png = 'data:image/png;base64,' + Buffer.from('x').toString('base64');
    const lies: Record<string, any> = {
      'two chunks for 10 bytes': { ...base, chunks: [h, h] },
      'no chunk for 10 bytes': { ...base, chunks: [] },
      'one chunk for 300 KiB': { ...base, size: 300 * 1024 },
      'chunkBytes 1024': { ...base, chunkBytes: 1024 },
      'chunkBytes 0': { ...base, chunkBytes: 0 },
      'size 0': { ...base, size: 0, chunks: [] },
      'size -1': { ...base, size: -1 },
      'size 1.5': { ...base, size: 1.5 },
      'size 2^53 with one chunk': { ...base, size: 2 ** 53 },
      'size as a string': { ...base, size: '10' },
      'chunk hash not a hash': { ...base, chunks: ['not-a-hash'] },
      'chunk hash 44 chars': { ...base, chunks: [h + 'A'] },
      'empty name': { ...base, name: '' },
      'name with /': { ...base, name: '../../x' },
      'name with \\': { ...base, name: '..\\x' },
      'name with a newline': { ...base, name: 'a\r\nb' },
      'name with NUL': { ...base, name: 'a\u0000b' },
      'name of 256 characters': { ...base, name: 'n'.repeat(256) },
      'type without subtype': { ...base, type: 'html' },
      'type with CRLF': { ...base, type: 'text/plain\r\nx-evil: 1' },
      'width 0': { ...base, type: 'image/png', image: { width: 0, height: 1 } },
      'height 65536': { ...base, type: 'image/png', image: { width: 1, height: 65536 } },
      'preview text/html': {
        ...base,
        type: 'image/png',
        image: { width: 1, height: 1, preview: 'data:text/html;base64,PHNjcmlwdD4=' },
      },
      'preview svg': {
        ...base,
        type: 'image/png',
        image: { width: 1, height: 1, preview: 'data:image/svg+xml;base64,PHN2Zz4=' },
      },
      'preview javascript:': {
        ...base,
        type: 'image/png',
        image: { width: 1, height: 1, preview: 'javascript:alert(1)' },
      },
      'preview of 2049 characters': {
        ...base,
        type: 'image/png',
        image: { width: 1, height: 1, preview: png + 'A'.repeat(2049 - png.length) },
      },
    };
    const got: Record<string, string> = {};
    for (const [what, manifest] of Object.entries(lies))
      got[what] = code(await mallory.c.req('file_put', { channelId: B, manifest }));
    const want = Object.fromEntries(Object.keys(lies).map((k) => [k, 'E_BAD_REQUEST']));
    // A size past the limit may be E_FILE_TOO_LARGE instead.
    if (got['size 2^53 with one chunk'] === 'E_FILE_TOO_LARGE')
      want['size 2^53 with one chunk'] = 'E_FILE_TOO_LARGE';
    expect(got).toEqual(want);
    // 25 MiB + 1 byte, honestly described (101 chunks): E_FILE_TOO_LARGE.
    const size = 25 * 1024 * 1024 + 1;
    const big = { ...base, size, chunks: Array(Math.ceil(size / CHUNK)).fill(h) };
    expect(code(await mallory.c.req('file_put', { channelId: B, manifest: big }))).toBe(
      'E_FILE_TOO_LARGE',
    );
    // The link is still good.
    expect(code(await mallory.c.req('my_channels', {}))).toBe('OK');
  });

  test('file_chunk_put stores only the manifest’s bytes at a valid index', async () => {
    // §9.2 file_chunk_put: "stored only when data has the manifest's length and SHA-256 for
    // index (E_BAD_CHUNK)"; a known member of the wrong type or out of range is E_BAD_REQUEST (§1).
    const data = crypto.randomBytes(CHUNK + 5000);
    const f = manifestOf(data, 'two.bin', 'application/octet-stream');
    const put = await mallory.c.req('file_put', { channelId: B, manifest: f.manifest });
    expect(put.body.missing).toEqual([0, 1]);
    const cp = (index: unknown, d: unknown) =>
      mallory.c.req('file_chunk_put', { channelId: B, fileId: f.id, index, data: d });
    const b64 = (b: Buffer) => b.toString('base64');
    const wrong = Buffer.from(f.parts[0]!);
    wrong[12345] = wrong[12345]! ^ 1;
    const got = {
      'last chunk at index 0 (short)': code(await cp(0, b64(f.parts[1]!))),
      'chunk 0 plus one byte': code(await cp(0, b64(Buffer.concat([f.parts[0]!, Buffer.of(0)])))),
      'chunk 0 with one bit flipped': code(await cp(0, b64(wrong))),
      'chunk 1 padded to 256 KiB': code(
        await cp(1, b64(Buffer.concat([f.parts[1]!, Buffer.alloc(CHUNK - f.parts[1]!.length)]))),
      ),
      'empty data': code(await cp(0, '')),
    };
    expect(got).toEqual({
      'last chunk at index 0 (short)': 'E_BAD_CHUNK',
      'chunk 0 plus one byte': 'E_BAD_CHUNK',
      'chunk 0 with one bit flipped': 'E_BAD_CHUNK',
      'chunk 1 padded to 256 KiB': 'E_BAD_CHUNK',
      'empty data': 'E_BAD_CHUNK',
    });
    // Indexes out of range or of the wrong type are refused, never stored.
    for (const index of [2, -1, 1.5, 2 ** 31, '0', null])
      expect(code(await cp(index, b64(f.parts[0]!))), String(index)).not.toBe('OK');
    // Nothing of the above was kept.
    expect(code(await mallory.c.req('file_chunk', { channelId: B, fileId: f.id, index: 0 }))).toBe(
      'E_NOT_FOUND',
    );
    expect(
      code(await mallory.c.req('file_chunk', { channelId: B, fileId: f.id, index: 2 })),
    ).not.toBe('OK');
    // The right bytes are taken.
    expect((await cp(0, b64(f.parts[0]!))).body).toEqual({ complete: false });
    expect((await cp(1, b64(f.parts[1]!))).body).toEqual({ complete: true });
    const back = await mallory.c.req('file_chunk', { channelId: B, fileId: f.id, index: 1 });
    expect(Buffer.from(back.body.data, 'base64').equals(f.parts[1]!)).toBe(true);
  });

  test('frames at the 1 MiB limit: one byte over is fatal, an answer that would not fit is refused alone', async () => {
    // §1: "N MUST be at least 1 and at most the receiver's maximum frame length … a larger N with
    // error E_FRAME_TOO_LARGE (fatal)"; "A sender MUST NOT send a frame longer than the other
    // side's maxFrame … any other answer that would not fit is answered res {error:
    // E_FRAME_TOO_LARGE} for that request alone, and the link stays open".
    const u = await registerLogin(srv, 'framer');
    await u.c.req('channel_join', { channelId: A });
    // A file_chunk_put frame of exactly 1,048,576 bytes: a bad chunk, the link stays.
    const env = (d: string) => ({
      t: 'req',
      id: 900,
      op: 'file_chunk_put',
      body: { channelId: A, fileId: F.id, index: 0, data: d },
    });
    const overhead = frame(env('')).length - 4;
    const exact = frame(env('A'.repeat(1048576 - overhead)));
    expect(exact.length - 4).toBe(1048576);
    const ans = new Promise<any>((r) => {
      const t = setInterval(() => {
        const f = u.c.frames.find((x) => x.id === 900 || x.t === 'error');
        if (f) (clearInterval(t), r(f));
      }, 20);
    });
    u.c.sock.write(exact);
    const a = await Promise.race([ans, sleep(8000).then(() => ({ timeout: true }))]);
    expect(a.t).toBe('res');
    expect(a.error?.code).toMatch(/^E_BAD_(CHUNK|REQUEST)$/);
    expect(code(await u.c.req('my_channels', {}))).toBe('OK');
    // One byte more: fatal E_FRAME_TOO_LARGE.
    u.c.sock.write(frame(env('A'.repeat(1048576 - overhead + 1))));
    await Promise.race([u.c.closeP, sleep(8000)]);
    expect(u.c.frames.find((f) => f.t === 'error')?.code).toBe('E_FRAME_TOO_LARGE');
    expect(u.c.closed).toBe(true);

    // A reader with the smallest maxFrame (65,536) asks a 256 KiB chunk.
    const { c } = await serverHello(srv, 65536);
    const key = newKey();
    const l = await c.req('login', { username: 'bob', password: 'pw-bob', publicKey: key.pk });
    expect(l.body?.username).toBe('bob');
    const sizes = frameSizes(c.sock);
    const r = await c.req('file_chunk', { channelId: A, fileId: F.id, index: 0 });
    expect(r.error?.code).toBe('E_FRAME_TOO_LARGE');
    expect(Math.max(0, ...sizes)).toBeLessThanOrEqual(65536);
    expect(code(await c.req('file_manifest', { channelId: A, fileId: F.id }))).toBe('OK');
    c.close();
  });

  // ------------------------------------------------------------------ §9.3 at alice's P2P port

  async function grantOf(u: { c: RawUser['c'] }, channelId: string, fileId: string) {
    const s = await u.c.req('file_sources', { channelId, fileId });
    if (!s.body?.grant) throw new Error('no grant ' + JSON.stringify(s));
    return s.body.grant as string;
  }

  test('a grant is the server’s, names the session, user, role and channel, and lasts 10 minutes', async () => {
    // §9.3: "claims {typ: "file", sid, u, r, c: channelId, exp} … until exp (10 minutes after
    // file_sources)", signed "like a certificate" with the key of the server's hello.
    const t0 = Date.now();
    const g = await grantOf(bob, A, F.id);
    const claims = grantClaims(g);
    expect(verifiesWith(bob.hello.publicKey, g)).toBe(true);
    expect(claims).toMatchObject({ typ: 'file', sid: bob.sessionId, u: 'bob', r: 'user', c: A });
    expect(claims.exp).toBeGreaterThanOrEqual(t0 + 600_000 - 5_000);
    expect(claims.exp).toBeLessThanOrEqual(Date.now() + 600_000 + 5_000);
  });

  test('the host serves the file ops only with a grant of this connection’s session for this channel', async () => {
    // §9.3: "A peer serves a request only when the grant verifies with the server's key, is of
    // type file, names this channel, names exactly the session, user and role the connection
    // proved in its handshake, and has not expired; else E_BAD_GRANT. A file it does not hold
    // for that channel is E_NOT_FOUND."
    const bobGrant = await grantOf(bob, A, F.id);
    const malGrantB = await grantOf(mallory, B, F.id);
    const bob2 = await registerLogin(srv, 'bob'); // a second session of bob
    const ownKey = crypto.generateKeyPairSync('ed25519');
    const forged =
      b64u(
        Buffer.from(
          JSON.stringify({
            typ: 'file',
            sid: mallory.sessionId,
            u: 'mallory',
            r: 'user',
            c: A,
            exp: Date.now() + 600_000,
          }),
        ),
      ) + '.';
    const forgedGrant =
      forged.slice(0, -1) +
      '.' +
      crypto
        .sign(null, Buffer.from(forged.slice(0, -1), 'ascii'), ownKey.privateKey)
        .toString('base64url');

    const asMallory = (await p2pConnect(alice, mallory)).c;
    const asBob2 = (await p2pConnect(alice, bob2)).c;
    const asBob = (await p2pConnect(alice, bob)).c;
    const ops = async (c: typeof asBob, channelId: string, grant: unknown, fileId = F.id) => [
      code(await c.req('file_have', { channelId, fileId, grant })),
      code(await c.req('file_manifest', { channelId, fileId, grant })),
      code(await c.req('file_chunk', { channelId, fileId, grant, index: 0 })),
    ];
    const got = {
      'no grant': await ops(asMallory, A, undefined),
      garbage: await ops(asMallory, A, 'x.y'),
      "bob's grant replayed by mallory": await ops(asMallory, A, bobGrant),
      "bob's grant on bob's other session": await ops(asBob2, A, bobGrant),
      "mallory's grant for B, asked for A": await ops(asMallory, A, malGrantB),
      "mallory's grant for B with c changed to A": await ops(
        asMallory,
        A,
        tamper(malGrantB, { c: A }),
      ),
      "mallory's grant with exp pushed": await ops(
        asMallory,
        B,
        tamper(malGrantB, { exp: Date.now() + 1e9 }),
      ),
      'a grant signed by another key': await ops(asMallory, A, forgedGrant),
      "mallory's key certificate as a grant": await ops(asMallory, A, mallory.cert),
      "bob's grant with typ key": await ops(asBob, A, tamper(bobGrant, { typ: 'key' })),
      'grant for B, file of A asked as B': await ops(asMallory, B, malGrantB),
    };
    const bad = ['E_BAD_GRANT', 'E_BAD_GRANT', 'E_BAD_GRANT'];
    expect(got['no grant'].every((c) => c === 'E_BAD_REQUEST' || c === 'E_BAD_GRANT')).toBe(true);
    delete (got as any)['no grant'];
    expect(got).toEqual({
      garbage: bad,
      "bob's grant replayed by mallory": bad,
      "bob's grant on bob's other session": bad,
      "mallory's grant for B, asked for A": bad,
      "mallory's grant for B with c changed to A": bad,
      "mallory's grant with exp pushed": bad,
      'a grant signed by another key': bad,
      "mallory's key certificate as a grant": bad,
      "bob's grant with typ key": bad,
      'grant for B, file of A asked as B': ['E_NOT_FOUND', 'E_NOT_FOUND', 'E_NOT_FOUND'],
    });
    // Control: bob's own grant on bob's connection opens all three.
    expect(await ops(asBob, A, bobGrant)).toEqual(['OK', 'OK', 'OK']);
    // The links survived every refusal.
    expect(asMallory.closed || asBob2.closed).toBe(false);
  });

  test('a visitor’s grant for the open channel opens its files at the host, and nothing of the private one', async () => {
    // §9.3 + §4.2: "Visitors' certificates are accepted: what a visitor may do is decided per
    // request"; a grant "names this channel"; "A file it does not hold for that channel is E_NOT_FOUND".
    const g = await grantOf(vic, P, G.id);
    expect(grantClaims(g)).toMatchObject({ r: 'visitor', c: P, sid: vic.sessionId });
    const { c } = await p2pConnect(alice, vic);
    const ch = await c.req('file_chunk', { channelId: P, fileId: G.id, grant: g, index: 1 });
    expect(Buffer.from(ch.body.data, 'base64').equals(G.parts[1]!)).toBe(true);
    expect(
      code(await c.req('file_chunk', { channelId: A, fileId: F.id, grant: g, index: 0 })),
    ).toBe('E_BAD_GRANT');
    expect(
      code(await c.req('file_chunk', { channelId: P, fileId: F.id, grant: g, index: 0 })),
    ).toBe('E_NOT_FOUND');
    expect(code(await c.req('file_manifest', { channelId: P, fileId: F.id, grant: g }))).toBe(
      'E_NOT_FOUND',
    );
  });

  test('at the host, bad indexes and a small maxFrame are refused per request; the link stays', async () => {
    // §1: a request member "of the wrong type or out of range … E_BAD_REQUEST"; an answer that
    // would not fit the member's maxFrame is "res {error: E_FRAME_TOO_LARGE} for that request
    // alone, and the link stays open".
    const g = await grantOf(bob, A, F.id);
    const { c } = await p2pConnect(alice, bob, 65536);
    const sizes = frameSizes(c.sock);
    for (const index of [3, -1, 1.5, 2 ** 40, '0'])
      expect(
        code(await c.req('file_chunk', { channelId: A, fileId: F.id, grant: g, index })),
        String(index),
      ).toMatch(/^E_(BAD_REQUEST|NOT_FOUND)$/);
    const r = await c.req('file_chunk', { channelId: A, fileId: F.id, grant: g, index: 0 });
    expect(r.error?.code).toBe('E_FRAME_TOO_LARGE');
    expect(Math.max(0, ...sizes)).toBeLessThanOrEqual(65536);
    expect(code(await c.req('file_have', { channelId: A, fileId: F.id, grant: g }))).toBe('OK');
    expect(c.closed).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Stage 2: alice's peer hosts A with F; bob's peer (a member) fetched F and holds it; carol
// (raw) is a member; mallory (raw) is not.
// ---------------------------------------------------------------------------------------------
describe('holders, removal and invisibility', () => {
  let srv: Server;
  let alice: Peer;
  let bob: Peer;
  let carol: RawUser;
  let mallory: RawUser;
  let A: string;
  let F: ReturnType<typeof manifestOf>;

  beforeAll(async () => {
    srv = await startServer(SRV);
    // bob's process starts now; he signs in once the file is on the server.
    const bobStarted = startPeer(srv);
    alice = await userPeer(srv, 'alice');
    A = (await alice.api('POST', '/api/channels', { name: 'secret', allowVisitors: false })).body
      .id;
    carol = await registerLogin(srv, 'carol');
    await carol.c.req('channel_join', { channelId: A });
    const data = crypto.randomBytes(3 * CHUNK);
    F = manifestOf(data, 'f.bin', 'application/octet-stream');
    await upload(alice, A, data, 'f.bin');
    await alice.api('POST', `/api/channels/${A}/messages`, { files: [F.id] });
    await serverHolds(carol, A, F.id);
    bob = await userPeer(srv, 'bob', [], bobStarted);
    await bob.api('POST', `/api/channels/${A}/join`);
    const got = await getRaw(bob, `/api/channels/${A}/files/${F.id}`);
    expect(got.data.equals(data)).toBe(true);
    mallory = await registerLogin(srv, 'mallory');
    // bob said file_held once whole (§9.4): carol sees him as a holder.
    for (let i = 0; i < 50; i++) {
      const s = await carol.c.req('file_sources', { channelId: A, fileId: F.id });
      if (s.body.holders.includes('bob')) break;
      await sleep(100);
    }
  }, 30000);

  test('a member that holds a file checks grants as the host does', async () => {
    // §9.3: "Every peer answers these on its P2P port … A peer serves a request only when the
    // grant verifies …, names this channel, names exactly the session, user and role the
    // connection proved in its handshake".
    const entry = (await carol.c.req('get_list', {})).body.peers.find(
      (e: any) => e.username === 'bob',
    );
    expect(entry).toBeTruthy();
    const cg = (await carol.c.req('file_sources', { channelId: A, fileId: F.id })).body.grant;
    const B = (
      await mallory.c.req('channel_create', { id: uuid7(), name: 'm', allowVisitors: false })
    ).body.id;
    const mg = (await mallory.c.req('file_sources', { channelId: B, fileId: F.id })).body.grant;
    // bob is a member of B too: his peer holds F for A only.
    expect((await bob.api('POST', `/api/channels/${B}/join`)).status).toBe(200);
    const asMallory = (await p2pConnect(entry, mallory)).c;
    const asCarol = (await p2pConnect(entry, carol)).c;
    const chunk = (c: typeof asCarol, channelId: string, grant: string) =>
      c.req('file_chunk', { channelId, fileId: F.id, grant, index: 0 }).then(code);
    expect({
      replayed: await chunk(asMallory, A, cg),
      otherChannel: await chunk(asMallory, A, mg),
      tampered: await chunk(asMallory, A, tamper(mg, { c: A })),
      ownChannelForeignFile: await chunk(asMallory, B, mg),
      control: await chunk(asCarol, A, cg),
    }).toEqual({
      replayed: 'E_BAD_GRANT',
      otherChannel: 'E_BAD_GRANT',
      tampered: 'E_BAD_GRANT',
      ownChannelForeignFile: 'E_NOT_FOUND',
      control: 'OK',
    });
  });

  // FINDING: after bob goes invisible, get_list hides him but file_sources still lists "bob" in
  // `holders` (holders are users "who … have a tracker entry now", and an invisible session
  // keeps its entry): any co-member learns that an invisible user is online.
  test('an invisible holder is never named by file_sources', async () => {
    // PROTOCOL §4.3 Invisible hosts: "Its presence is never revealed"; §3.5: "An invisible entry
    // is never sent to another user in any event or list". file_sources names "users who said
    // they hold it and have a tracker entry now".
    expect(
      (await carol.c.req('file_sources', { channelId: A, fileId: F.id })).body.holders,
    ).toContain('bob');
    expect((await bob.api('PUT', '/api/status', { status: 'invisible' })).body.status).toBe(
      'invisible',
    );
    await sleep(300);
    const list = (await carol.c.req('get_list', {})).body.peers.map((e: any) => e.username);
    expect(list).not.toContain('bob'); // the tracker hides him …
    const s = await carol.c.req('file_sources', { channelId: A, fileId: F.id });
    expect(s.body.holders).not.toContain('bob'); // … and so must file_sources
    await bob.api('PUT', '/api/status', { status: 'online' });
  });

  // FINDING: the server refuses the removed member (E_FORBIDDEN) but the host still serves
  // file_chunk and file_manifest to dave with the grant he took before his removal, on his old
  // link and on a new one, for the rest of the grant's 10 minutes: §9.3 makes the grant the only
  // check, which contradicts §2.2/SECURITY.md ("neither read … at the host").
  test('a removed member reads no file, at the server or at the host, whatever grant it kept', async () => {
    // §2.2: "a removed member … can neither read nor post … history … answer E_FORBIDDEN";
    // SECURITY.md: "a removed member can neither read nor post, at the host or the server";
    // §9.2 file_manifest/file_chunk: "E_FORBIDDEN for a removed member"; issue 14: "Rights as
    // for messages: only those who may read the channel".
    const dave = await registerLogin(srv, 'dave');
    await dave.c.req('channel_join', { channelId: A });
    const grant = (await dave.c.req('file_sources', { channelId: A, fileId: F.id })).body.grant;
    expect(grantClaims(grant)).toMatchObject({ u: 'dave', c: A });
    const { c } = await p2pConnect(alice, dave);
    expect(code(await c.req('file_have', { channelId: A, fileId: F.id, grant }))).toBe('OK');
    await dave.c.req('submit_info', { ip: '127.0.0.1', port: 9, udpPort: 9, status: 'online' });

    const rm = await alice.api('DELETE', `/api/channels/${A}/members/dave`);
    expect(rm.status).toBe(200);
    for (let i = 0; i < 50; i++) {
      if (code(await dave.c.req('history', { channelId: A, limit: 1 })) === 'E_FORBIDDEN') break;
      await sleep(100);
    }
    await sleep(500);
    expect(code(await dave.c.req('history', { channelId: A, limit: 1 }))).toBe('E_FORBIDDEN');
    const server = {
      manifest: code(await dave.c.req('file_manifest', { channelId: A, fileId: F.id })),
      chunk: code(await dave.c.req('file_chunk', { channelId: A, fileId: F.id, index: 0 })),
      sourcesGrant: (await dave.c.req('file_sources', { channelId: A, fileId: F.id })).body?.grant
        ? 'grant'
        : 'none',
      put: code(await dave.c.req('file_put', { channelId: A, manifest: F.manifest })),
    };
    await dave.c.req('file_held', { channelId: A, fileId: F.id });
    const holders = (await carol.c.req('file_sources', { channelId: A, fileId: F.id })).body
      .holders;
    // (file_put answers E_FORBIDDEN where §9.2 lists E_NOT_MEMBER: a refusal all the same.)
    expect(server.put).toMatch(/^E_(NOT_MEMBER|FORBIDDEN)$/);
    expect({ ...server, put: 'refused', holders: holders.includes('dave') }).toEqual({
      manifest: 'E_FORBIDDEN',
      chunk: 'E_FORBIDDEN',
      sourcesGrant: 'none',
      put: 'refused',
      holders: false,
    });
    // At the host, with the grant taken before the removal (still within its 10 minutes), on the
    // link opened before and on a new one.
    const again = (await p2pConnect(alice, dave)).c;
    const host = {
      oldLink: code(await c.req('file_chunk', { channelId: A, fileId: F.id, grant, index: 0 })),
      newLink: code(await again.req('file_chunk', { channelId: A, fileId: F.id, grant, index: 1 })),
      manifest: code(await again.req('file_manifest', { channelId: A, fileId: F.id, grant })),
    };
    const refused = (c: string) => (c === 'OK' ? 'served' : 'refused');
    expect({
      oldLink: refused(host.oldLink),
      newLink: refused(host.newLink),
      manifest: refused(host.manifest),
    }).toEqual({ oldLink: 'refused', newLink: 'refused', manifest: 'refused' });
  });
});

// ---------------------------------------------------------------------------------------------
// Quota (§9.1: "1 GiB of files per user at the server (E_QUOTA_EXCEEDED)"), run with a 1 MiB
// quota and limit so that it can be reached in a test.
// ---------------------------------------------------------------------------------------------
describe('quota at the server', () => {
  test('the first put of a file is charged once, however often and wherever it is put again; the quota then holds', async () => {
    // §9.2 file_put: "idempotent; the first to put it is charged size against the quota …
    // E_FILE_TOO_LARGE; E_QUOTA_EXCEEDED".
    const srv = await startServer([
      ...SRV,
      '--file-quota-bytes',
      '1048576',
      '--max-file-bytes',
      '1048576',
    ]);
    const m = await registerLogin(srv, 'mallory');
    const mk = async () =>
      (await m.c.req('channel_create', { id: uuid7(), name: 'q', allowVisitors: false })).body.id;
    const B1 = await mk();
    const B2 = await mk();
    const X = manifestOf(crypto.randomBytes(600 * 1024), 'x', 'application/octet-stream');
    const puts: string[] = [];
    for (let i = 0; i < 5; i++)
      puts.push(code(await m.c.req('file_put', { channelId: B1, manifest: X.manifest })));
    for (let i = 0; i < 2; i++)
      puts.push(code(await m.c.req('file_put', { channelId: B2, manifest: X.manifest })));
    expect(puts).toEqual(Array(7).fill('OK'));
    // 600 KiB charged once: 400 KiB more still fit (1,000 KiB of 1,024) …
    const Y = manifestOf(crypto.randomBytes(400 * 1024), 'y', 'application/octet-stream');
    expect(code(await m.c.req('file_put', { channelId: B1, manifest: Y.manifest }))).toBe('OK');
    // … and 100 KiB more do not.
    const Z = manifestOf(crypto.randomBytes(100 * 1024), 'z', 'application/octet-stream');
    expect(code(await m.c.req('file_put', { channelId: B1, manifest: Z.manifest }))).toBe(
      'E_QUOTA_EXCEEDED',
    );
    // Many small distinct puts cannot creep past it either.
    const small: string[] = [];
    for (let i = 0; i < 30; i++) {
      const S = manifestOf(crypto.randomBytes(1024), 's' + i, 'text/plain');
      small.push(code(await m.c.req('file_put', { channelId: B2, manifest: S.manifest })));
    }
    expect(small.filter((c) => c === 'OK').length).toBeLessThanOrEqual(24);
    expect(small.every((c) => c === 'OK' || c === 'E_QUOTA_EXCEEDED')).toBe(true);
    // A file over the server's --max-file-bytes: E_FILE_TOO_LARGE, whoever asks.
    const big = manifestOf(crypto.randomBytes(1048577), 'big', 'application/octet-stream');
    const other = await registerLogin(srv, 'olga');
    const B3 = (
      await other.c.req('channel_create', { id: uuid7(), name: 'o', allowVisitors: false })
    ).body.id;
    expect(code(await other.c.req('file_put', { channelId: B3, manifest: big.manifest }))).toBe(
      'E_FILE_TOO_LARGE',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Attaching (§9.4 Attach; README "Files": "Your peer keeps it and backs it up to the server once")
// ---------------------------------------------------------------------------------------------
describe('backup of attachments', () => {
  // FINDING: of two files attached back to back (two POST …/files in a row), only the first is
  // ever backed up (`backup` logged once, file_sources.server stays false for the second); the
  // member's message naming both stays `pending` for good, and the second file exists only on
  // its author's peer. (Same on a host: its own message is forwarded anyway, but readers cannot
  // get the file from the server once the host is away.)
  test('two files attached one right after the other are both backed up, and a member’s message with both is delivered', async () => {
    // §9.4 Attach: "The author's peer … backs it up: file_put, then file_chunk_put for each
    // missing chunk, then file_held. Its outbox sends a message with files only once the server
    // holds all of them".
    const srv = await shared.get();
    const n = names();
    const [alice, erin] = await Promise.all([userPeer(srv, n('alice')), userPeer(srv, n('erin'))]);
    const A = (await alice.api('POST', '/api/channels', { name: 'a', allowVisitors: false })).body
      .id;
    await erin.api('POST', `/api/channels/${A}/join`);
    const one = await upload(erin, A, crypto.randomBytes(300 * 1024), 'one.bin');
    const two = await upload(erin, A, crypto.randomBytes(300 * 1024), 'two.bin');
    expect([one.status, two.status]).toEqual([201, 201]);
    const post = await erin.api('POST', `/api/channels/${A}/messages`, {
      files: [one.body.id, two.body.id],
    });
    expect(post.status).toBe(201);
    const watcher = await registerLogin(srv, n('walt'));
    await watcher.c.req('channel_join', { channelId: A });
    const held = async () => ({
      one: !!(await watcher.c.req('file_sources', { channelId: A, fileId: one.body.id })).body
        .server,
      two: !!(await watcher.c.req('file_sources', { channelId: A, fileId: two.body.id })).body
        .server,
    });
    let state = '';
    let h = await held();
    for (let i = 0; i < 40 && !(h.one && h.two && state === 'delivered'); i++) {
      await sleep(200);
      h = await held();
      const msgs = (await erin.api('GET', `/api/channels/${A}/messages`)).body.messages;
      state = msgs.find((x: any) => x.id === post.body.id)?.state;
    }
    expect({ ...h, state }).toEqual({ one: true, two: true, state: 'delivered' });
  });
});

// ---------------------------------------------------------------------------------------------
// A hostile seeder (§9.4 Fetch). mallory is a member of alice's channel A; her tracker entry
// points at our listener, which completes the handshake as her and says file_held for each
// file. alice uploads a file, it reaches the server, alice goes offline: a new member, carol,
// then has exactly two sources, mallory and the server. Whatever mallory does, the file must
// arrive whole and right.
// ---------------------------------------------------------------------------------------------
describe('a hostile seeder', () => {
  type F = ReturnType<typeof manifestOf>;
  type Behaviour = (f: F) => (op: string, body: any, id: number, c: SeederConn) => void;
  let srv: Server;
  let alice: Peer;
  let mallory: RawUser;
  let walt: RawUser;
  let A: string;
  let seeder: Awaited<ReturnType<typeof hostileSeeder>>;
  const behaviours = new Map<string, ReturnType<Behaviour>>();
  let n = 0;

  beforeAll(async () => {
    srv = await startServer(SRV);
    alice = await userPeer(srv, 'alice');
    A = (await alice.api('POST', '/api/channels', { name: 'swarm', allowVisitors: false })).body.id;
    mallory = await registerLogin(srv, 'mallory');
    await mallory.c.req('channel_join', { channelId: A });
    walt = await registerLogin(srv, 'walt');
    await walt.c.req('channel_join', { channelId: A });
    // Each file has its own misbehaviour; anything else is answered {}.
    seeder = await hostileSeeder(mallory, (op, body, id, c) =>
      (behaviours.get(body?.fileId) ?? ((_o, _b, i, cc) => cc.reply(i, {})))(op, body, id, c),
    );
    const e = await mallory.c.req('submit_info', {
      ip: '127.0.0.1',
      port: seeder.port,
      udpPort: seeder.port,
      status: 'online',
    });
    expect(e.body?.entry).toBeTruthy();
  }, 30000);
  afterAll(() => seeder?.close());

  /** An honest answer to file_have and file_manifest; `chunk` decides file_chunk. */
  const honestBut =
    (chunk: (f: F, body: any, id: number, c: SeederConn) => void): Behaviour =>
    (f) =>
    (op, body, id, c) => {
      if (op === 'file_have') return c.reply(id, { all: true, chunks: [] });
      if (op === 'file_manifest') return c.reply(id, { manifest: f.manifest });
      if (op === 'file_chunk') return chunk(f, body, id, c);
      c.reply(id, {});
    };

  /** alice (online) attaches a fresh file and the server gets it; mallory misbehaves for it. */
  async function prepare(b: Behaviour, size = 4 * CHUNK) {
    n++;
    await alice.api('PUT', '/api/status', { status: 'online' });
    const data = crypto.randomBytes(size);
    const f = manifestOf(data, `file${n}.bin`, 'application/octet-stream');
    const up = await upload(alice, A, data, `file${n}.bin`);
    expect(up.body.id).toBe(f.id);
    await serverHolds(walt, A, f.id);
    behaviours.set(f.id, b(f));
    return { f, data };
  }

  /** alice goes offline; mallory says she holds the files: she and the server are the sources. */
  async function aliceAway(files: F[]) {
    await alice.api('PUT', '/api/status', { status: 'offline' });
    for (const f of files) {
      expect(code(await mallory.c.req('file_held', { channelId: A, fileId: f.id }))).toBe('OK');
      const s = await walt.c.req('file_sources', { channelId: A, fileId: f.id });
      expect(s.body.holders).toEqual(['mallory']);
    }
  }

  /** A new member, carol<n>, reads the file through its local API. */
  async function newMemberReads(p: { f: F; data: Buffer }) {
    const name = 'carol' + ++n;
    const carol = await userPeer(srv, name);
    await carol.api('POST', `/api/channels/${A}/join`);
    const t0 = Date.now();
    const got = await getRaw(carol, `/api/channels/${A}/files/${p.f.id}`, 30000);
    const log = logOf(carol);
    return {
      status: got.status,
      whole: got.data.equals(p.data),
      type: got.headers.get('content-type'),
      ms: Date.now() - t0,
      asked: [...new Set(seeder.ops.filter((o) => o.user === name).map((o) => o.op))],
      blamed: log.some((l) => / ev=blame /.test(l) && l.includes('mallory')),
      fromServer: log.filter((l) => / ev=chunk /.test(l) && l.includes('from=server')).length,
    };
  }

  async function throughSeeder(b: Behaviour) {
    const p = await prepare(b);
    await aliceAway([p.f]);
    return newMemberReads(p);
  }

  test('a seeder that gives the manifest of another file (text/html) is blamed; the right file arrives', async () => {
    // §9.1: "A reader MUST refuse a manifest whose id is not the hash above"; §9.4: "a source
    // that sends a bad chunk or manifest is blamed (log blame) and not asked again".
    const evil = Buffer.from('<script>alert(1)</script>');
    const r = await throughSeeder((f) => (op, body, id, c) => {
      if (op === 'file_have') return c.reply(id, { all: true, chunks: [] });
      if (op === 'file_manifest')
        return c.reply(id, { manifest: { ...f.manifest, type: 'text/html' } });
      if (op === 'file_chunk') return c.reply(id, { data: evil.toString('base64') });
      c.reply(id, {});
    });
    expect(r.asked).toContain('file_have');
    expect({ status: r.status, whole: r.whole, type: r.type, blamed: r.blamed }).toEqual({
      status: 200,
      whole: true,
      type: 'application/octet-stream',
      blamed: true,
    });
  });

  test('a seeder that sends corrupted chunks, or the right chunk at the wrong index, is blamed; the file arrives whole', async () => {
    // §9.4: "A chunk is kept only when its SHA-256 is the manifest's; a source that sends a bad
    // chunk … is blamed … its chunks go to the others. What no peer could give is asked of the server".
    const r = await throughSeeder(
      honestBut((f, body, id, c) => {
        const i = body.index as number;
        const other = f.parts[(i + 1) % f.parts.length]!;
        const bad = Buffer.from(f.parts[i]!);
        bad[0] = bad[0]! ^ 0xff;
        c.reply(id, { data: (i % 2 ? other : bad).toString('base64') });
      }),
    );
    expect(r.asked).toContain('file_chunk');
    expect({
      status: r.status,
      whole: r.whole,
      blamed: r.blamed,
      server: r.fromServer > 0,
    }).toEqual({ status: 200, whole: true, blamed: true, server: true });
  });

  test('seeders that stall (never send a chunk; answer nothing; trickle a frame forever behind a huge timeoutMs) do not stall the download', async () => {
    // §9.4: a source "whose request failed (log drop)" is not asked again, "its chunks go to the
    // others. What no peer could give is asked of the server"; the reader "gets the manifest
    // from the first that gives a valid one (else from the server)". §4.1: heartbeats "with the
    // host's heartbeatMs/timeoutMs" (which the seeder chooses: here 2^31 ms).
    seeder.hello.timeoutMs = 2 ** 31;
    seeder.hello.heartbeatMs = 2 ** 30;
    const timers: NodeJS.Timeout[] = [];
    const silentChunks = await prepare(honestBut(() => undefined));
    const silent = await prepare(() => () => undefined);
    const trickle = await prepare(
      honestBut((f, body, id, c) => {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(400000);
        c.sock.write(
          Buffer.concat([h, Buffer.from('{"t":"res","id":' + id + ',"body":{"data":"')]),
        );
        timers.push(setInterval(() => !c.sock.destroyed && c.sock.write('AAAA'), 200));
      }),
    );
    try {
      await aliceAway([silentChunks.f, silent.f, trickle.f]);
      const [a, b, c] = await Promise.all([
        newMemberReads(silentChunks),
        newMemberReads(silent),
        newMemberReads(trickle),
      ]);
      // Observed: each takes ~15–20 s (the reader's request timeout), then the server serves.
      console.log('stalling seeders, ms:', a.ms, b.ms, c.ms);
      expect(a.asked).toContain('file_chunk');
      expect(b.asked).toContain('file_have');
      expect(c.asked).toContain('file_chunk');
      const out = (r: typeof a) => ({ status: r.status, whole: r.whole });
      expect({ silentChunks: out(a), silent: out(b), trickle: out(c) }).toEqual({
        silentChunks: { status: 200, whole: true },
        silent: { status: 200, whole: true },
        trickle: { status: 200, whole: true },
      });
    } finally {
      timers.forEach(clearInterval);
      delete seeder.hello.timeoutMs;
      delete seeder.hello.heartbeatMs;
    }
  }, 45000);

  test('a seeder that answers a chunk with a frame past the reader’s maximum is cut off; the file arrives', async () => {
    // §1: "A receiver MUST check N against its maximum as soon as the 4 length bytes have
    // arrived, before buffering the body, and answer a larger N with error E_FRAME_TOO_LARGE (fatal)".
    let big = 0;
    const r = await throughSeeder(
      honestBut((f, body, id, c) => {
        if (big++ % 2 === 0) {
          // A header announcing 64 MiB, then a few bytes: the reader must not wait for the rest.
          const h = Buffer.alloc(4);
          h.writeUInt32BE(64 * 1024 * 1024);
          c.sock.write(
            Buffer.concat([h, Buffer.from('{"t":"res","id":' + id + ',"body":{"data":"')]),
          );
        } else {
          // A real 2 MiB frame (over the 1 MiB default).
          c.send({ t: 'res', id, body: { data: 'A'.repeat(2 * 1024 * 1024) } });
        }
      }),
    );
    expect(r.asked).toContain('file_chunk');
    expect({ status: r.status, whole: r.whole }).toEqual({ status: 200, whole: true });
  }, 40000);

  test('a seeder that claims absurd chunk indexes and answers with the wrong shapes does not derail the download', async () => {
    // §9.3 file_have answers "{all: boolean, chunks: [index]}"; §1: a known member of the wrong
    // type in an answer body: "the requester treats that answer as failed".
    const r = await throughSeeder((f) => (op, body, id, c) => {
      if (op === 'file_have')
        return c.reply(id, { all: false, chunks: [-1, 1e12, 0.5, 'x', null, 3, 3, 3] });
      if (op === 'file_manifest')
        return c.reply(id, { manifest: { ...f.manifest, chunks: 'nope' } });
      if (op === 'file_chunk') return c.reply(id, { data: 12345 });
      c.reply(id, {});
    });
    expect(r.asked).toContain('file_have');
    expect({ status: r.status, whole: r.whole }).toEqual({ status: 200, whole: true });
  }, 40000);
});

// ---------------------------------------------------------------------------------------------
// A hostile author: mallory (raw) owns channel B, carol's peer is a member and reads B from the
// server. mallory backs her files up honestly, then signs messages whose references say what
// she likes.
// ---------------------------------------------------------------------------------------------
describe('a hostile author', () => {
  let srv: Server;
  let carol: Peer;
  let mallory: RawUser;
  let B: string;

  beforeAll(async () => {
    srv = await startServer(SRV);
    mallory = await registerLogin(srv, 'mallory');
    B = (await mallory.c.req('channel_create', { id: uuid7(), name: 'trap', allowVisitors: false }))
      .body.id;
    carol = await userPeer(srv, 'carol');
    expect((await carol.api('POST', `/api/channels/${B}/join`)).status).toBe(200);
  }, 30000);

  async function postFiles(refs: any[], text?: string) {
    const msg = signFilesMessage(mallory, B, refs, text);
    const r = await mallory.c.req('post', { message: msg });
    return { id: msg.id, res: r };
  }

  async function carolSees(id: string) {
    for (let i = 0; i < 50; i++) {
      const page = await carol.api('GET', `/api/channels/${B}/messages`);
      const m = page.body.messages?.find((x: any) => x.id === id);
      if (m) return m;
      await sleep(100);
    }
    return undefined;
  }

  // FINDING: carol's peer shows the message's lies (`cat.png image/png`, `a.txt` of 10 bytes,
  // `report.pdf application/pdf`) and serves the manifests' truth under them (text/html named
  // evil.html, 5000 bytes, a download saved as report.pdf.exe): the reader never compares a
  // manifest with the reference the author signed, which §9.1 says it MUST.
  test('a message whose file references differ from the manifests is refused by the reader', async () => {
    // §9.1: "A reader MUST refuse a manifest whose id is not the hash above, or whose members
    // differ from the message's reference."
    const html = await backup(
      mallory,
      B,
      Buffer.from('<html><script>parent.document.title="pwned"</script></html>'),
      'evil.html',
      'text/html',
    );
    const text = await backup(mallory, B, crypto.randomBytes(5000), 'a.txt', 'text/plain');
    const exe = await backup(
      mallory,
      B,
      crypto.randomBytes(3000),
      'report.pdf.exe',
      'application/octet-stream',
    );
    const lies = [
      {
        ...refOf(html.manifest),
        name: 'cat.png',
        type: 'image/png',
        image: { width: 1, height: 1 },
      },
      { ...refOf(text.manifest), size: 10 },
      { ...refOf(exe.manifest), name: 'report.pdf', type: 'application/pdf' },
    ];
    const { id, res } = await postFiles(lies, 'look');
    const m = res.body ? await carolSees(id) : undefined;
    // Either a replica refused the message, or carol's peer refuses each lying manifest: it never
    // serves the bytes under what the manifest says while the message says something else.
    const served: Record<string, string> = {};
    for (const f of lies) {
      const g = await getRaw(carol, `/api/channels/${B}/files/${f.id}`, 8000);
      served[f.name] =
        g.status === 200
          ? `200 ${g.headers.get('content-type')} ${g.data.length} bytes; ${g.headers.get('content-disposition')}`
          : 'refused';
    }
    const shown = (m?.files ?? []).map((f: any) => `${f.name} ${f.type} ${f.size}`);
    expect({ posted: code(res), shown, served }).toEqual({
      posted: code(res),
      shown,
      served: { 'cat.png': 'refused', 'a.txt': 'refused', 'report.pdf': 'refused' },
    });
  }, 40000);
  test('file names built to break Content-Disposition come out as one well-formed attachment name', async () => {
    // README Local API: the file is served with "Content-Disposition: attachment except PNG,
    // JPEG, GIF and WebP images"; §9.1 allows any name of 1–255 characters without control
    // characters or / \ (quotes, ; = % and any Unicode included).
    const names = [
      'a"; filename="evil.html',
      "x'; filename*=UTF-8''evil.html",
      'résumé 👋 ñ.txt',
      '\u202Egnp.exe',
      '%22%0d%0a.txt',
      'semi;colon=eq.txt',
      ' spaced .txt',
    ];
    const refs = [];
    for (const name of names)
      refs.push(
        refOf((await backup(mallory, B, crypto.randomBytes(100), name, 'text/plain')).manifest),
      );
    const { id, res } = await postFiles(refs);
    expect(code(res)).toBe('OK');
    expect(await carolSees(id)).toBeTruthy();
    const got: Record<string, unknown> = {};
    for (const f of refs) {
      const g = await getRaw(carol, `/api/channels/${B}/files/${f.id}`, 10000);
      const h = g.headers.get('content-disposition') ?? '';
      let parsed: unknown;
      try {
        const d = parseDisposition(h);
        const keys = d.params.map(([k]) => k);
        parsed = {
          type: d.type,
          keys:
            [...new Set(keys)].length === keys.length &&
            keys.every((k) => k === 'filename' || k === 'filename*'),
          name: dispositionName(d.params),
        };
      } catch (e) {
        parsed = 'malformed: ' + h;
      }
      got[f.name] = { status: g.status, parsed };
    }
    expect(got).toEqual(
      Object.fromEntries(
        names.map((n) => [n, { status: 200, parsed: { type: 'attachment', keys: true, name: n } }]),
      ),
    );
  }, 40000);

  test('references that break §9.1 or §2.2 are refused by the server and by a host', async () => {
    // §9.1: references `files: [{id, name, size, type, image?}] (1–10, each id once)`, with the
    // manifest's rules for each member; §2.2: `files` belongs to kind `message` only ("one that
    // belongs to no such member of its kind is refused (E_BAD_REQUEST)"); a message has "text or
    // files, at least one".
    const ok = refOf(manifestOf(crypto.randomBytes(10), 'ok.txt', 'text/plain').manifest);
    const other = (i: number) =>
      refOf(manifestOf(crypto.randomBytes(10), `f${i}.txt`, 'text/plain').manifest);
    const cases: Record<string, () => any> = {
      'eleven files': () =>
        signFilesMessage(
          mallory,
          B,
          Array.from({ length: 11 }, (_, i) => other(i)),
        ),
      'the same id twice': () => signFilesMessage(mallory, B, [ok, ok]),
      'no file and no text': () => signFilesMessage(mallory, B, []),
      'name with /': () => signFilesMessage(mallory, B, [{ ...ok, name: 'a/b.txt' }]),
      'name with CR LF': () =>
        signFilesMessage(mallory, B, [{ ...ok, name: 'a\r\nSet-Cookie: x=1' }]),
      'empty name': () => signFilesMessage(mallory, B, [{ ...ok, name: '' }]),
      'type not a MIME type': () => signFilesMessage(mallory, B, [{ ...ok, type: 'html' }]),
      'size 0': () => signFilesMessage(mallory, B, [{ ...ok, size: 0 }]),
      'id not a hash': () => signFilesMessage(mallory, B, [{ ...ok, id: 'x' }]),
      'preview text/html': () =>
        signFilesMessage(mallory, B, [
          {
            ...ok,
            type: 'image/png',
            image: { width: 1, height: 1, preview: 'data:text/html;base64,PHNjcmlwdD4=' },
          },
        ]),
      'an edit carrying files': () =>
        signFilesMessage(mallory, B, [ok], 'edited', Date.now(), { kind: 'edit', target: uuid7() }),
    };
    const atServer: Record<string, string> = {};
    for (const [what, make] of Object.entries(cases))
      atServer[what] = code(await mallory.c.req('post', { message: make() }));
    // The same at a host: carol's peer hosts C, mallory posts there over P2P.
    const C = (await carol.api('POST', '/api/channels', { name: 'hosted', allowVisitors: false }))
      .body.id;
    await mallory.c.req('channel_join', { channelId: C });
    await sleep(300);
    const { c } = await p2pConnect(carol, mallory);
    const atHost: Record<string, string> = {};
    const saveB = B;
    B = C;
    for (const [what, make] of Object.entries(cases))
      atHost[what] = code(await c.req('post', { message: make() }));
    B = saveB;
    // Control: a well-formed reference is taken by both.
    expect(code(await mallory.c.req('post', { message: signFilesMessage(mallory, B, [ok]) }))).toBe(
      'OK',
    );
    expect(code(await c.req('post', { message: signFilesMessage(mallory, C, [ok]) }))).toBe('OK');
    const want = Object.fromEntries(Object.keys(cases).map((k) => [k, 'E_BAD_REQUEST']));
    expect({ atServer, atHost }).toEqual({ atServer: want, atHost: want });
  });
});

// ---------------------------------------------------------------------------------------------
// The local API (README "Local API": POST/GET /api/channels/:id/files…). alice's peer runs with
// --max-file-bytes 1 MiB; dave's peer (default 25 MiB) is not a member of alice's channel. A fetch
// that gets nowhere gives up after 2 s at dave's peer (--file-patience-ms), not 20 s.
// ---------------------------------------------------------------------------------------------
describe('the local API', () => {
  let srv: Server;
  let alice: Peer;
  let dave: Peer;
  let A: string;
  let F: { id: string; url: string };
  let dataF: Buffer;

  beforeAll(async () => {
    srv = await startServer(SRV);
    [alice, dave] = await Promise.all([
      userPeer(srv, 'alice', ['--max-file-bytes', '1048576']),
      userPeer(srv, 'dave', ['--file-patience-ms', '2000']),
    ]);
    A = (await alice.api('POST', '/api/channels', { name: 'a', allowVisitors: false })).body.id;
    dataF = crypto.randomBytes(CHUNK + 7);
    F = (await upload(alice, A, dataF, 'f.bin')).body;
  }, 30000);

  test('files that could run script are served with nosniff, a sandboxing CSP and as attachments', async () => {
    // README: GET …/files/:fileId answers "Content-Type its type, X-Content-Type-Options:
    // nosniff, a sandboxing Content-Security-Policy, and Content-Disposition: attachment except
    // PNG, JPEG, GIF and WebP images (inline)"; issue 14: "an HTML or SVG file never runs script
    // in the app's origin".
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    );
    const html = Buffer.from('<html><script>alert(document.cookie)</script></html>');
    const cases: [string, Buffer, string, 'attachment' | 'inline'][] = [
      ['x.svg', svg, 'image/svg+xml', 'attachment'],
      ['x.html', html, 'text/html', 'attachment'],
      ['x.xhtml', html, 'application/xhtml+xml', 'attachment'],
      ['x2.html', html, 'text/html; charset=utf-8', 'attachment'],
      ['x3.html', html, 'text/html; x=image/png', 'attachment'],
      ['x4.svg', svg, 'image/svg+xml; y=image/png', 'attachment'],
      ['x.xml', svg, 'text/xml', 'attachment'],
      ['x.js', Buffer.from('alert(1)'), 'text/javascript', 'attachment'],
      ['pic.png', html, 'image/png', 'inline'],
      ['pic.webp', html, 'image/webp', 'inline'],
    ];
    const got: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const [name, data, type, disp] of cases) {
      const up = await upload(alice, A, data, name, type);
      expect(up.status, name).toBe(201);
      const g = await getRaw(alice, up.body.url);
      const csp = g.headers.get('content-security-policy') ?? '';
      got[name] = {
        status: g.status,
        nosniff: g.headers.get('x-content-type-options'),
        sandbox:
          /(^|;)\s*sandbox(\s*;|\s*$)/.test(csp) && !/allow-scripts|allow-same-origin/.test(csp),
        scriptSrc: /script-src[^;]*'(unsafe-inline|self)'|default-src[^;]*'self'/.test(csp),
        disposition: parseDisposition(g.headers.get('content-disposition') ?? 'none').type,
        sameBytes: g.data.equals(data),
      };
      want[name] = {
        status: 200,
        nosniff: 'nosniff',
        sandbox: true,
        scriptSrc: false,
        disposition: disp,
        sameBytes: true,
      };
    }
    expect(got).toEqual(want);
    // ?download=1 makes even an image an attachment.
    const png = (await upload(alice, A, html, 'dl.png', 'image/png')).body;
    const g = await getRaw(alice, png.url + '?download=1');
    expect(parseDisposition(g.headers.get('content-disposition')!).type).toBe('attachment');
  });

  test('uploads past the size limit are refused 413 E_FILE_TOO_LARGE, however they are sent', async () => {
    // README: POST …/files "at most 25 MiB (413 E_FILE_TOO_LARGE)"; `hchat peer --max-file-bytes`
    // "largest file you may attach"; §9.1: "size ≥ 1 bytes".
    const at = await upload(alice, A, crypto.randomBytes(1048576), 'exact.bin');
    const over = await upload(alice, A, crypto.randomBytes(1048577), 'over.bin');
    // Chunked, without Content-Length (curl streams 3 MiB with Transfer-Encoding: chunked).
    const big3 = path.join(alice.data, '..', `chunked-${process.pid}.bin`);
    fs.writeFileSync(big3, Buffer.alloc(3 * 1048576));
    const chunked = await new Promise<{ status: number; body: any }>((resolve) =>
      execFile(
        'curl',
        [
          '-sS',
          '-m',
          '10',
          '-o',
          '-',
          '-w',
          '\n%{http_code}',
          '-X',
          'POST',
          '-H',
          'authorization: Bearer ' + alice.token,
          '-H',
          'content-type: application/octet-stream',
          '-H',
          'transfer-encoding: chunked',
          '--data-binary',
          '@' + big3,
          alice.base + `/api/channels/${A}/files?name=chunked.bin`,
        ],
        (_err, out) => {
          fs.rmSync(big3, { force: true });
          const lines = String(out).trim().split('\n');
          const status = Number(lines.pop());
          let body: any = lines.join('\n');
          try {
            body = JSON.parse(body);
          } catch {}
          resolve({ status, body });
        },
      ),
    );
    const empty = await upload(alice, A, Buffer.alloc(0), 'empty.bin');
    // dave's peer keeps the default, 25 MiB.
    const D = (await dave.api('POST', '/api/channels', { name: 'd', allowVisitors: false })).body
      .id;
    const big = await upload(dave, D, Buffer.alloc(25 * 1048576 + 1), 'big.bin');
    expect({
      at: at.status,
      over: [over.status, over.body?.error?.code],
      chunked: [chunked.status, chunked.body?.error?.code],
      empty: empty.status,
      big: [big.status, big.body?.error?.code],
    }).toEqual({
      at: 201,
      over: [413, 'E_FILE_TOO_LARGE'],
      chunked: [413, 'E_FILE_TOO_LARGE'],
      empty: 400,
      big: [413, 'E_FILE_TOO_LARGE'],
    });
  });

  test('a client still sending a body that is too large reads the 413, and its connection lives on', async () => {
    // A browser uploading a file past the limit must show "files are at most …", not a network
    // error: the answer may come before the body is all sent, so the connection must stay open
    // while the rest arrives (and can carry the next request, HTTP/1.1 keep-alive).
    const port = Number(new URL(alice.base!).port);
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect');
    let got = '';
    let closed = false;
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('close', () => (closed = true));
    const size = 4 * 1048576;
    sock.write(
      `POST /api/channels/${A}/files?name=big.bin HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Authorization: Bearer ${alice.token}\r\nContent-Type: application/octet-stream\r\n` +
        `Content-Length: ${size}\r\n\r\n`,
    );
    const until = async (ok: () => boolean, what: string) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
      if (!ok()) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(got)}`);
    };
    await until(() => /\r\n\r\n[\s\S]*E_FILE_TOO_LARGE/.test(got), 'the 413');
    const first = got;
    got = '';
    // The body, sent after the answer came, in 64 KiB pieces.
    const piece = Buffer.alloc(65536);
    let writeError: unknown;
    sock.on('error', (e) => (writeError = e));
    for (let sent = 0; sent < size && !closed; sent += piece.length)
      if (!sock.write(piece)) await once(sock, 'drain');
    sock.write(
      `GET /api/me HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${alice.token}\r\n\r\n`,
    );
    await until(() => closed || /\r\n\r\n\{/.test(got), 'the answer to the next request');
    sock.destroy();
    expect({
      status: first.split('\r\n')[0],
      closesConnection: /^connection: close/im.test(first),
      writeError: writeError === undefined ? null : String(writeError),
      next: got.split('\r\n')[0],
    }).toEqual({
      status: 'HTTP/1.1 413 Payload Too Large',
      closesConnection: false,
      writeError: null,
      next: 'HTTP/1.1 200 OK',
    });
  });

  test('names, types, previews and sizes that §9.1 forbids are refused at upload', async () => {
    // §9.1: name "1–255 characters without control characters or / \"; type "a MIME type
    // (type/subtype, parameters allowed)"; width, height 1–65535; preview "a
    // data:image/(jpeg|png|webp);base64,… URL of at most 2,048 characters". README: X-Preview
    // "data:image/…" for images. A file the server would refuse could never be backed up.
    const d = Buffer.from('hello');
    const png = 'data:image/png;base64,' + Buffer.from('x').toString('base64');
    const cases: Record<string, Promise<{ status: number; body: any }>> = {
      'name with /': upload(alice, A, d, '../../etc/passwd'),
      'name with \\': upload(alice, A, d, '..\\..\\x'),
      'name with CR LF': upload(alice, A, d, 'a\r\nb.txt'),
      'name with NUL': upload(alice, A, d, 'a\u0000b'),
      'empty name': upload(alice, A, d, ''),
      'name of 256': upload(alice, A, d, 'n'.repeat(256)),
      'no name': fetch(alice.base + `/api/channels/${A}/files`, {
        method: 'POST',
        headers: { authorization: 'Bearer ' + alice.token, 'content-type': 'text/plain' },
        body: d,
      }).then(async (r) => ({ status: r.status, body: await r.text() })),
      'type garbage': upload(alice, A, d, 'a.txt', 'garbage'),
      'type with spaces inside': upload(alice, A, d, 'a.txt', 'text /html'),
      'width 0': upload(alice, A, d, 'a.png', 'image/png', {}, '&width=0&height=1'),
      'height 65536': upload(alice, A, d, 'a.png', 'image/png', {}, '&width=1&height=65536'),
      'width abc': upload(alice, A, d, 'a.png', 'image/png', {}, '&width=abc&height=1'),
      'preview text/html': upload(
        alice,
        A,
        d,
        'a.png',
        'image/png',
        { 'x-preview': 'data:text/html;base64,PHNjcmlwdD4=' },
        '&width=1&height=1',
      ),
      'preview svg': upload(
        alice,
        A,
        d,
        'a.png',
        'image/png',
        { 'x-preview': 'data:image/svg+xml;base64,PHN2Zz4=' },
        '&width=1&height=1',
      ),
      'preview javascript:': upload(
        alice,
        A,
        d,
        'a.png',
        'image/png',
        { 'x-preview': 'javascript:alert(1)' },
        '&width=1&height=1',
      ),
      'preview of 2049': upload(
        alice,
        A,
        d,
        'a.png',
        'image/png',
        { 'x-preview': png + 'A'.repeat(2049 - png.length) },
        '&width=1&height=1',
      ),
    };
    const got: Record<string, string> = {};
    for (const [what, p] of Object.entries(cases)) {
      const r = await p;
      // Refused (4xx), or taken with the forbidden part gone: never stored as sent.
      const kept =
        r.status === 201 &&
        (/[/\\\r\n\u0000]/.test(r.body.name) ||
          r.body.name.length > 255 ||
          !/^[^\s/]+\/[^\s/;]+/.test(r.body.type) ||
          (r.body.image?.preview &&
            !/^data:image\/(jpeg|png|webp);base64,/.test(r.body.image.preview)) ||
          (r.body.image?.preview?.length ?? 0) > 2048 ||
          (r.body.image &&
            !(
              r.body.image.width >= 1 &&
              r.body.image.height <= 65535 &&
              r.body.image.width <= 65535 &&
              r.body.image.height >= 1
            )));
      got[what] =
        r.status >= 400 && r.status < 500
          ? 'refused'
          : kept
            ? `stored as sent (${r.status})`
            : `taken, cleaned (${r.status})`;
    }
    console.log('uploads §9.1 forbids:', got);
    for (const [what, v] of Object.entries(got)) expect(v, what).not.toMatch(/^stored as sent/);
  });

  test('fileId and channel id path tricks reach nothing but files', async () => {
    // README: GET /api/channels/:id/files/:fileId reads "the file's bytes"; a file id is a
    // SHA-256 in base64url (§9.1). Nothing else of the data folder is reachable through it.
    const token = fs.readFileSync(path.join(alice.data, 'api-token'), 'utf8').trim();
    const tricks = [
      `/api/channels/${A}/files/..%2Fapi-token`,
      `/api/channels/${A}/files/..%2F..%2Fapi-token`,
      `/api/channels/${A}/files/%2e%2e%2fapi-token`,
      `/api/channels/${A}/files/..%5Capi-token`,
      `/api/channels/${A}/files/${F.id}%2F..%2F..%2Fapi-token`,
      `/api/channels/${A}/files/${F.id}%00`,
      `/api/channels/..%2F..%2F/files/${F.id}`,
      `/api/channels/${A}/files/${'A'.repeat(5000)}`,
      `/api/channels/${A}/files/peer.db/status`,
      `/api/channels/${A}/files/..%2Fpeer.db/status`,
      `/api/channels/${A}/files/connections.log`,
    ];
    const got: Record<string, number> = {};
    for (const t of tricks) {
      const g = await getRaw(alice, t, 8000);
      const text = g.data.toString('latin1');
      if (text.includes(token) || text.includes('SQLite format') || text.includes('ev=open'))
        got[t] = -1;
      else got[t] = g.status;
    }
    for (const [t, s] of Object.entries(got)) expect([400, 404], t).toContain(s);
  }, 60000);

  test('a message names only files attached to its own channel here', async () => {
    // README: POST /api/channels/:id/messages "files (1–10) must be attached here to this
    // channel first".
    const A2 = (await alice.api('POST', '/api/channels', { name: 'a2', allowVisitors: false })).body
      .id;
    const other = (await upload(alice, A2, Buffer.from('elsewhere'), 'e.txt', 'text/plain')).body;
    const ten = [];
    for (let i = 0; i < 11; i++)
      ten.push((await upload(alice, A, Buffer.from('n' + i), `n${i}.txt`, 'text/plain')).body.id);
    const send = (files: unknown) =>
      alice.api('POST', `/api/channels/${A}/messages`, { files }).then((r) => r.status);
    expect({
      otherChannel: await send([other.id]),
      unknown: await send([b64u(crypto.randomBytes(32))]),
      notAnId: await send(['../../api-token']),
      eleven: await send(ten),
      none: await send([]),
    }).toEqual({ otherChannel: 400, unknown: 400, notAnId: 400, eleven: 400, none: 400 });
  });

  test('a peer whose user does not read the channel serves none of its files, not even through a channel it reads', async () => {
    // README: POST …/files is "a member only (403 E_NOT_MEMBER)"; issue 14: "Rights as for
    // messages: only those who may read the channel"; §9.2 file_chunk "E_NOT_FOUND for a chunk
    // not held" through another channel.
    const D = (await dave.api('POST', '/api/channels', { name: 'dave', allowVisitors: false })).body
      .id;
    const up = await upload(dave, A, Buffer.from('x'), 'x.txt');
    const st = await getRaw(dave, `/api/channels/${A}/files/${F.id}/status`, 8000);
    const direct = await getRaw(dave, `/api/channels/${A}/files/${F.id}`, 8000);
    const fetchIt = await fetch(dave.base + `/api/channels/${A}/files/${F.id}/fetch`, {
      method: 'POST',
      headers: { authorization: 'Bearer ' + dave.token },
    });
    const through = await getRaw(dave, `/api/channels/${D}/files/${F.id}`, 12000);
    expect({
      upload: up.status,
      status: st.status,
      direct: direct.status,
      fetch: fetchIt.status,
      throughOwn: through.status === 200 ? 'served' : 'not served',
      leaked: direct.data.equals(dataF) || through.data.equals(dataF),
    }).toEqual({
      upload: 403,
      status: expect.toSatisfy((s: number) => s === 403 || s === 404),
      direct: expect.toSatisfy((s: number) => s === 403 || s === 404),
      fetch: expect.toSatisfy((s: number) => s === 403 || s === 404),
      throughOwn: 'not served',
      leaked: false,
    });
  }, 40000);
});

// ---------------------------------------------------------------------------------------------
// Deleting one's own channel (§9.4 Keep: "When a channel is deleted, the server drops its
// files") must not drop another channel's copy of the same bytes.
// ---------------------------------------------------------------------------------------------
describe('deleting a channel', () => {
  test('a user who deletes her own channel does not take another channel’s file from the server', async () => {
    // §9 intro: "on the server (one backup copy, whatever the member count)"; §9.4 Keep: the
    // server drops a deleted channel's files; §2.2: only "the channel's owner" deletes a channel.
    // mallory puts the same file (she holds it, or only its manifest) into her own channel, then
    // deletes that channel: alice's channel keeps its backup.
    const srv = await shared.get();
    const n = names();
    const alice = await userPeer(srv, n('alice'));
    const A = (await alice.api('POST', '/api/channels', { name: 'a', allowVisitors: false })).body
      .id;
    const bob = await registerLogin(srv, n('bob'));
    await bob.c.req('channel_join', { channelId: A });
    const data = crypto.randomBytes(2 * CHUNK);
    const F = manifestOf(data, 'meme.png', 'image/png', { width: 10, height: 10 });
    const up = await upload(alice, A, data, 'meme.png', 'image/png', {}, '&width=10&height=10');
    expect(up.body.id).toBe(F.id);
    await alice.api('POST', `/api/channels/${A}/messages`, { files: [F.id] });
    await serverHolds(bob, A, F.id);
    // alice goes offline: the server is the only source left.
    await alice.api('PUT', '/api/status', { status: 'offline' });

    const mallory = await registerLogin(srv, n('mallory'));
    const B = (
      await mallory.c.req('channel_create', { id: uuid7(), name: 'b', allowVisitors: false })
    ).body.id;
    const put = await mallory.c.req('file_put', { channelId: B, manifest: F.manifest });
    for (const i of put.body.missing as number[])
      await mallory.c.req('file_chunk_put', {
        channelId: B,
        fileId: F.id,
        index: i,
        data: F.parts[i]!.toString('base64'),
      });
    expect(code(await mallory.c.req('post', { message: signChannelDelete(mallory, B) }))).toBe(
      'OK',
    );
    expect(code(await mallory.c.req('history', { channelId: B, limit: 1 }))).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    await sleep(500);
    const after = {
      server: !!(await bob.c.req('file_sources', { channelId: A, fileId: F.id })).body?.server,
      manifest: code(await bob.c.req('file_manifest', { channelId: A, fileId: F.id })),
      chunk0: code(await bob.c.req('file_chunk', { channelId: A, fileId: F.id, index: 0 })),
      chunk1: code(await bob.c.req('file_chunk', { channelId: A, fileId: F.id, index: 1 })),
    };
    expect(after).toEqual({ server: true, manifest: 'OK', chunk0: 'OK', chunk1: 'OK' });
  });
});

describe('a visitor’s peer', () => {
  test('cannot attach a file, even to a channel that allows visitors', async () => {
    // README: POST /api/channels/:id/files is "a member only (403 E_NOT_MEMBER)"; "Visitors …
    // every write is refused with 403 E_VISITOR_READ_ONLY, by the peer and by the server".
    const srv = await shared.get();
    const n = names();
    const [alice, v] = await Promise.all([userPeer(srv, n('alice')), startPeer(srv)]);
    const P = (await alice.api('POST', '/api/channels', { name: 'p', allowVisitors: true })).body
      .id;
    expect((await v.api('POST', '/api/visitor', { name: n('guest') })).status).toBe(200);
    expect((await v.api('POST', `/api/channels/${P}/join`)).status).toBe(200);
    const up = await upload(v, P, Buffer.from('hi'), 'hi.txt', 'text/plain');
    expect(up.status).toBe(403);
    expect(up.body.error?.code).toMatch(/^E_(VISITOR_READ_ONLY|NOT_MEMBER)$/);
  });
});

describe('an expired grant', () => {
  test('a grant past its exp opens nothing at a peer', async () => {
    // §9.3: "A peer serves a request only when the grant … has not expired; else E_BAD_GRANT".
    // The server's clock runs 11 minutes behind (an operator's clock error; NODE_OPTIONS makes
    // its Date.now() lag): the grant it signs says exp = its now + 10 min, already past here.
    const shim = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hc-lag-')), 'lag.cjs');
    fs.writeFileSync(shim, 'const r = Date.now; Date.now = () => r() - 660000;\n');
    const before = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${before ?? ''} --require ${shim}`.trim();
    let srv: Server;
    try {
      srv = await startServer(SRV);
    } finally {
      if (before === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = before;
    }
    const alice = await userPeer(srv, 'alice');
    const A = (await alice.api('POST', '/api/channels', { name: 'a', allowVisitors: false })).body
      .id;
    const data = crypto.randomBytes(1000);
    const f = (await upload(alice, A, data, 'x.bin')).body;
    const bob = await registerLogin(srv, 'bob');
    await bob.c.req('channel_join', { channelId: A });
    const grant = (await bob.c.req('file_sources', { channelId: A, fileId: f.id })).body.grant;
    const claims = grantClaims(grant);
    expect(claims.exp).toBeLessThan(Date.now()); // the grant arrived expired
    expect(verifiesWith(bob.hello.publicKey, grant)).toBe(true);
    const { c } = await p2pConnect(alice, bob);
    expect({
      have: code(await c.req('file_have', { channelId: A, fileId: f.id, grant })),
      manifest: code(await c.req('file_manifest', { channelId: A, fileId: f.id, grant })),
      chunk: code(await c.req('file_chunk', { channelId: A, fileId: f.id, grant, index: 0 })),
    }).toEqual({ have: 'E_BAD_GRANT', manifest: 'E_BAD_GRANT', chunk: 'E_BAD_GRANT' });
    fs.rmSync(path.dirname(shim), { recursive: true, force: true });
  });
});

describe('the same file twice in one message', () => {
  // FINDING: POST /api/channels/:id/messages with `files: [f, f]` is taken (201) and stored in
  // the host's primary copy although §9.1 forbids it; the server refuses the host's `forward`
  // (E_BAD_REQUEST for the whole batch), so neither that message nor any later one of the
  // channel is ever backed up, and every member reading from the host gets 400 "history answer:
  // messages.0.files: each file once" instead of the channel.
  test('is refused or sent once by the local API, and never breaks the channel for its members', async () => {
    // §9.1: "files: [{id, name, size, type, image?}] (1–10, each id once)"; README: POST
    // …/messages "files (1–10) must be attached here to this channel first". A message that every
    // other replica must refuse must not enter the host's primary copy.
    const srv = await shared.get();
    const n = names();
    const [alice, carol] = await Promise.all([
      userPeer(srv, n('alice')),
      userPeer(srv, n('carol')),
    ]);
    const A = (await alice.api('POST', '/api/channels', { name: 'a', allowVisitors: false })).body
      .id;
    await carol.api('POST', `/api/channels/${A}/join`);
    const walt = await registerLogin(srv, n('walt'));
    await walt.c.req('channel_join', { channelId: A });
    const f = (await upload(alice, A, crypto.randomBytes(1000), 'f.txt', 'text/plain')).body;
    await serverHolds(walt, A, f.id);
    const twice = await alice.api('POST', `/api/channels/${A}/messages`, { files: [f.id, f.id] });
    const after = await alice.api('POST', `/api/channels/${A}/messages`, { text: 'after' });
    expect(after.status).toBe(201);
    // The message after it reaches the server's backup, and carol reads the channel.
    let backedUp = false;
    for (let i = 0; i < 40 && !backedUp; i++) {
      const h = await walt.c.req('history', { channelId: A, limit: 10 });
      backedUp = !!h.body?.messages?.some((m: any) => m.text === 'after');
      if (!backedUp) await sleep(100);
    }
    const page = await carol.api('GET', `/api/channels/${A}/messages`);
    expect({
      twice: twice.status === 400 ? 'refused' : 'taken',
      backedUp,
      carolReads: page.status,
      carolSeesAfter: !!page.body.messages?.some((m: any) => m.text === 'after'),
      carolError: page.body.error?.message,
    }).toEqual({
      twice: expect.anything(),
      backedUp: true,
      carolReads: 200,
      carolSeesAfter: true,
      carolError: undefined,
    });
  });
});
