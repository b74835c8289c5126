/**
 * The receiving end of a compact link (src/protocol/compact.ts RefReader, PROTOCOL.md §3.11):
 * what a peer does with `ref` frames, `m` pushes and compact pages from a server or host. Input:
 * lines of JSON, each a frame in the order a link would deliver them (`ref`: define; `m`: expand
 * and check as a `message` event; anything else: expand as a page answer).
 *
 * Contract: the reader throws only HchatError E_BAD_FRAME (the link's end); a push it rebuilds
 * names a channel the link defined and carries the certificate the link defined (or the item
 * carried); when the item had no `id`, the rebuilt one is the id its content gives (§2.1).
 */
import { HchatError } from '../../src/protocol/errors.js';
import { RefReader } from '../../src/protocol/compact.js';
import { EVENTS } from '../../src/protocol/server-link.js';
import { messageId } from '../../src/shared/message-id.js';
import { ContractViolation, type FuzzTarget } from '../engine/target.js';
import { goldenObjects } from '../support/golden.js';

function run(data: Buffer): void {
  const reader = new RefReader();
  const defined = { channels: new Set<string>(), certs: new Set<string>() };
  for (const line of data.toString('utf8').split('\n')) {
    let f: unknown;
    try {
      f = JSON.parse(line);
    } catch {
      continue;
    }
    try {
      const frame = f as Record<string, unknown>;
      if (frame?.t === 'ref') {
        reader.define(frame);
        if (typeof frame.channelId === 'string') defined.channels.add(frame.channelId);
        if (typeof frame.cert === 'string') defined.certs.add(frame.cert);
      } else if (frame?.t === 'm') {
        const rebuilt = reader.expand(frame);
        const m = rebuilt.message;
        if (!defined.channels.has(rebuilt.channelId))
          throw new ContractViolation('a channel no ref defined', rebuilt.channelId);
        if (!defined.certs.has(m.cert as string) && m.cert !== frame.cert)
          throw new ContractViolation('a certificate nobody sent', String(m.cert));
        const ok = EVENTS.message.safeParse(rebuilt);
        if (ok.success && frame.id === undefined && messageId(ok.data.message) !== m.id)
          throw new ContractViolation('the rebuilt id is not the content-derived one', line);
      } else reader.expandPage(frame);
    } catch (err) {
      if (err instanceof HchatError && err.code === 'E_BAD_FRAME') return; // the link ends
      throw err;
    }
  }
}

const target: FuzzTarget = {
  name: 'compact',
  description: 'RefReader fed ref, m and page frames: only E_BAD_FRAME; rebuilt pushes as defined',
  cover: ['/src/protocol/compact.ts', '/src/shared/message-id.ts'],
  json: true,
  maxLen: 4096,
  dictionary: ['"ref"', '"m"', '"k"', '"c"', '"cert"', '"channelId"', '"messages"', '"related"'],
  seeds: () => {
    const golden = goldenObjects();
    const compact = golden.filter((g) => g.t === 'ref' || g.t === 'm');
    const page = golden.find((g) => g.t === 'res' && JSON.stringify(g).includes('"c":0'));
    const lines = [...compact, page?.body].filter(Boolean).map((g) => JSON.stringify(g));
    return [
      Buffer.from(lines.join('\n')),
      Buffer.from(lines.slice(1).join('\n')), // the certificate never defined
      Buffer.from([lines[0], lines[1], lines[0], lines[2]].join('\n')),
    ];
  },
  run,
};
export default target;
