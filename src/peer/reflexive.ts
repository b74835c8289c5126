/**
 * The candidates a peer announces in its tracker entry (docs/PROTOCOL.md §3.8): its own P2P
 * addresses (`host`), and the public ones the server sees it at (`srflx`): over TCP the address
 * of its server link (`reflect`), over UDP that of its media socket (a STUN Binding to the
 * server's STUN port, from that very socket). A server-reflexive address equal to the host one
 * says nothing (no NAT between): it is left out.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import type { Candidate } from '../protocol/common.js';
import { BINDING_SUCCESS, bindingRequest, parseStun } from '../protocol/stun.js';
import { NAT_LIMITS } from '../shared/limits.js';
import type { MediaSocket } from '../stream/media-socket.js';
import type { ServerLink } from './server-link.js';

/** Where the peer listens, as it advertises it. */
export interface Advertised {
  ip: string;
  port: number;
  udpPort: number;
}

/** The peer's own P2P addresses, as it advertises them. */
export function hostCandidates(own: Advertised): Candidate[] {
  return [
    { type: 'host', proto: 'tcp', ip: own.ip, port: own.port },
    { type: 'host', proto: 'udp', ip: own.ip, port: own.udpPort },
  ];
}

/** Where the server sees this peer (TCP over `link`, UDP from `media`), where it is not `own`. */
export async function reflexiveCandidates(
  link: ServerLink,
  media: MediaSocket,
  own: Advertised,
): Promise<Candidate[]> {
  const out: Candidate[] = [];
  let seen: { ip: string; port: number; udpPort?: number };
  const base = link.localPort;
  try {
    seen = await link.request('reflect', {});
  } catch (err) {
    // A server from before §3.8 answers E_UNKNOWN_TYPE: host candidates only. A link that
    // dropped meanwhile learns them again on its next connection.
    if (err instanceof HchatError) return out;
    throw err;
  }
  if (seen.ip !== own.ip)
    out.push({ type: 'srflx', proto: 'tcp', ip: seen.ip, port: seen.port, base });
  const server = hostOf(link.address);
  if (seen.udpPort !== undefined && net.isIPv4(server)) {
    const mapped = await stunBinding(media, { ip: server, port: seen.udpPort });
    if (mapped && mapped.ip !== own.ip)
      out.push({
        type: 'srflx',
        proto: 'udp',
        ip: mapped.ip,
        port: mapped.port,
        base: own.udpPort,
      });
  }
  return out;
}

/**
 * Asks the server's STUN port where `media`'s datagrams come from: twice at most, waiting
 * NAT_LIMITS.stunWaitMs each time; undefined when no answer came (UDP blocked, or no server),
 * or when `media` closed meanwhile (the peer stopping).
 */
export async function stunBinding(
  media: MediaSocket,
  server: { ip: string; port: number },
): Promise<{ ip: string; port: number } | undefined> {
  const txId = crypto.randomBytes(12);
  try {
    return await new Promise((resolve) => {
      let tries = 0;
      let timer: NodeJS.Timeout | undefined;
      media.onStun = (d, from) => {
        const m = parseStun(d);
        if (from.ip !== server.ip || from.port !== server.port) return;
        if (m?.type !== BINDING_SUCCESS || !m.transactionId.equals(txId) || !m.mapped) return;
        clearTimeout(timer);
        resolve(m.mapped);
      };
      const ask = () => {
        if (media.closed || tries++ === 2) return resolve(undefined);
        media.sendPlain(bindingRequest(txId), server);
        timer = setTimeout(ask, NAT_LIMITS.stunWaitMs);
        timer.unref();
      };
      ask();
    });
  } finally {
    media.onStun = undefined;
  }
}

/** The host part of a server address, `host:port` or `[ipv6]:port`. */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}
