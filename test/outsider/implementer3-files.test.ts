// §9 files at the server, from the text alone.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import {
  startServer,
  connectUser,
  connectVisitor,
  makeItem,
  uuidv7,
  uname,
  verifyClaims,
  checkStored,
  b64u,
  CompactTables,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

const CH = 262144;
let srv: ServerProc;
let alice: Session;
let bob: Session; // compact reader
let chan: string;
let chan2: string;
const bytes = crypto.randomBytes(CH + 1000);
const sha = (b: Buffer) => b64u(crypto.createHash('sha256').update(b).digest());
const chunks = [bytes.subarray(0, CH), bytes.subarray(CH)];
const manifest = {
  name: 'data.bin',
  size: bytes.length,
  type: 'application/octet-stream',
  chunkBytes: CH,
  chunks: chunks.map(sha),
};
const fileId = sha(
  Buffer.from(
    JSON.stringify([
      'hchat/file/1',
      manifest.name,
      manifest.size,
      manifest.type,
      null,
      null,
      null,
      CH,
      manifest.chunks,
    ]),
    'utf8',
  ),
);

beforeAll(async () => {
  srv = await startServer();
  alice = await connectUser(srv, uname('fa'));
  bob = await connectUser(srv, uname('fb'), { compact: 1 });
  chan = uuidv7();
  chan2 = uuidv7();
  await alice.conn.ok('channel_create', { id: chan, name: 'files', allowVisitors: true });
  await alice.conn.ok('channel_create', { id: chan2, name: 'files2', allowVisitors: false });
  await bob.conn.ok('channel_join', { channelId: chan });
}, 60_000);
afterAll(async () => {
  alice?.conn.close();
  bob?.conn.close();
  await srv?.stop();
});

describe('implementer3 §9 files', () => {
  it('file_put answers {fileId, missing}; a chunk count that does not match size is E_BAD_REQUEST', async () => {
    const r = await alice.conn.ok('file_put', { channelId: chan, manifest });
    expect(r).toEqual({ fileId, missing: [0, 1] });
    const bad = await alice.conn.req('file_put', {
      channelId: chan,
      manifest: { ...manifest, chunks: [manifest.chunks[0]] },
    });
    expect(bad.error.code).toBe('E_BAD_REQUEST');
    expect((await bob.conn.req('file_put', { channelId: chan2, manifest })).error.code).toBe(
      'E_NOT_MEMBER',
    );
  });
  it('file_chunk_put: wrong bytes E_BAD_CHUNK; non-canonical base64 E_BAD_REQUEST; then complete', async () => {
    const wrong = await alice.conn.req('file_chunk_put', {
      channelId: chan,
      fileId,
      index: 1,
      data: crypto.randomBytes(1000).toString('base64'),
    });
    expect(wrong.error.code).toBe('E_BAD_CHUNK');
    const d1 = chunks[1]!.toString('base64');
    const nc = await alice.conn.req('file_chunk_put', {
      channelId: chan,
      fileId,
      index: 1,
      data: d1.replace(/=+$/, ''),
    });
    expect(nc.error?.code).toBe('E_BAD_REQUEST');
    expect(
      await alice.conn.ok('file_chunk_put', { channelId: chan, fileId, index: 1, data: d1 }),
    ).toEqual({ complete: false });
    expect(
      await alice.conn.ok('file_chunk_put', {
        channelId: chan,
        fileId,
        index: 0,
        data: chunks[0]!.toString('base64'),
      }),
    ).toEqual({ complete: true });
    expect(
      (
        await alice.conn.req('file_chunk_put', {
          channelId: chan2,
          fileId,
          index: 0,
          data: chunks[0]!.toString('base64'),
        })
      ).error.code,
    ).toBe('E_NOT_FOUND');
  });
  it('the same bytes put to another channel are all missing there', async () => {
    expect(await alice.conn.ok('file_put', { channelId: chan2, manifest })).toEqual({
      fileId,
      missing: [0, 1],
    });
  });
  it('file_manifest / file_chunk / file_held / file_sources (grant claims)', async () => {
    expect(await bob.conn.ok('file_manifest', { channelId: chan, fileId })).toEqual({ manifest });
    const c = await bob.conn.ok('file_chunk', { channelId: chan, fileId, index: 1 });
    expect(Buffer.from(c.data, 'base64').equals(chunks[1]!)).toBe(true);
    expect(
      (await bob.conn.req('file_chunk', { channelId: chan, fileId, index: 2 })).error.code,
    ).toBe('E_NOT_FOUND');
    expect((await bob.conn.req('file_manifest', { channelId: chan2, fileId })).error.code).toBe(
      'E_NOT_MEMBER',
    );
    await alice.conn.ok('submit_info', {
      ip: '127.0.0.1',
      port: 5000,
      udpPort: 5001,
      status: 'online',
    });
    expect(await alice.conn.ok('file_held', { channelId: chan, fileId })).toEqual({});
    const s = await bob.conn.ok('file_sources', { channelId: chan, fileId });
    expect(s.holders).toEqual([alice.username]);
    expect(s.server).toBe(true);
    const g = verifyClaims(s.grant, bob.serverKey);
    expect(g).toMatchObject({
      typ: 'file',
      sid: bob.sessionId,
      u: bob.username,
      r: 'user',
      c: chan,
    });
    expect(g.exp - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(g.exp - Date.now()).toBeLessThanOrEqual(10 * 60_000);
  });
  it('a visitor may read a visitors channel file; file_sources for it names only the owner', async () => {
    const v = await connectVisitor(srv, 'Fileguest');
    await v.conn.ok('channel_join', { channelId: chan });
    expect((await v.conn.ok('file_manifest', { channelId: chan, fileId })).manifest).toEqual(
      manifest,
    );
    const s = await v.conn.ok('file_sources', { channelId: chan, fileId });
    expect(s.holders).toEqual([alice.username]);
    expect((await v.conn.req('file_put', { channelId: chan, manifest })).error.code).toBe(
      'E_VISITOR_READ_ONLY',
    );
    v.conn.close();
  });
  it('a message with files: digest covers the file list; id derived; compact push rebuilds it', async () => {
    const ref = { id: fileId, name: manifest.name, size: manifest.size, type: manifest.type };
    const item = makeItem(alice, chan, { files: [ref] });
    const r = await alice.conn.ok('post', { message: item });
    expect(r.duplicate).toBe(false);
    const tabs = new CompactTables();
    let m: any;
    for (;;) {
      const f = await bob.conn.next((x) => x.t === 'ref' || x.t === 'm');
      if (f.t === 'ref') tabs.take(f);
      else {
        m = tabs.rebuild(f);
        break;
      }
    }
    expect(m.files).toEqual([ref]);
    expect(m.id).toBe(item.id);
    expect(checkStored(m, bob.serverKey)).toEqual([]);
    const noBody = makeItem(alice, chan, {});
    expect((await alice.conn.req('post', { message: noBody })).error.code).toBe('E_BAD_REQUEST');
  });
});
