/**
 * A TCP connection made within a time limit: a P2P link's direct dial (PROTOCOL.md §4.1) and a
 * host's connection to the server's relay (§3.10).
 */
import net from 'node:net';
import { HchatError } from '../protocol/errors.js';

/**
 * Connects to ip:port; rejects with E_TIMEOUT (`timedOut` its message) when the connection is
 * not made within `ms`, and E_CONNECTION_CLOSED when it is refused or fails.
 */
export function dialTcp(
  ip: string,
  port: number,
  timedOut = 'connect timed out',
  ms = 3000,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ip, port });
    s.setNoDelay(true);
    s.setTimeout(ms, () => s.destroy(new HchatError('E_TIMEOUT', timedOut)));
    s.once('error', (err) =>
      reject(err instanceof HchatError ? err : new HchatError('E_CONNECTION_CLOSED', err.message)),
    );
    s.once('connect', () => {
      s.setTimeout(0);
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}
