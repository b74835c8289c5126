/**
 * A P2P link through the server's relay (docs/PROTOCOL.md §3.10), for when no punch can work.
 * The member asks `relay` for the host's session and connects to the relay port with its token,
 * then waits for the relay's one byte saying the host is in; the host, told by the `relay`
 * event, connects with its own token and waits for the member's TLS ClientHello. What comes out
 * on either side is a plain socket the link runs over as over a direct one: TLS end to end, the
 * handshake of §4.1, the member as TLS client. The relay passes ciphertext and nothing else.
 */
import { dialTcp } from './dial-tcp.js';
import net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import { RELAY_PAIRED, relayHeader } from '../protocol/relay-header.js';
import { NAT_LIMITS } from '../shared/limits.js';

/** Where the relay listens: the server's address at the port `relay` named. */
export interface RelayAddress {
  ip: string;
  port: number;
  token: string;
}

/**
 * The member's side: connects, sends its header, and resolves once the relay says the host is
 * in (within NAT_LIMITS.relayPairMs); the socket is then paused, with nothing read beyond that
 * byte, for TLS to take over.
 */
export function relayDialMember(r: RelayAddress): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: r.ip, port: r.port });
    s.setNoDelay(true);
    const fail = (err: HchatError) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new HchatError('E_TIMEOUT', 'the host did not come to the relay')),
      NAT_LIMITS.relayPairMs + 1000,
    );
    s.once('connect', () => s.write(relayHeader(r.token)));
    s.once('error', (err) => fail(new HchatError('E_CONNECTION_CLOSED', err.message)));
    s.once('close', () => fail(new HchatError('E_CONNECTION_CLOSED', 'the relay closed')));
    s.once('data', (d: Buffer) => {
      // The host says nothing before our ClientHello: one byte, the relay's, is all there is.
      if (d.length !== 1 || d[0] !== RELAY_PAIRED)
        return fail(new HchatError('E_BAD_FRAME', 'the relay sent something else than paired'));
      clearTimeout(timer);
      s.pause();
      s.removeAllListeners('close');
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}

/**
 * The host's side: connects and sends its header; the socket is handed over at once, as the
 * member's ClientHello will come through it once the relay paired them (or it closes, when the
 * member never came).
 */
export async function relayDialHost(r: RelayAddress): Promise<net.Socket> {
  const s = await dialTcp(r.ip, r.port, 'the relay did not answer');
  s.write(relayHeader(r.token));
  return s;
}
