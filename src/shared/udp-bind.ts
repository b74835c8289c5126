/** Binding a UDP socket as a promise: resolves once bound, rejects with the bind's error. */
import type dgram from 'node:dgram';

export function bindUdp(socket: dgram.Socket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
