/**
 * `hchat demo`: a central server and three peers (alice, bob, carol) on temporary data, logged in,
 * sharing a channel, ready to chat. Prints where everything is, runs until interrupted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CentralServer } from '../server/server.js';
import { startPeer, type PeerProcess } from '../peer/index.js';

/** Users the demo creates, with their passwords (printed: this is a demo). */
export const DEMO_USERS = ['alice', 'bob', 'carol'] as const;

/** Starts the demo; resolves with a function that stops it and deletes its data. */
export async function runDemo(out: (line: string) => void): Promise<() => Promise<void>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-demo-'));
  const server = await CentralServer.start({
    host: '127.0.0.1',
    port: 0,
    httpPort: 0,
    dataDir: path.join(root, 'server'),
  });
  const [host, port] = splitAddress(server.tcpAddress);
  const peers: PeerProcess[] = [];
  const stop = async () => {
    for (const p of peers) await p.close();
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const user of DEMO_USERS) {
      const p = await startPeer({
        serverHost: host,
        serverPort: port,
        serverFingerprint: server.fingerprint,
        host: '127.0.0.1',
        p2pPort: 0,
        udpPort: 0,
        uiPort: 0,
        dataDir: path.join(root, user),
      });
      peers.push(p);
      await p.node.register(user, `${user}-demo`);
      await p.node.login(user, `${user}-demo`);
    }
    const [alice, bob, carol] = peers as [PeerProcess, PeerProcess, PeerProcess];
    const general = await alice.node.createChannel('general', true);
    await bob.node.join(general.id);
    await carol.node.join(general.id);
    await alice.node.post(general.id, 'Welcome to Hybrid Chat! Say hi.');
  } catch (err) {
    await stop();
    throw err;
  }
  out(
    `server tcp=${server.tcpAddress} http=${server.httpUrl} fingerprint=${server.fingerprint} data=${root}`,
  );
  DEMO_USERS.forEach((user, i) => {
    const p = peers[i]!;
    out(`peer ${user.padEnd(5)} ui=${p.uiUrl} p2p=${p.p2p} udp=${p.udp} password=${user}-demo`);
  });
  out('channel "general" (alice hosts it; bob and carol joined). Try:');
  out(
    `  curl -s -H 'Authorization: Bearer ${peers[1]!.apiToken}' ${peers[1]!.baseUrl}api/channels`,
  );
  out('Ctrl-C stops the demo and deletes its data.');
  return stop;
}

function splitAddress(a: string): [string, number] {
  const i = a.lastIndexOf(':');
  return [a.slice(0, i), Number(a.slice(i + 1))];
}
