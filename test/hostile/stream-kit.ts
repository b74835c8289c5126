/**
 * Hostile-client kit for the livestream boundary (docs/PROTOCOL.md §5), written from the document:
 * a viewer that holds its own P2P link to the streamer and a plain UDP socket, builds its RTCP by
 * hand, and counts every byte that reaches it. Tests make it misbehave (NACK storms, stall
 * reports) while honest peers of a testnet watch alongside. It keys its hop from its parent
 * (`stream_key`, §5.4) and speaks SRTP/SRTCP with stream/srtp.ts, checked against the RFC's
 * vectors and ffmpeg.
 */
import dgram from 'node:dgram';
import type { HostLink } from '../../src/peer/host-link.js';
import type { TrackerEntry } from '../../src/protocol/common.js';
import type { StreamParent } from '../../src/protocol/stream-ops.js';
import { SrtpContext, decodeMasterKey } from '../../src/stream/srtp.js';
import { expect } from 'vitest';
import type { RawSession, TestPeer, Testnet } from '../testnet.js';
import { createTestnet, rawHostLink, rawSession, signIn, waitFor } from '../testnet.js';

/** The parent a viewer was told about (watch answer or `stream_parent`). */
export type KitParent = StreamParent;

/** A P2P link to the peer at a StreamParent (a relay), as the raw session. */
export function parentLink(p: StreamParent, s: RawSession): HostLink {
  return rawHostLink(
    {
      username: p.username,
      role: p.role,
      ip: p.ip,
      port: p.port,
      udpPort: p.udpPort,
      sessionId: p.sessionId,
      status: 'online',
      hosts: [],
      live: [],
    },
    s,
  );
}

/**
 * Opens an authenticated P2P link to the streamer as a fresh session of its own (a visitor when
 * `how` has a name). The ONE place that knows how a viewer authenticates on the P2P link: adapt
 * it when the hello changes.
 */
export async function openViewerLink(
  net: Testnet,
  streamer: string,
  how: { username: string; password: string } | { name: string },
): Promise<HostLink> {
  return (await openViewerSession(net, streamer, how)).link;
}

/** openViewerLink, with the session it opened (to dial relays as the same session). */
export async function openViewerSession(
  net: Testnet,
  streamer: string,
  how: ({ username: string; password: string } | { name: string }) & { channelId?: string },
): Promise<{ link: HostLink; session: RawSession }> {
  const raw = await net.rawLink();
  const { channelId, ...who } = how;
  const s = await rawSession(raw, who);
  // The tracker shows a session only the streamers of channels it reads (PROTOCOL.md §3.5):
  // the streamer's own, or the one named (where the streamer is a member).
  const { channels } = await raw.request('directory', {});
  for (const c of channels)
    if (c.owner === streamer || c.id === channelId)
      await raw.request('channel_join', { channelId: c.id });
  const entry = (await raw.request('get_list', {})).peers.find(
    (e: TrackerEntry) => e.username === streamer,
  );
  if (!entry) throw new Error(`${streamer} is not in the tracker list`);
  const link = rawHostLink(entry, s);
  await link.start();
  return { link, session: s };
}

/** Builds a generic NACK (RFC 4585 §6.2.1) from raw FCI entries, as an attacker likes them. */
export function nackBytes(mediaSsrc: number, fci: Array<[pid: number, blp: number]>): Buffer {
  const b = Buffer.alloc(12 + fci.length * 4);
  b[0] = 0x81;
  b[1] = 205;
  b.writeUInt16BE(2 + fci.length, 2);
  b.writeUInt32BE(0x0badbeef, 4);
  b.writeUInt32BE(mediaSsrc >>> 0, 8);
  fci.forEach(([pid, blp], i) => {
    b.writeUInt16BE(pid & 0xffff, 12 + i * 4);
    b.writeUInt16BE(blp & 0xffff, 14 + i * 4);
  });
  return b;
}

/**
 * A viewer on a raw UDP socket: keys its hop from its parent, answers consent checks from it,
 * counts what arrives.
 */
export class RawViewer {
  readonly socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  parent?: KitParent;
  stream?: { videoSsrc: number; audioSsrc: number };
  /** Answer consent checks (APP `HCCQ`) from the parent. */
  answerConsent = true;
  /** Bytes of RTP seen for the first time, and of RTP seen again (retransmits). */
  uniqueBytes = 0;
  duplicateBytes = 0;
  rtcpBytes = 0;
  /** Bytes of RTP of SSRCs not of the watched stream. */
  otherSsrcBytes = 0;
  /** Bytes of RTCP this viewer sent (NACKs and consent answers). */
  sentBytes = 0;
  /** Recent video sequence numbers received, newest last. */
  readonly videoSeqs: number[] = [];
  /** Datagrams that did not unprotect (no key yet, or refused). */
  refused = 0;
  private readonly seen = new Set<string>();
  /** The hop's contexts: parent → us (SRTP, SRTCP), us → parent (SRTCP). */
  private down?: SrtpContext;
  private up?: SrtpContext;

  private constructor(
    readonly link: HostLink,
    readonly session: RawSession,
    readonly streamId: string,
  ) {
    this.socket.on('message', (d, r) => this.receive(d, { ip: r.address, port: r.port }));
    link.on('event', (name: string, body: any) => {
      if (name === 'stream_parent' && body?.streamId === streamId) {
        this.parent = body.parent;
        void this.key().catch(() => undefined);
      }
    });
  }

  /** Asks the current parent for the hop's keys. */
  async key(): Promise<void> {
    const p = this.parent!;
    const fromStreamer = p.sessionId === this.link.entry.sessionId;
    const link = fromStreamer ? this.link : parentLink(p, this.session);
    try {
      if (!fromStreamer) await link.start();
      const k = await link.request('stream_key', { streamId: this.streamId });
      this.down = new SrtpContext(decodeMasterKey(k.down));
      this.up = new SrtpContext(decodeMasterKey(k.up));
    } finally {
      if (!fromStreamer) link.stop();
    }
  }

  /** Joins a stream's relay tree over its own link, with media to its raw socket. */
  static async watch(
    net: Testnet,
    streamer: string,
    streamId: string,
    how: ({ username: string; password: string } | { name: string }) & { channelId?: string },
  ): Promise<RawViewer> {
    const { link, session } = await openViewerSession(net, streamer, how);
    const v = new RawViewer(link, session, streamId);
    await new Promise<void>((r) => v.socket.bind(0, '127.0.0.1', r));
    // A P2P port where nothing listens: placed like any viewer, it would never serve keys.
    const a = await link.request('watch', { streamId, udpPort: v.port, p2pPort: 9 });
    v.parent = a.parent;
    v.stream = { videoSsrc: a.stream.videoSsrc, audioSsrc: a.stream.audioSsrc };
    await v.key();
    return v;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends an RTCP packet to the parent, as SRTCP under the hop's key. */
  send(rtcp: Buffer): Promise<void> {
    return this.sendRaw(this.up!.protectRtcp(rtcp));
  }

  /** Sends a datagram to the parent as it is. */
  sendRaw(d: Buffer): Promise<void> {
    this.sentBytes += d.length;
    return new Promise((r) =>
      this.socket.send(d, this.parent!.udpPort, this.parent!.ip, () => r()),
    );
  }

  close(): void {
    this.link.stop();
    this.socket.close();
  }

  private receive(datagram: Buffer, from: { ip: string; port: number }): void {
    const rtcp = datagram.length >= 2 && datagram[1]! >= 192 && datagram[1]! <= 223;
    const r = !this.down
      ? undefined
      : rtcp
        ? this.down.unprotectRtcp(datagram)
        : this.down.unprotectRtp(datagram);
    if (!r?.ok) {
      this.refused++;
      return;
    }
    const d = r.packet;
    if (rtcp) {
      this.rtcpBytes += d.length;
      // APP (PT 204), name "HCCQ": echo the nonce as "HCCR", to the parent only.
      const p = this.parent;
      if (
        this.answerConsent &&
        p &&
        from.ip === p.ip &&
        from.port === p.udpPort &&
        d.length >= 12 &&
        d[1] === 204 &&
        d.toString('latin1', 8, 12) === 'HCCQ'
      ) {
        const a = Buffer.from(d);
        a.write('HCCR', 8, 'latin1');
        void this.send(a);
      }
      return;
    }
    if (d.length < 12) return;
    const ssrc = d.readUInt32BE(8);
    if (this.stream && ssrc !== this.stream.videoSsrc && ssrc !== this.stream.audioSsrc) {
      this.otherSsrcBytes += d.length;
      return;
    }
    const seq = d.readUInt16BE(2);
    const key = `${ssrc}:${seq}`;
    if (this.seen.has(key)) {
      this.duplicateBytes += d.length;
      return;
    }
    this.seen.add(key);
    this.uniqueBytes += d.length;
    if (ssrc === this.stream?.videoSsrc) {
      this.videoSeqs.push(seq);
      if (this.videoSeqs.length > 1000) this.videoSeqs.shift();
    }
  }
}

/** A streamer live in a channel that allows visitors, and `n` honest member viewers watching. */
export async function liveStage(
  n: number,
  fanout = 4,
): Promise<{ net: Testnet; streamer: TestPeer; viewers: TestPeer[]; streamId: string }> {
  const net = await createTestnet();
  const streamer = await net.addPeer('streamer', { streamFanout: fanout });
  await signIn(streamer, 'streamer');
  const c = await streamer.call('POST', '/api/channels', { name: 'live', allowVisitors: true });
  const viewers: TestPeer[] = [];
  for (let i = 0; i < n; i++) {
    const v = await net.addPeer(`honest${i}`, { streamFanout: fanout });
    await signIn(v, `honest${i}`);
    expect((await v.call('POST', `/api/channels/${c.body.id}/join`)).status).toBe(200);
    viewers.push(v);
  }
  const live = await streamer.call('POST', `/api/channels/${c.body.id}/streams`, {
    source: 'synthetic',
    fps: 30,
    bitrateKbps: 400,
  });
  expect(live.status).toBe(201);
  const streamId = live.body.streamId as string;
  // One at a time, so that the tree's shape is known.
  for (const v of viewers)
    await waitFor(
      async () => (await v.call('POST', `/api/streams/${streamId}/watch`)).status === 200,
      10_000,
      'watch',
    );
  return { net, streamer, viewers, streamId };
}
