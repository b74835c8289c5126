// Who owns the other end of a loopback exchange, from the kernel's socket tables (Linux): TCP
// connections over IPv4 and over IPv6 sockets with mapped addresses, UDP sockets bound to an
// address or to all, and another OS user's socket (`nobody`, when this runs as root).
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isThisUser, tcpPeerOwner, udpOwner } from '../src/shared/socket-owner.js';

const me = process.getuid!();

/** The server side of a connection to a fresh 127.0.0.1 port, opened from `family`'s socket. */
async function accepted(family: 4 | 6): Promise<{ socket: net.Socket; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect({ port, host: family === 4 ? '127.0.0.1' : '::ffff:127.0.0.1' });
  const socket = await got;
  return { socket, close: () => (client.destroy(), socket.destroy(), server.close()) };
}

describe.runIf(process.platform === 'linux')('socket owners', () => {
  it('a TCP connection from this process is this user’s, from an IPv4 or an IPv6 socket', async () => {
    for (const family of [4, 6] as const) {
      const c = await accepted(family);
      try {
        expect(tcpPeerOwner(c.socket), `IPv${family}`).toBe(me);
        expect(isThisUser(tcpPeerOwner(c.socket))).toBe(true);
      } finally {
        c.close();
      }
    }
  });

  it('a UDP socket is found bound to its address or to all; a port nobody holds is nobody’s', async () => {
    const exact = dgram.createSocket('udp4');
    const any = dgram.createSocket('udp4');
    await new Promise<void>((r) => exact.bind(0, '127.0.0.1', r));
    await new Promise<void>((r) => any.bind(0, '0.0.0.0', r));
    try {
      expect(udpOwner('127.0.0.1', exact.address().port)).toBe(me);
      expect(udpOwner('127.0.0.1', any.address().port)).toBe(me);
      const freed = exact.address().port;
      await new Promise<void>((r) => exact.close(r));
      expect(udpOwner('127.0.0.1', freed)).toBeUndefined();
    } finally {
      any.close();
    }
  });

  it.runIf(me === 0)('another user’s socket is theirs, and not this user’s', async () => {
    const nobody = spawn(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e'].concat(
        `const s = require('dgram').createSocket('udp4');
         s.bind(0, '127.0.0.1', () => console.log(s.address().port));
         setTimeout(() => s.close(), 10000);`,
      ),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const port = await new Promise<number>((r) =>
        nobody.stdout!.once('data', (d: Buffer) => r(Number(d.toString().trim()))),
      );
      const owner = udpOwner('127.0.0.1', port);
      expect(owner).toBe(65534);
      expect(isThisUser(owner)).toBe(false);
    } finally {
      nobody.kill();
    }
  });
});
