/**
 * A whole peer process: the node, its local API on 127.0.0.1, and the addresses the `ready` line
 * prints.
 */
import type { AddressInfo } from 'node:net';
import { PeerNode, type PeerOptions } from './node.js';
import { buildApi } from './api.js';
import { loadApiToken } from './api-token.js';

/** Settings of a peer process: the node's, plus the UI/API port. */
export interface PeerProcessOptions extends PeerOptions {
  uiPort: number;
  /** The local API's token; by default the one in `<dataDir>/api-token` (made if missing). */
  apiToken?: string;
}

/** A running peer with its API. */
export interface PeerProcess {
  node: PeerNode;
  /** `http://127.0.0.1:PORT/?token=TOKEN`: the page, opened with its credential. */
  uiUrl: string;
  /** `http://127.0.0.1:PORT/`: where the API's routes are. */
  baseUrl: string;
  /** The local API's token (`Authorization: Bearer <token>`). */
  apiToken: string;
  /** `IP:PORT` of the P2P TCP port. */
  p2p: string;
  /** `IP:PORT` of the UDP port. */
  udp: string;
  close(): Promise<void>;
}

/** Starts a peer and its local API. */
export async function startPeer(opts: PeerProcessOptions): Promise<PeerProcess> {
  // The node first: it takes the data folder (one process per folder) before anything is written.
  const node = await PeerNode.start(opts);
  let apiToken: string;
  try {
    apiToken = loadApiToken(opts.dataDir, opts.apiToken);
  } catch (err) {
    await node.close();
    throw err;
  }
  let uiPort = opts.uiPort;
  const api = buildApi(node, () => uiPort, apiToken);
  try {
    await api.listen({ port: opts.uiPort, host: '127.0.0.1' });
  } catch (err) {
    await node.close();
    throw err;
  }
  uiPort = (api.server.address() as AddressInfo).port;
  const adv = node.p2p.advertised;
  let closing: Promise<void> | undefined;
  return {
    node,
    uiUrl: `http://127.0.0.1:${uiPort}/?token=${apiToken}`,
    baseUrl: `http://127.0.0.1:${uiPort}/`,
    apiToken,
    p2p: `${adv.ip}:${adv.port}`,
    udp: `${adv.ip}:${adv.udpPort}`,
    close() {
      closing ??= api.close().then(() => node.close());
      return closing;
    },
  };
}
