import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HchatError } from '../src/protocol/errors.js';
import { SqliteServerStore, type MessageInsert } from '../src/store/server-store.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-store-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CHANNELS = ['c-one', 'c-two'];

describe('server store: batched inserts', () => {
  it('numbers each channel 1, 2, 3… across batches; a stored id is a duplicate, or a conflict if altered', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        // Batches of posts drawn from a small pool of ids, so that repeats are common: the same
        // message again (an outbox retry) or the same id with other text (a forgery).
        fc.array(
          fc.array(
            fc.record({
              id: fc.integer({ min: 0, max: 12 }),
              channel: fc.constantFrom(...CHANNELS, 'c-missing'),
              altered: fc.boolean(),
            }),
            { maxLength: 8 },
          ),
          { maxLength: 8 },
        ),
        async (batches) => {
          const store = new SqliteServerStore(path.join(dir, `s${run++}.db`));
          try {
            for (const id of CHANNELS) {
              await store.createChannel({
                id,
                name: id,
                owner: 'o',
                allowVisitors: false,
                createdAt: 1,
              });
            }
            // The model: what each id was first stored as, and each channel's last number.
            const stored = new Map<string, { channel: string; text: string; seq: number }>();
            const last = new Map(CHANNELS.map((c) => [c, 0]));
            for (const batch of batches) {
              const inserts: MessageInsert[] = batch.map((p) => {
                const first = stored.get(`m${p.id}`);
                const channelId = first && !p.altered ? first.channel : p.channel;
                return {
                  author: 'alice',
                  message: {
                    id: `m${p.id}`,
                    channelId,
                    ts: 1000 + p.id,
                    lc: 0,
                    text: p.altered ? 'altered' : `text ${p.id}`,
                    sig: 's',
                    cert: 'c',
                  },
                };
              });
              const results = await store.insertMessages(inserts);
              inserts.forEach(({ message: m }, i) => {
                const r = results[i]!;
                const first = stored.get(m.id);
                if (!last.has(m.channelId)) {
                  expect((r as HchatError).code).toBe('E_CHANNEL_NOT_FOUND');
                } else if (first) {
                  if (first.channel === m.channelId && first.text === m.text) {
                    expect(r).toMatchObject({ duplicate: true, seq: first.seq });
                  } else {
                    expect((r as HchatError).code).toBe('E_MESSAGE_CONFLICT');
                  }
                } else {
                  const seq = last.get(m.channelId)! + 1;
                  expect(r).toMatchObject({
                    duplicate: false,
                    seq,
                    stored: { seq, author: 'alice' },
                  });
                  last.set(m.channelId, seq);
                  stored.set(m.id, { channel: m.channelId, text: m.text!, seq });
                }
              });
            }
            for (const c of CHANNELS) {
              expect(await store.lastSeq(c)).toBe(last.get(c));
              const all = await store.since(c, 0, 1000);
              expect(all.map((m) => m.seq)).toEqual(all.map((_, i) => i + 1));
            }
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
