import tls from 'node:tls';
import { PROTOCOL_VERSION } from '../src/protocol/common.js';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTestnet, signIn } from './testnet.js';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';

/** Writes raw bytes to the server port; resolves with the frames it answered before closing. */
function exchange(
  port: number,
  chunks: Buffer[],
  ms = 3000,
): Promise<{ frames: Record<string, unknown>[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    const d = new FrameDecoder();
    const frames: Record<string, unknown>[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ frames, closed: false });
    }, ms);
    s.on('data', (b) => {
      try {
        frames.push(...d.push(b));
      } catch {
        /* a broken answer shows up as missing frames */
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ frames, closed: true });
    });
    s.on('secureConnect', () => {
      for (const c of chunks) s.write(c);
    });
  });
}

const hello = encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' });

describe('bad input on the server port', () => {
  it('answers each kind of broken frame with an error frame naming it, then closes that connection only', async () => {
    const tn = await createTestnet({ peers: 2 });
    const [a, b] = tn.peers as [any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    const ch = (await a.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
      .body;
    await b.call('POST', `/api/channels/${ch.id}/join`);
    await a.call('POST', `/api/channels/${ch.id}/messages`, { text: 'before the storm' });

    const port = tn.serverPort;
    const cases: Array<[string, Buffer[], string]> = [
      ['HTTP request', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], 'E_FRAME_TOO_LARGE'],
      [
        'content before hello',
        [encodeFrame({ t: 'req', id: 1, op: 'get_list', body: {} })],
        'E_HELLO_REQUIRED',
      ],
      ['wrong version', [encodeFrame({ t: 'hello', v: 99, role: 'peer' })], 'E_VERSION_MISMATCH'],
      // §3.2: `v` is read first; anything but the number 4 is a mismatch, not a bad member.
      [
        'version as a string',
        [encodeFrame({ t: 'hello', v: '4', role: 'peer' })],
        'E_VERSION_MISMATCH',
      ],
      ['no version', [encodeFrame({ t: 'hello', role: 'peer' })], 'E_VERSION_MISMATCH'],
      ['bad JSON', [Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b])], 'E_BAD_FRAME'],
      ['unknown frame type', [hello, encodeFrame({ t: 'bogus' })], 'E_UNKNOWN_TYPE'],
      ['request without id', [hello, encodeFrame({ t: 'req', op: 'get_list' })], 'E_BAD_FRAME'],
      ['second hello', [hello, hello], 'E_BAD_FRAME'],
    ];
    for (const [what, chunks, code] of cases) {
      const r = await exchange(port, chunks);
      const err = r.frames.find((f) => f.t === 'error');
      expect(err, what).toMatchObject({ t: 'error', code });
      expect(typeof err!.message, what).toBe('string');
      expect(r.closed, what).toBe(true);
    }
    // A bad request body is refused with an answer; the connection stays usable.
    const r = await exchange(
      port,
      [
        hello,
        encodeFrame({ t: 'req', id: 5, op: 'login', body: { username: 7 } }),
        encodeFrame({ t: 'ping' }),
      ],
      500,
    );
    expect(r.frames).toContainEqual({
      t: 'res',
      id: 5,
      error: { code: 'E_BAD_REQUEST', message: expect.stringContaining('username') },
    });
    expect(r.frames).toContainEqual({ t: 'pong' });
    // An unknown operation is answered E_UNKNOWN_TYPE; the connection stays usable (§1).
    const unknown = await exchange(
      port,
      [
        hello,
        encodeFrame({ t: 'req', id: 1, op: 'drop_tables', body: {} }),
        encodeFrame({ t: 'ping' }),
      ],
      500,
    );
    expect(unknown.frames).toContainEqual({
      t: 'res',
      id: 1,
      error: { code: 'E_UNKNOWN_TYPE', message: expect.stringContaining('drop_tables') },
    });
    expect(unknown.frames).toContainEqual({ t: 'pong' });
    expect(unknown.closed).toBe(false);
    // Posting before login is refused.
    const early = await exchange(
      port,
      [hello, encodeFrame({ t: 'req', id: 6, op: 'post', body: { message: {} } })],
      500,
    );
    expect(early.frames.find((f) => f.t === 'res')).toMatchObject({
      id: 6,
      error: { code: 'E_BAD_REQUEST' },
    });
    const early2 = await exchange(
      port,
      [hello, encodeFrame({ t: 'req', id: 7, op: 'get_list', body: {} })],
      500,
    );
    expect(early2.frames.find((f) => f.t === 'res')).toMatchObject({
      id: 7,
      error: { code: 'E_AUTH_REQUIRED' },
    });

    // Random bytes, many times: the server keeps serving everyone else.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (bytes) => {
        await exchange(port, [hello, Buffer.from(bytes)], 200);
      }),
      { numRuns: 40 },
    );
    const post = await b.call('POST', `/api/channels/${ch.id}/messages`, { text: 'still here' });
    expect(post.body.state).toBe('delivered');
    const page = (await a.call('GET', `/api/channels/${ch.id}/messages`)).body;
    expect(page.messages.map((m: any) => m.text)).toEqual(['before the storm', 'still here']);
  });
});
