/**
 * The two mature C servers the fan-out bench measures beside Hybrid Chat (issue "Performance"):
 * Mosquitto (MQTT; the machine's broker at 127.0.0.1:1883, QoS 0 and QoS 1) and ngIRCd (IRC;
 * Debian's package, started here on a loopback port with a config of its own). Neither stores
 * anything. Each rig gives a publisher shaped like the bench's own client (`fire(payload)` sends
 * one message, `onAck` frees a slot of the in-flight window) and where its members connect.
 *
 * What counts as the acknowledgement that frees a window slot: Hybrid Chat's answer to `post`
 * (after the message is stored), MQTT QoS 1's PUBACK, and for QoS 0 and IRC (which acknowledge
 * nothing) the message's arrival at the first member. Members and the probe parse every packet
 * or line whole and check it (bench/member-checks.ts).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import type { Target } from './members.js';
import { IrcLines, ircSentAt, mqttSentAt, type IrcMessage } from './member-checks.js';

/** A rig's publisher, shaped like the bench's own Client. */
export interface Publisher {
  onAck: () => void;
  fire(payload: string): void;
}

/** Publisher `k`'s number in a payload (`<send ns>|<k>|…`): a probe's receipt acks its sender. */
export function publisherOf(payload: string): number {
  const a = payload.indexOf('|') + 1;
  return Number(payload.slice(a, payload.indexOf('|', a)));
}

export interface Rig {
  name: string;
  publishers: Publisher[];
  /**
   * True when one member is a probe in the load generator itself, whose receipt acknowledges
   * (QoS 0, IRC: they acknowledge nothing); its deliveries are not counted.
   */
  probe: boolean;
  /** Where the other members (in member processes, bench/members.ts) connect. */
  target: Target;
  /** The server process, for its CPU and RSS. */
  pid: number;
  close(): Promise<void>;
}

// ---- Mosquitto ---------------------------------------------------------------------------------

/** The running broker's pid, or undefined when none listens on 127.0.0.1:1883. */
function mosquittoPid(): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-x', 'mosquitto'], { encoding: 'utf8' }).trim();
    return out ? Number(out.split('\n')[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the broker if it is down (as the machine's own start command does). */
export function ensureMosquitto(): number | undefined {
  if (mosquittoPid() === undefined) {
    try {
      execFileSync('mosquitto', ['-d', '-c', '/etc/mosquitto/mosquitto.conf']);
      execFileSync('sleep', ['0.5']);
    } catch {
      return undefined;
    }
  }
  return mosquittoPid();
}

export async function mosquittoRig(qos: 0 | 1, publishers = 1): Promise<Rig> {
  const pid = ensureMosquitto();
  if (pid === undefined) throw new Error('no Mosquitto broker at 127.0.0.1:1883');
  const topic = `hchat-bench/${process.pid}/${Date.now()}`;
  const connect = () =>
    mqtt.connectAsync('mqtt://127.0.0.1:1883', {
      clean: true,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
  const clients = await Promise.all(Array.from({ length: publishers }, connect));
  const pubs = clients.map((c) => {
    const publisher: Publisher = {
      onAck: () => undefined,
      fire(payload) {
        if (qos === 1) c.publish(topic, payload, { qos: 1 }, () => publisher.onAck());
        else c.publish(topic, payload, { qos: 0 });
      },
    };
    return publisher;
  });
  if (qos === 0) {
    const probe = await connect();
    clients.push(probe);
    await probe.subscribeAsync(topic, { qos });
    // The probe checks what it gets as the members do (bench/member-checks.ts).
    probe.on('message', (t, payload) => {
      mqttSentAt(t, payload, topic);
      pubs[publisherOf(payload.toString())]!.onAck();
    });
  }
  return {
    name: `Mosquitto QoS ${qos}`,
    publishers: pubs,
    probe: qos === 0,
    target: { kind: 'mqtt', qos, topic },
    pid,
    async close() {
      for (const c of clients) await c.endAsync(true).catch(() => undefined);
    },
  };
}

// ---- ngIRCd ------------------------------------------------------------------------------------

/** Installs ngIRCd from Debian when it is missing (the bench's setup). */
export function ensureNgircd(): boolean {
  if (fs.existsSync('/usr/sbin/ngircd')) return true;
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', 'ngircd'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: 'ignore',
    });
  } catch {
    return false;
  }
  return fs.existsSync('/usr/sbin/ngircd');
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A raw IRC connection: lines in, each parsed (bench/member-checks.ts), lines out. */
class IrcConn {
  onLine: (m: IrcMessage) => void = () => undefined;

  constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    const lines = new IrcLines((m) => {
      if (m.command === 'PING') this.send(`PONG :${m.params[0] ?? ''}`);
      else this.onLine(m);
    });
    socket.on('data', (d: string) => lines.push(d));
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Resolves when a message with this command (or numeric reply) arrives. */
  waitFor(command: string): Promise<IrcMessage> {
    return new Promise((resolve) => {
      const prev = this.onLine;
      this.onLine = (m) => {
        if (m.command === command) {
          this.onLine = prev;
          resolve(m);
        } else prev(m);
      };
    });
  }

  static async open(port: number, nick: string): Promise<IrcConn> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    const c = new IrcConn(socket);
    const welcome = c.waitFor('001');
    c.send(`NICK ${nick}`);
    c.send(`USER ${nick} 0 * :${nick}`);
    await welcome;
    return c;
  }
}

export async function ngircdRig(publishers = 1): Promise<Rig> {
  if (!ensureNgircd()) throw new Error('ngIRCd is not installed and apt-get could not install it');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-ngircd-'));
  const port = await freePort();
  const conf = path.join(dir, 'ngircd.conf');
  fs.writeFileSync(
    conf,
    `[Global]
Name = bench.hchat.local
Info = Hybrid Chat bench anchor
Listen = 127.0.0.1
Ports = ${port}
MotdPhrase = bench
PidFile = ${path.join(dir, 'ngircd.pid')}
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
MaxNickLength = 30
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
[Operator]
Name = bench
Password = bench
`,
  );
  const proc: ChildProcess = spawn('/usr/sbin/ngircd', ['--nodaemon', '--config', conf], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const conns: IrcConn[] = [];
    for (let k = 0; k < publishers; k++) {
      const pub = await IrcConn.open(port, `pub${k}`);
      pub.send('OPER bench bench');
      await pub.waitFor('381');
      // +F: relaxed flood protection for the publisher (operators may set it).
      pub.send(`MODE pub${k} +F`);
      conns.push(pub);
    }
    const first = await IrcConn.open(port, 'probe');
    const joined = (c: IrcConn) => c.waitFor('366'); // end of NAMES: in the channel
    await Promise.all(
      [...conns, first].map((c) => {
        const w = joined(c);
        c.send('JOIN #bench');
        return w;
      }),
    );
    const pubs = conns.map((pub) => ({
      onAck: () => undefined,
      fire: (payload: string) => pub.send(`PRIVMSG #bench :${payload}`),
    }));
    // The probe parses and checks every line as the members do.
    first.onLine = (m) => {
      if (m.command === 'PRIVMSG') {
        ircSentAt(m, '#bench');
        pubs[publisherOf(m.params[1]!)]!.onAck();
      }
    };
    return {
      name: 'ngIRCd',
      publishers: pubs,
      probe: true,
      target: { kind: 'irc', port },
      pid: proc.pid!,
      async close() {
        for (const c of [...conns, first]) c.socket.destroy();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
