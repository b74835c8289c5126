/**
 * The fan-out bench's members check what real clients check (bench/member-checks.ts): a Hybrid
 * Chat push is decoded and validated against the protocol's schemas, its signature verified in
 * the signature mode; IRC lines are parsed into prefix, command and params; MQTT payloads and
 * topics are checked. A check that passed everything would make the bench's figures cheaper
 * than a real client's, so each refusal is tested.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/protocol/frame.js';
import { HchatReader, ircSentAt, mqttSentAt, parseIrcLine } from '../bench/member-checks.js';
import { PushFrames } from '../bench/relay-frames.js';

const CHANNEL = '01900000-0000-7000-8000-00000000be03';
const text = (ns: bigint) => `${ns}|0|${'x'.repeat(100)}`.slice(0, 100);

/** The send times a reader gave, and the reader. */
function reader(signatures: boolean, frames: PushFrames) {
  const got: bigint[] = [];
  const r = new HchatReader(
    { channelId: CHANNEL, signatures, hello: false, serverKey: frames.serverKey, compact: true },
    (ns) => got.push(ns),
  );
  // The channel's and the publisher's definitions come first, as the relay's members get them.
  for (const d of frames.prelude(0)) r.push(d);
  return { r, got };
}

/** A compact push frame with its message changed after signing (the frame re-encoded). */
function altered(frame: Buffer, change: (m: Record<string, any>) => void): Buffer {
  const f = JSON.parse(frame.subarray(4).toString('utf8'));
  change(f);
  return encodeFrame(f);
}

describe('Hybrid Chat members', () => {
  const frames = new PushFrames(CHANNEL, 1);

  it('decode push frames split anywhere and check their signatures', () => {
    const { r, got } = reader(true, frames);
    const bytes = Buffer.concat([frames.frame(0, 1, text(111n)), frames.frame(0, 2, text(222n))]);
    for (let i = 0; i < bytes.length; i++) r.push(bytes.subarray(i, i + 1));
    expect(got).toEqual([111n, 222n]);
  });

  it('refuse a message whose text changed after signing only when checking signatures', () => {
    const frame = altered(frames.frame(0, 1, text(333n)), (m) => {
      m.text = text(334n);
    });
    const json = reader(false, frames);
    json.r.push(frame);
    expect(json.got).toEqual([334n]);
    expect(() => reader(true, frames).r.push(frame)).toThrow(/E_BAD_SIGNATURE/);
  });

  it('refuse a frame the protocol schema refuses, or of another channel', () => {
    const badSeq = altered(frames.frame(0, 1, text(1n)), (m) => {
      m.seq = 0;
    });
    expect(() => reader(false, frames).r.push(badSeq)).toThrow(/seq/);
    const noSig = altered(frames.frame(0, 1, text(1n)), (m) => {
      delete m.sig;
    });
    expect(() => reader(false, frames).r.push(noSig)).toThrow(/sig/);
    const other = new PushFrames('01900000-0000-7000-8000-00000000be04', 1);
    const r = reader(false, frames).r;
    for (const d of other.prelude(0)) r.push(d);
    expect(() => r.push(other.frame(0, 1, text(1n)))).toThrow(/channel/);
    // A number the link never defined: the link is out of step, the member stops.
    expect(() =>
      reader(false, frames).r.push(altered(frames.frame(0, 1, text(1n)), (m) => (m.k = 9))),
    ).toThrow(/certificate number 9 is not defined/);
    expect(() => reader(false, frames).r.push(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]))).toThrow(
      /"t"/,
    );
  });

  it('refuse a text that is not a bench message', () => {
    expect(() => reader(false, frames).r.push(frames.frame(0, 1, 'hello'))).toThrow(
      /not a bench message/,
    );
  });
});

describe('IRC members', () => {
  it('parse prefix, command and params (RFC 2812 §2.3.1)', () => {
    const m = parseIrcLine(`:pub0!~pub0@localhost PRIVMSG #bench :${text(42n)}`);
    expect(m).toMatchObject({
      prefix: 'pub0!~pub0@localhost',
      nick: 'pub0',
      user: '~pub0',
      host: 'localhost',
      command: 'PRIVMSG',
      params: ['#bench', text(42n)],
    });
    expect(ircSentAt(m, '#bench')).toBe(42n);
    expect(() => ircSentAt(m, '#other')).toThrow();
    const welcome = parseIrcLine(':bench.hchat.local 001 w1x2 :Welcome to IRC');
    expect(welcome).toMatchObject({ command: '001', params: ['w1x2', 'Welcome to IRC'] });
    expect(welcome.nick).toBeUndefined();
    expect(parseIrcLine('PING :bench.hchat.local')).toEqual({
      command: 'PING',
      params: ['bench.hchat.local'],
    });
    expect(parseIrcLine('@time=x :n!u@h JOIN #bench')).toMatchObject({
      tags: 'time=x',
      nick: 'n',
      params: ['#bench'],
    });
    // Fourteen middles: the rest is the trailing parameter, with or without its colon.
    const many = parseIrcLine(`CMD ${Array.from({ length: 16 }, (_, i) => `p${i}`).join(' ')}`);
    expect(many.params).toHaveLength(15);
    expect(many.params[14]).toBe('p14 p15');
  });

  it('refuse lines that are not messages', () => {
    expect(() => parseIrcLine(':server.only')).toThrow(/command/);
    expect(() => parseIrcLine(':n!u@h PRIV-MSG #bench :x')).toThrow(/command/);
    expect(() => parseIrcLine('PRIVMSG #bench :a\0b')).toThrow(/NUL/);
    expect(() => ircSentAt(parseIrcLine('PRIVMSG #bench :x'), '#bench')).toThrow(/nick/);
  });
});

describe('MQTT members', () => {
  it('check the topic and decode the payload', () => {
    const payload = Buffer.from(text(7n));
    expect(mqttSentAt('t/1', payload, 't/1')).toBe(7n);
    expect(() => mqttSentAt('t/2', payload, 't/1')).toThrow(/subscribed/);
    expect(() => mqttSentAt('t/1', Buffer.from([0xff, 0xfe]), 't/1')).toThrow();
  });
});
