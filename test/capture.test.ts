/**
 * No plaintext on any wire between processes (issue 12): a whole session of real processes
 * (server and three peers: register, login, a channel hosted on a peer, posts through the host and
 * through the server, a visitor, a livestream watched through a relay) runs while tcpdump captures
 * loopback; then the captured bytes are searched for every secret and every content of the run.
 * None may appear on the server port, the P2P ports or the UDP media ports. As a control, the same
 * capture holds the local API's traffic (browser ↔ own peer, plain HTTP on 127.0.0.1 by design),
 * where the passwords and texts MUST be found: so the search would see them if they leaked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canCapture, packets, startCapture, type Packet } from './pcap.js';
import { spawnHchat, spawnServer, type HchatProcess } from './processes.js';
import { api, tempDir, waitFor } from './testnet.js';

const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));

describe('no plaintext on any wire between processes', () => {
  it.skipIf(!canCapture)(
    'a whole session captured on loopback shows no password, token, certificate, text or media payload',
    async () => {
      const dir = tempDir();
      const server = await spawnServer(path.join(dir, 's'));
      const sp = `${server.ready.tcp}#${server.ready.fingerprint}`;
      const names = ['alice', 'bob', 'carol'] as const;
      const peers: HchatProcess[] = [];
      for (const n of names)
        peers.push(
          await spawnHchat([
            'peer',
            '--server',
            sp,
            '--data',
            path.join(dir, n),
            '--stream-fanout',
            '1',
          ]),
        );
      // TCP and UDP port numbers are separate spaces: a TCP client's ephemeral port may equal
      // a peer's UDP port, so each packet is told by its protocol too.
      const tcpPorts = [portOf(server.ready.tcp!), ...peers.map((p) => portOf(p.ready.p2p!))];
      const udpPorts = peers.map((p) => portOf(p.ready.udp!));
      const wirePorts = [...tcpPorts, ...udpPorts];
      const uiPorts = peers.map((p) => Number(new URL(p.ready.ui!).port));
      const file = path.join(dir, 'lo.pcap');
      const stop = await startCapture(
        file,
        `host 127.0.0.1 and (${[...wirePorts, ...uiPorts].map((p) => `port ${p}`).join(' or ')})`,
      );

      const salt = Math.random().toString(36).slice(2, 10);
      const secrets: Record<string, string> = {};
      const [a, b, c] = peers.map((p) => p.ready.ui!) as [string, string, string];
      for (const [i, n] of names.entries()) {
        const ui = peers[i]!.ready.ui!;
        const password = `pw-${n}-${salt}-Zq`;
        secrets[`${n}'s password`] = password;
        expect((await api(ui, 'POST', '/api/register', { username: n, password })).status).toBe(
          201,
        );
        expect((await api(ui, 'POST', '/api/login', { username: n, password })).status).toBe(200);
      }
      const chanName = `den-${salt}`;
      secrets['channel name'] = chanName;
      const ch = (await api(a, 'POST', '/api/channels', { name: chanName, allowVisitors: true }))
        .body;
      secrets['channel id'] = ch.id;
      await api(b, 'POST', `/api/channels/${ch.id}/join`);
      await api(c, 'POST', `/api/channels/${ch.id}/join`);
      // Posts through alice's host link (P2P) and, for alice's own, to the server's backup.
      const texts = [
        `hello-from-alice-${salt}`,
        `hello-from-bob-${salt}`,
        `hello-from-carol-${salt}`,
      ];
      for (const [i, ui] of [a, b, c].entries()) {
        expect(
          (await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: texts[i] })).status,
        ).toBe(201);
        secrets[`text ${i}`] = texts[i]!;
      }
      for (const ui of [a, b, c])
        await waitFor(async () => {
          const m = (await api(ui, 'GET', `/api/channels/${ch.id}/messages`)).body.messages;
          return texts.every((t) => m.some((x: any) => x.text === t && x.state === 'delivered'));
        });
      // A livestream: alice streams, bob and carol watch (fan-out 1: carol through bob's relay).
      const live = (await api(a, 'POST', `/api/channels/${ch.id}/streams`, { source: 'synthetic' }))
        .body;
      expect(live.streamId).toBeDefined();
      for (const ui of [b, c]) {
        await waitFor(
          async () => (await api(ui, 'POST', `/api/streams/${live.streamId}/watch`)).status === 200,
        );
      }
      for (const ui of [b, c])
        await waitFor(async () => {
          const s = (await api(ui, 'GET', `/api/streams/${live.streamId}/stats`)).body;
          return s.framesComplete >= 30;
        }, 20_000);
      await stop();

      // The secrets each process keeps: session tokens and certificates, message signatures.
      for (const n of names) {
        const s = JSON.parse(fs.readFileSync(path.join(dir, n, 'session.json'), 'utf8'));
        secrets[`${n}'s token`] = s.token;
        if (s.cert) secrets[`${n}'s certificate`] = String(s.cert).slice(0, 60);
      }
      const all = packets(file);
      const on = (p: Packet, ports: number[]) => ports.includes(p.src) || ports.includes(p.dst);
      const onWire = all.filter((p) => on(p, p.proto === 'tcp' ? tcpPorts : udpPorts));
      const local = all.filter((p) => p.proto === 'tcp' && on(p, uiPorts));
      const wireBytes = Buffer.concat(onWire.map((p) => p.payload));
      const localBytes = Buffer.concat(local.map((p) => p.payload));
      // The capture saw the run: TLS records on the TCP ports, media datagrams on the UDP ports.
      expect(
        onWire.filter((p) => p.proto === 'tcp' && p.payload[0] === 0x17).length,
      ).toBeGreaterThan(50);
      expect(onWire.filter((p) => p.proto === 'udp').length).toBeGreaterThan(100);

      console.log(
        `capture: ${onWire.length} packets (${wireBytes.length} payload bytes) on the server, P2P and UDP ports, ` +
          `${local.length} on the local API ports; searched for ${Object.keys(secrets).length} secrets and 3 media patterns`,
      );
      const leaks = Object.entries(secrets).filter(([, v]) => wireBytes.includes(Buffer.from(v)));
      expect(leaks.map(([k]) => k)).toEqual([]);
      // The synthetic source's media payload (runs of 0x5a, 0xa5, Opus 0x3c) never in clear.
      for (const byte of [0x5a, 0xa5, 0x3c])
        expect(wireBytes.includes(Buffer.alloc(32, byte)), `a run of 0x${byte.toString(16)}`).toBe(
          false,
        );
      // Control: the local API (plain HTTP on 127.0.0.1, by design) shows them: the search works.
      expect(localBytes.includes(Buffer.from(secrets["alice's password"]!))).toBe(true);
      expect(localBytes.includes(Buffer.from(texts[1]!))).toBe(true);
    },
    90_000,
  );
});
