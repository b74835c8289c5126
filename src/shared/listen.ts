/**
 * Listening and closing as promises, for every TCP (and HTTP) listener of a process: the server's
 * ports, its relay port, a peer's P2P port.
 */
import type http from 'node:http';
import type net from 'node:net';

/** Listens on host:port; rejects with the listen error (EADDRINUSE, …) instead of emitting it. */
export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Stops listening (at once for an HTTP server's idle connections too); resolves when closed. */
export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if ('closeAllConnections' in server) (server as http.Server).closeAllConnections();
  });
}
