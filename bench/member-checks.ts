/**
 * What a fan-out bench member does with every byte it receives, per protocol, as that protocol's
 * real clients do (issue 19, item 2): nothing is skimmed, every frame, packet or line is parsed
 * whole and checked.
 *
 * - Hybrid Chat (and the Node relay, which forwards the same push frames): the peer's own path
 *   (peer/rpc-link.ts onFrame, peer/replication.ts): protocol/frame.ts FrameDecoder (strict UTF-8,
 *   JSON.parse, an object with `t`), compact frames rebuilt as the peer rebuilds them
 *   (protocol/compact.ts RefReader: `ref` definitions, `m` pushes with the id derived from the
 *   content), the envelope's zod schema (Event, Response, ServerHello),
 *   the event's body against its zod schema (EVENTS.message: StoredMessage with its per-kind
 *   rule), the channel it is about; with `signatures`, also shared/signing.ts MessageVerifier
 *   (clock, id = hash of the content, the key certificate against the server's key, cached as a
 *   peer caches it, then the Ed25519 signature), which a peer runs on every message it does
 *   not hold yet.
 * - IRC: each line parsed into tags, prefix, command and params (RFC 1459 §2.3.1, RFC 2812
 *   §2.3.1), a PRIVMSG checked to be to the channel from a nick.
 * - MQTT: the `mqtt` package parses every packet whole (mqtt-packet: fixed header and its flags,
 *   remaining length, topic as UTF-8, packet id at QoS 1, payload); the member checks the topic
 *   and decodes the payload.
 * Every message's text is then checked to be the bench's (`<send ns>|<publisher>|padding`, 100
 * characters). A frame that fails a check throws: the member process stops and the run fails,
 * as a real peer closes a link that breaks the protocol.
 */
import type crypto from 'node:crypto';
import { FrameDecoder } from '../src/protocol/frame.js';
import {
  EVENTS,
  Event,
  OPS,
  Response,
  ServerHello,
  describeIssues,
  isOpName,
} from '../src/protocol/server-link.js';
import { MessageVerifier } from '../src/shared/signing.js';
import { COMPACT_OPS, RefReader } from '../src/protocol/compact.js';
import { publicKeyFromBase64 } from '../src/shared/tokens.js';

/** Length of every bench message's text (bench/run.ts payload). */
export const TEXT_LENGTH = 100;

/** The send time (process.hrtime ns) at the start of a bench message's text, checked. */
export function sentAt(text: string): bigint {
  const bar = text.indexOf('|');
  if (text.length !== TEXT_LENGTH || bar < 1 || bar > 20 || text.indexOf('|', bar + 1) < 0)
    throw new Error(`not a bench message: ${JSON.stringify(text.slice(0, 120))}`);
  return BigInt(text.slice(0, bar));
}

/** What a Hybrid Chat member checks beyond the frame and its schemas. */
export interface HchatChecks {
  /** The channel every message must be about. */
  channelId: string;
  /** Verify each message's certificate and signature (needs the server's hello, or serverKey). */
  signatures: boolean;
  /** True when the server speaks first with its hello (not the relay). */
  hello: boolean;
  /** The server's key (SPKI, base64) when no hello gives it (the relay's made-up server). */
  serverKey?: string;
  /** The frames are compact (§3.11) without a hello saying so (the relay's). */
  compact?: boolean;
}

/**
 * One member's reading end of a framed link: bytes in, every frame decoded and checked, the send
 * time of every message out (`onMessage`); answers to the member's own requests go to `onAnswer`,
 * pings are answered through `reply`.
 */
export class HchatReader {
  private readonly decoder = new FrameDecoder();
  private readonly verifier: MessageVerifier;
  private serverKey: crypto.KeyObject | undefined;
  private helloSeen: boolean;
  /** The numbers the server defined, once the link is compact (PROTOCOL.md §3.11). */
  private refs: RefReader | undefined;
  /** Request id → operation, so that its answer is checked against that operation's schema. */
  private readonly asked = new Map<number, string>();
  /** The code of a fatal error frame the server sent before closing (E_SLOW_CONSUMER, say). */
  fatal: string | undefined;

  constructor(
    private readonly checks: HchatChecks,
    private readonly onMessage: (sentNs: bigint) => void,
    private readonly onAnswer: (id: number, body: unknown) => void = () => undefined,
    private readonly reply: (frame: object) => void = () => undefined,
  ) {
    this.helloSeen = !checks.hello;
    if (checks.compact) this.refs = new RefReader();
    if (checks.serverKey) this.serverKey = publicKeyFromBase64(checks.serverKey);
    // One verifier per member, as each peer has its own (and its own certificate cache).
    this.verifier = new MessageVerifier(() => this.serverKey);
  }

  /** Notes a request sent, so its answer is validated against `op`'s answer schema. */
  asking(id: number, op: string): void {
    this.asked.set(id, op);
  }

  /** Every frame these bytes complete, decoded and checked; throws on the first bad one. */
  push(chunk: Buffer): void {
    this.decoder.feed(chunk);
    for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) this.frame(f);
  }

  private frame(f: Record<string, unknown>): void {
    if (!this.helloSeen) {
      const hello = ServerHello.safeParse(f);
      if (!hello.success) throw bad(`server hello: ${describeIssues(hello.error)}`, f);
      this.serverKey = publicKeyFromBase64(hello.data.publicKey);
      if (hello.data.compact !== undefined) this.refs = new RefReader();
      this.helloSeen = true;
      return;
    }
    switch (f.t) {
      case 'ref':
        if (!this.refs) throw bad('a ref frame on a link that is not compact', f);
        this.refs.define(f);
        return;
      case 'm':
        // A compact push: rebuilt as the peer's link does (peer/rpc-link.ts), then as an event.
        if (!this.refs) throw bad('an m frame on a link that is not compact', f);
        return this.message(this.refs.expand(f), f);
      case 'ev': {
        const ev = Event.safeParse(f);
        if (!ev.success) throw bad(`ev: ${describeIssues(ev.error)}`, f);
        const name = ev.data.ev;
        if (!Object.hasOwn(EVENTS, name)) return; // forward compatible, as a peer
        if (name === 'message') return this.message(ev.data.body, f);
        const body = EVENTS[name as keyof typeof EVENTS].safeParse(ev.data.body);
        if (!body.success) throw bad(`${name}: ${describeIssues(body.error)}`, f);
        return;
      }
      case 'res': {
        const res = Response.safeParse(f);
        if (!res.success) throw bad(`res: ${describeIssues(res.error)}`, f);
        const op = this.asked.get(res.data.id);
        this.asked.delete(res.data.id);
        if (res.data.error) throw bad(`${op}: ${res.data.error.code}`, f);
        if (op !== undefined && isOpName(op)) {
          const raw =
            this.refs && COMPACT_OPS.has(op) ? this.refs.expandPage(res.data.body) : res.data.body;
          const body = OPS[op].res.safeParse(raw);
          if (!body.success) throw bad(`${op} answer: ${describeIssues(body.error)}`, f);
        }
        this.onAnswer(res.data.id, res.data.body);
        return;
      }
      case 'ping':
        this.reply({ t: 'pong' });
        return;
      case 'pong':
        return;
      case 'error':
        // The server's last word before it closes (a slow consumer dropped): the close counts it.
        this.fatal = String(f.code);
        return;
      default:
        throw bad(`unknown frame type ${JSON.stringify(f.t)}`, f);
    }
  }

  /** A `message` event's body: its schema, its channel, its signature if asked, its text. */
  private message(raw: unknown, f: object): void {
    const body = EVENTS.message.safeParse(raw);
    if (!body.success) throw bad(`message: ${describeIssues(body.error)}`, f);
    const { channelId, message } = body.data;
    if (channelId !== this.checks.channelId || message.channelId !== channelId)
      throw bad('a message of another channel', f);
    if (this.checks.signatures) {
      const refused = this.verifier.check(message);
      if (refused) throw bad(`${refused.code}: ${refused.message}`, f);
    }
    this.onMessage(sentAt(message.text!));
  }
}

function bad(why: string, f: object): Error {
  return new Error(`a member refused a frame (${why}): ${JSON.stringify(f).slice(0, 300)}`);
}

/** An IRC message (RFC 2812 §2.3.1; IRCv3 message tags kept raw). */
export interface IrcMessage {
  tags?: string;
  /** `servername`, or `nick[[!user]@host]`. */
  prefix?: string;
  nick?: string;
  user?: string;
  host?: string;
  command: string;
  params: string[];
}

const COMMAND = /^(?:[A-Za-z]+|\d{3})$/;

/**
 * Parses one line (without its CR LF):
 *   message = [ "@" tags SPACE ] [ ":" prefix SPACE ] command [ params ]
 *   params  = *14( SPACE middle ) [ SPACE ":" trailing ]  /  14( SPACE middle ) [ SPACE [ ":" ] trailing ]
 * Throws on a line that is not a message (no command, a bad command, NUL, CR or LF inside).
 */
export function parseIrcLine(line: string): IrcMessage {
  if (/[\0\r\n]/.test(line)) throw new Error(`IRC line with NUL, CR or LF: ${line}`);
  let at = 0;
  const word = () => {
    const sp = line.indexOf(' ', at);
    const w = sp < 0 ? line.slice(at) : line.slice(at, sp);
    at = sp < 0 ? line.length : sp + 1;
    while (line.charCodeAt(at) === 32) at++; // servers may pad with several spaces
    return w;
  };
  const m: IrcMessage = { command: '', params: [] };
  if (line.charCodeAt(at) === 64 /* @ */) m.tags = word().slice(1);
  if (line.charCodeAt(at) === 58 /* : */) {
    const prefix = word().slice(1);
    if (!prefix) throw new Error(`IRC line with an empty prefix: ${line}`);
    m.prefix = prefix;
    const bang = prefix.indexOf('!');
    const atSign = prefix.indexOf('@');
    if (bang >= 0 || atSign >= 0 || !prefix.includes('.')) {
      const end = bang >= 0 ? bang : atSign >= 0 ? atSign : prefix.length;
      m.nick = prefix.slice(0, end);
      if (bang >= 0) m.user = prefix.slice(bang + 1, atSign > bang ? atSign : prefix.length);
      if (atSign >= 0) m.host = prefix.slice(atSign + 1);
    }
  }
  m.command = word();
  if (!COMMAND.test(m.command)) throw new Error(`IRC line with a bad command: ${line}`);
  while (at < line.length) {
    if (line.charCodeAt(at) === 58 /* : */ || m.params.length === 14) {
      m.params.push(line.slice(line.charCodeAt(at) === 58 ? at + 1 : at));
      break;
    }
    m.params.push(word());
  }
  return m;
}

/** Splits received text into CR LF lines; keeps the incomplete rest for the next chunk. */
export class IrcLines {
  private rest = '';

  constructor(private readonly onLine: (m: IrcMessage) => void) {}

  push(text: string): void {
    const buf = this.rest ? this.rest + text : text;
    let from = 0;
    for (let k = buf.indexOf('\r\n'); k >= 0; k = buf.indexOf('\r\n', from)) {
      if (k > from) this.onLine(parseIrcLine(buf.slice(from, k)));
      from = k + 2;
    }
    this.rest = buf.slice(from);
  }
}

/** A bench message in a PRIVMSG: to `channel`, from a nick; its send time. */
export function ircSentAt(m: IrcMessage, channel: string): bigint {
  if (m.params.length !== 2 || m.params[0] !== channel || !m.nick)
    throw new Error(`a PRIVMSG not from a nick to ${channel}: ${JSON.stringify(m)}`);
  return sentAt(m.params[1]!);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A bench message in an MQTT PUBLISH (as the `mqtt` client hands it over): its send time. */
export function mqttSentAt(topic: string, payload: Uint8Array, expected: string): bigint {
  if (topic !== expected) throw new Error(`a PUBLISH on ${topic}, subscribed to ${expected}`);
  return sentAt(utf8.decode(payload));
}
