/**
 * Every schema that reads a frame or a body off a link: the envelope (rpc.ts), the hellos, every
 * request and answer body of the server link (server-link.ts OPS, with channel-ops.ts) and of the
 * P2P link (peer-link.ts, stream-ops.ts), and every event body. Contract: `safeParse` never throws,
 * a failure's issues format with `describeIssues`, and what a schema accepts it accepts again
 * unchanged (parsing is idempotent) and serialises to JSON.
 *
 * Input: lines of JSON. A line `{"op": name, "body": …}` naming a known op or event is checked
 * against that schema alone; any other line against every schema.
 */
import type { z } from 'zod';
import { OPS, EVENTS, ClientHello, ServerHello } from '../../src/protocol/server-link.js';
import { Request, Response, Event, Fatal, describeIssues } from '../../src/protocol/rpc.js';
import { P2P_OPS, P2P_EVENTS, PeerHello, PeerHelloAck } from '../../src/protocol/peer-link.js';
import { ContractViolation, type FuzzTarget } from '../engine/target.js';
import { goldenObjects } from '../support/golden.js';

const SCHEMAS = new Map<string, z.ZodType>();
for (const [name, spec] of Object.entries({ ...OPS, ...P2P_OPS })) {
  SCHEMAS.set(`${name}.req`, spec.req as z.ZodType);
  SCHEMAS.set(`${name}.res`, spec.res as z.ZodType);
}
for (const [name, schema] of Object.entries({ ...EVENTS, ...P2P_EVENTS }))
  SCHEMAS.set(`ev.${name}`, schema as z.ZodType);
for (const [name, schema] of Object.entries({
  ClientHello,
  ServerHello,
  PeerHello,
  PeerHelloAck,
  Request,
  Response,
  Event,
  Fatal,
}))
  SCHEMAS.set(name, schema as z.ZodType);
const NAMES = [...SCHEMAS.keys()];

function check(name: string, schema: z.ZodType, value: unknown): void {
  const r = schema.safeParse(value);
  if (!r.success) {
    const text = describeIssues(r.error);
    if (typeof text !== 'string') throw new ContractViolation('issues do not format', name);
    return;
  }
  const json = JSON.stringify(r.data);
  const again = schema.safeParse(JSON.parse(json ?? 'null'));
  if (!again.success) {
    throw new ContractViolation(
      'accepted once, refused after a JSON round trip',
      `${name}: ${json}`,
    );
  }
  if (JSON.stringify(again.data) !== json) {
    throw new ContractViolation(
      'parsing is not idempotent',
      `${name}: ${json} -> ${JSON.stringify(again.data)}`,
    );
  }
}

function run(data: Buffer): void {
  for (const line of data.toString('utf8').split('\n')) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const named =
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as { op?: unknown; body?: unknown })
        : undefined;
    const which = typeof named?.op === 'string' ? named.op : undefined;
    const targets = NAMES.filter(
      (n) =>
        which !== undefined && (n === which || n.startsWith(`${which}.`) || n === `ev.${which}`),
    );
    if (targets.length > 0) for (const n of targets) check(n, SCHEMAS.get(n)!, named!.body);
    else for (const n of NAMES) check(n, SCHEMAS.get(n)!, value);
  }
}

const UUID = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const MSG = {
  id: UUID,
  channelId: UUID,
  ts: 1_764_150_000_000,
  lc: 0,
  text: 'héllo',
  sig: 'A'.repeat(86),
  cert: 'c',
};
const ENTRY = {
  username: 'alice',
  role: 'user',
  ip: '127.0.0.1',
  port: 4000,
  udpPort: 4001,
  sessionId: 'abcdefgh12',
  status: 'online',
  hosts: [UUID],
  live: [{ streamId: UUID, channelId: UUID }],
};

function seeds(): Buffer[] {
  const bodies: Array<[string, unknown]> = [
    ['register', { username: 'alice', password: 'alice-pw' }],
    ['login', { username: 'alice', password: 'alice-pw', publicKey: 'A'.repeat(43) }],
    ['visitor', { name: ' Zoë ', publicKey: 'A'.repeat(43) }],
    ['resume', { token: 'x.y' }],
    ['submit_info', { ip: '::1', port: 1, udpPort: 65535, status: 'online', hosts: [UUID] }],
    ['channel_create', { id: UUID, name: ' general ', allowVisitors: true }],
    ['forward', { messages: [{ ...MSG, author: 'alice' }] }],
    ['post', { message: MSG }],
    ['history', { channelId: UUID, limit: 50, before: UUID }],
    ['sync', { channelId: UUID, since: 0, limit: 500 }],
    ['subscribe', { channelIds: [UUID] }],
    ['watch', { streamId: UUID, udpPort: 5000 }],
    ['message', { channelId: UUID, message: { ...MSG, author: 'alice', seq: 1 } }],
    ['peer_joined', { entry: ENTRY }],
    [
      'stream_children',
      {
        streamId: UUID,
        children: [{ username: 'bob', sessionId: 'abcdefgh12', ip: '10.0.0.1', udpPort: 9 }],
      },
    ],
    [
      'stream_list',
      {
        streams: [
          {
            streamId: UUID,
            channelId: UUID,
            streamer: 'al',
            source: 'rtp',
            startedAt: 1,
            fps: 30,
            bitrateKbps: 800,
            viewers: 0,
            videoSsrc: 1,
            audioSsrc: 2,
          },
        ],
      },
    ],
  ];
  return [
    ...bodies.map(([op, body]) => Buffer.from(JSON.stringify({ op, body }))),
    Buffer.from(
      goldenObjects()
        .map((o) => JSON.stringify(o))
        .join('\n'),
    ),
  ];
}

const target: FuzzTarget = {
  name: 'ops',
  description:
    'every op, event, hello and envelope schema: safeParse never throws, parsing is idempotent',
  cover: ['/src/protocol/', '/node_modules/zod/'],
  json: true,
  maxLen: 8192,
  dictionary: [...new Set(NAMES.map((n) => n.replace(/^ev\.|\.(req|res)$/g, '')))].concat([
    'op',
    'body',
    't',
    'id',
    'v',
    'role',
    'token',
    'channelId',
    'message',
    'messages',
    'limit',
    'since',
    'before',
    'ip',
    'port',
    'udpPort',
    'status',
    'hosts',
    'live',
    'publicKey',
    'name',
    'text',
    'ts',
    'lc',
    'sig',
    'cert',
    'author',
    'seq',
    'entry',
    'streamId',
    'children',
    'parent',
    'error',
    'code',
  ]),
  seeds,
  run,
};
export default target;
