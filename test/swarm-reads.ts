/**
 * Reading a swarm (test/swarm.ts), whichever way its processes run (on 127.0.0.1 or in the
 * namespaces of test/netns.ts): what a peer shows of a channel, through its local API, and what
 * the server stored, from its SQLite file or its PostgreSQL database.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { waitFor, type ApiAnswer } from './testnet.js';

/** A message the server stored, in channel order. */
export interface StoredMessage {
  id: string;
  text: string;
  author: string;
}

/** What the server stored. */
export interface StoredReader {
  messages(channelId: string): Promise<StoredMessage[]>;
  itemIds(channelId: string): Promise<string[]>;
  close(): Promise<void>;
}

const MESSAGES_SQL = `SELECT id, text, author FROM messages WHERE channel_id = $1 AND kind = 'message'
  ORDER BY ts, lc, id`;
const ITEMS_SQL = 'SELECT id FROM messages WHERE channel_id = $1';

export function sqliteReader(file: string): StoredReader {
  let db: Database.Database | undefined;
  const open = () => (db ??= new Database(file, { readonly: true }));
  return {
    messages: async (ch) =>
      open().prepare<[string], StoredMessage>(MESSAGES_SQL.replace('$1', '?')).all(ch),
    itemIds: async (ch) =>
      open()
        .prepare<[string], { id: string }>(ITEMS_SQL.replace('$1', '?'))
        .all(ch)
        .map((r) => r.id),
    async close() {
      db?.close();
      db = undefined;
    },
  };
}

export function pgReader(url: string): StoredReader {
  let client: Promise<pg.Client> | undefined;
  const open = () =>
    (client ??= (async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    })());
  return {
    messages: async (ch) => (await (await open()).query<StoredMessage>(MESSAGES_SQL, [ch])).rows,
    itemIds: async (ch) =>
      (await (await open()).query<{ id: string }>(ITEMS_SQL, [ch])).rows.map((r) => r.id),
    async close() {
      const c = client;
      client = undefined;
      if (c) await (await c).end();
    },
  };
}

/** A channel as a peer shows it: ids and texts in order, their states, and where they came from. */
export interface ChannelView {
  ids: string[];
  texts: string[];
  source: string;
  states: string[];
}

type Call = (name: string, method: string, route: string) => Promise<ApiAnswer>;

/** `view` and `waitView` of a swarm over its `call`; `waitView` gives up after `waitMs`. */
export function channelReader(call: Call, waitMs: number) {
  const view = async (name: string, channelId: string): Promise<ChannelView> => {
    const r = await call(name, 'GET', `/api/channels/${channelId}/messages?limit=500`);
    if (r.status !== 200) throw new Error(`${name}: ${JSON.stringify(r.body)}`);
    return {
      ids: r.body.messages.map((m: any) => m.id),
      texts: r.body.messages.map((m: any) => m.text),
      states: r.body.messages.map((m: any) => m.state),
      source: r.body.source,
    };
  };
  const waitView = async (name: string, channelId: string, texts: string[], source?: string) => {
    let last: unknown;
    await waitFor(
      async () => {
        const v = await view(name, channelId);
        last = v;
        return (
          JSON.stringify(v.texts) === JSON.stringify(texts) && (!source || v.source === source)
        );
      },
      waitMs,
      // A function: the message is built at the timeout, when `last` holds the last view.
      () =>
        `${name} to see ${JSON.stringify(texts)} from ${source ?? 'any source'} (last: ${JSON.stringify(last)})`,
    );
  };
  return { view, waitView };
}
