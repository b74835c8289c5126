import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHchat, spawnHchat, spawnServer } from './processes.js';
import fs from 'node:fs';
import { api, tempDir } from './testnet.js';

describe('hchat command', () => {
  it('lists every flag with its environment variable in --help', async () => {
    const server = await runHchat(['server', '--help']);
    for (const flag of ['--host', '--port', '--http-port', '--data'])
      expect(server.out).toContain(flag);
    for (const env of ['HCHAT_HOST', 'HCHAT_PORT', 'HCHAT_HTTP_PORT', 'HCHAT_DATA'])
      expect(server.out).toContain(env);
    const peer = await runHchat(['peer', '--help']);
    for (const flag of ['--server', '--host', '--p2p-port', '--udp-port', '--ui-port', '--data'])
      expect(peer.out).toContain(flag);
    expect(peer.out).toContain('--api-token');
    for (const env of [
      'HCHAT_SERVER',
      'HCHAT_P2P_PORT',
      'HCHAT_UDP_PORT',
      'HCHAT_UI_PORT',
      'HCHAT_API_TOKEN',
    ])
      expect(peer.out).toContain(env);
  });

  it('--store takes a postgres:// URL only, and the refusal names the flag', async () => {
    for (const bad of ['mysql://x@127.0.0.1/db', 'sqlite:server.db', '']) {
      const r = await runHchat(['server', '--port', '0', '--http-port', '0', '--store', bad]);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain('--store');
      expect(r.out).toContain('postgres://');
    }
  });

  it('offers no way to turn off SRTP or TLS (the bench-only options stay bench-only)', async () => {
    // benchPlainMedia (peer) and benchPlaintext (server) are reached by bench/plain-*.ts alone.
    for (const cmd of ['peer', 'server', 'demo']) {
      const help = await runHchat([cmd, '--help']);
      expect(help.code).toBe(0);
      expect(help.out).not.toMatch(/plain|insecure|srtp|no-tls|no-encrypt/i);
    }
    const cliDir = path.resolve(import.meta.dirname, '..', 'src', 'cli');
    for (const f of fs.readdirSync(cliDir))
      expect(fs.readFileSync(path.join(cliDir, f), 'utf8'), f).not.toMatch(/benchPlain/);
  });

  it('refuses bad flags with an error naming the flag', async () => {
    const port = await runHchat(['server', '--port', '70000']);
    expect(port.code).not.toBe(0);
    expect(port.out).toMatch(/--port.*port number/s);
    const srv = await runHchat(['peer', '--server', 'nocolon']);
    expect(srv.code).not.toBe(0);
    expect(srv.out).toMatch(/--server.*HOST:PORT/s);
    const missing = await runHchat(['peer']);
    expect(missing.code).not.toBe(0);
    expect(missing.out).toContain('--server');
  });

  it('prints the ready line, takes flags from the environment, and answers health', async () => {
    const dir = tempDir();
    const s = await spawnHchat(['server'], {
      HCHAT_PORT: '0',
      HCHAT_HTTP_PORT: '0',
      HCHAT_DATA: path.join(dir, 's'),
    });
    // stdout carries the ready line; the operational log goes to stderr.
    expect(s.stdout()).toMatch(
      /^ready tcp=127\.0\.0\.1:\d+ http=http:\/\/127\.0\.0\.1:\d+\/ fingerprint=[A-Za-z0-9_-]{43}\n/,
    );
    const health = await (await fetch(new URL('health', s.ready.http))).json();
    expect(health).toMatchObject({ status: 'ok' });
    const p = await spawnHchat(['peer', '--server', s.ready.tcp!, '--data', path.join(dir, 'p')]);
    expect(p.output()).toMatch(
      /^ready ui=http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{43} p2p=127\.0\.0\.1:\d+ udp=127\.0\.0\.1:\d+\n/,
    );
    // SIGTERM closes cleanly.
    p.proc.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    s.proc.kill('SIGINT');
    expect(await s.exited).toBe(0);
  });

  it('refuses a port already in use with a clear message', async () => {
    const dir = tempDir();
    const s = await spawnServer(path.join(dir, 's'));
    const port = s.ready.tcp!.split(':')[1]!;
    const again = await runHchat([
      'server',
      '--port',
      port,
      '--http-port',
      '0',
      '--data',
      path.join(dir, 's2'),
    ]);
    expect(again.code).toBe(1);
    expect(again.out).toContain('EADDRINUSE');
  });

  it('runs the demo: three logged-in peers sharing a channel, ready to chat', async () => {
    const demo = await spawnHchat(['demo'], {}, 30_000, /^Ctrl-C.*$/m);
    const urls = Object.fromEntries(
      [...demo.output().matchAll(/^peer (\w+)\s+ui=(\S+)/gm)].map((m) => [m[1]!, m[2]!]),
    );
    expect(Object.keys(urls)).toEqual(['alice', 'bob', 'carol']);
    const bobChannels = (await api(urls.bob!, 'GET', '/api/channels')).body;
    expect(bobChannels).toEqual([expect.objectContaining({ name: 'general', owner: 'alice' })]);
    const id = bobChannels[0].id;
    const sent = await api(urls.bob!, 'POST', `/api/channels/${id}/messages`, {
      text: 'hi from bob',
    });
    expect(sent.body.state).toBe('delivered');
    const carol = (await api(urls.carol!, 'GET', `/api/channels/${id}/messages`)).body.messages;
    expect(carol.map((m: any) => `${m.author}: ${m.text}`)).toEqual([
      'alice: Welcome to Hybrid Chat! Say hi.',
      'bob: hi from bob',
    ]);
    const dataDir = /data=(\S+)/.exec(demo.output())![1]!;
    demo.proc.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
