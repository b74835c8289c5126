import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ConnectionLog,
  LOG_ROTATE_RECORDS,
  formatRecord,
  parseRecord,
} from '../src/shared/connlog.js';
import { tempDir, waitFor } from './testnet.js';

describe('connection log', () => {
  it('writes printable ASCII key=value lines that parse back to what was logged', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ unit: 'grapheme' }), fc.integer(), (a, b, n) => {
        const line = formatRecord('post', { peer: a, text: b, n });
        expect(line).toMatch(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/);
        const r = parseRecord(line);
        expect(r.ev).toBe('post');
        expect(r.peer).toBe(a);
        expect(r.text).toBe(b);
        expect(r.n).toBe(String(n));
      }),
    );
  });

  it(`starts a new file at ${LOG_ROTATE_RECORDS} records and keeps the previous as .1`, () => {
    const dir = tempDir();
    const log = new ConnectionLog(dir);
    for (let i = 0; i < LOG_ROTATE_RECORDS + 3; i++) log.write('push', { from: 'server', i });
    log.close();
    const old = fs.readFileSync(path.join(dir, 'connections.log.1'), 'utf8').trimEnd().split('\n');
    const cur = fs.readFileSync(path.join(dir, 'connections.log'), 'utf8').trimEnd().split('\n');
    expect(old).toHaveLength(LOG_ROTATE_RECORDS);
    expect(cur).toHaveLength(3);
    expect(parseRecord(old[0]!).i).toBe('0');
    expect(parseRecord(cur[2]!).i).toBe(String(LOG_ROTATE_RECORDS + 2));
  });

  it('counts the records already in the file when a process restarts', () => {
    const dir = tempDir();
    let log = new ConnectionLog(dir, 10);
    for (let i = 0; i < 7; i++) log.write('open', { i });
    log.close();
    log = new ConnectionLog(dir, 10);
    for (let i = 7; i < 12; i++) log.write('open', { i });
    log.close();
    expect(
      fs.readFileSync(path.join(dir, 'connections.log.1'), 'utf8').trimEnd().split('\n'),
    ).toHaveLength(10);
    expect(
      fs.readFileSync(path.join(dir, 'connections.log'), 'utf8').trimEnd().split('\n'),
    ).toHaveLength(2);
  });

  describe('records of parties without a session (LOG_LIMITS)', () => {
    const read = (dir: string) =>
      fs
        .readFileSync(path.join(dir, 'connections.log'), 'utf8')
        .trimEnd()
        .split('\n')
        .map(parseRecord);

    it('writes a share per address group, says how many it left out, and always writes sessions', () => {
      const dir = tempDir();
      const log = new ConnectionLog(dir, undefined, {
        limits: { outsiderRecordsPerGroup: 3, outsiderRecordsTotal: 100 },
      });
      for (let i = 0; i < 10; i++) {
        log.outsider(`10.0.0.${i + 1}`, i % 2 ? 'refuse' : 'open', { i });
        log.write('post', { peer: 'peer:alice@10.0.0.9:1', i });
      }
      log.outsider('10.0.1.5', 'tls_error', { i: 'other' });
      log.outsider('2001:db8::1', 'open', { i: 'v6' });
      log.close();
      const r = read(dir);
      expect(r.filter((x) => x.ev === 'post')).toHaveLength(10);
      expect(r.filter((x) => x.ev === 'open' || x.ev === 'refuse').map((x) => x.i)).toEqual([
        '0',
        '1',
        '2',
        'v6',
      ]);
      expect(r.find((x) => x.ev === 'tls_error')?.i).toBe('other');
      const left = r.filter((x) => x.ev === 'suppressed');
      expect(left).toEqual([
        expect.objectContaining({ group: '10.0.0.0/24', suppressed: '7', events: 'refuse,open' }),
      ]);
      expect(Date.parse(left[0]!.since!)).not.toBeNaN();
    });

    it('bounds all groups together too: what is past the total is counted under *', () => {
      const dir = tempDir();
      const log = new ConnectionLog(dir, undefined, {
        limits: { outsiderRecordsPerGroup: 5, outsiderRecordsTotal: 8 },
      });
      for (let i = 0; i < 6; i++) log.outsider('10.0.0.1', 'open', { i });
      for (let i = 0; i < 6; i++) log.outsider('10.0.1.1', 'open', { i });
      for (let i = 0; i < 3; i++) log.outsider('10.0.2.1', 'close', { i });
      log.close();
      const r = read(dir);
      expect(r.filter((x) => x.ev === 'open')).toHaveLength(8);
      expect(r.filter((x) => x.ev === 'suppressed')).toEqual([
        expect.objectContaining({ group: '10.0.0.0/24', suppressed: '1' }),
        expect.objectContaining({ group: '*', suppressed: '6', events: 'open,close' }),
      ]);
    });

    it('writes reads answered to sessions within a share per reader: its account, or the visitors of its address group', () => {
      const dir = tempDir();
      const log = new ConnectionLog(dir, undefined, {
        limits: { readRecordsPerGroup: 2, readRecordsTotal: 100, outsiderRecordsPerGroup: 1 },
      });
      const mallory = { role: 'user', username: 'Mallory', ip: '10.0.0.1' } as const;
      for (let i = 0; i < 5; i++) {
        log.read(mallory, i % 2 ? 'fetch' : 'sync', { peer: 'peer:Mallory@10.0.0.1:1', i });
        // Where stored data came from is always written, whatever the reads spent.
        log.write('post', { peer: 'peer:alice@10.0.0.9:1', i });
      }
      // Visitors have no account: theirs count per address group, whatever name they take.
      for (const name of ['Guest1', 'Guest2', 'Guest3'])
        log.read({ role: 'visitor', username: name, ip: '10.0.1.7' }, 'sync', { i: name });
      // Another share: a refusal of mallory's is still written.
      log.refusal('mallory', { peer: 'peer:Mallory@10.0.0.1:1', op: 'history', code: 'E_X' });
      log.close();
      const r = read(dir);
      expect(r.filter((x) => x.ev === 'post')).toHaveLength(5);
      expect(r.filter((x) => x.ev === 'sync' || x.ev === 'fetch').map((x) => x.i)).toEqual([
        '0',
        '1',
        'Guest1',
        'Guest2',
      ]);
      expect(r.filter((x) => x.ev === 'refuse')).toHaveLength(1);
      expect(r.filter((x) => x.ev === 'suppressed')).toEqual([
        expect.objectContaining({ group: 'reads:mallory', suppressed: '3', events: 'sync,fetch' }),
        expect.objectContaining({ group: 'reads:visitors@10.0.1.0/24', suppressed: '1' }),
      ]);
    });

    it('writes records of direct messages within a share per account that caused them, apart from reads', () => {
      const dir = tempDir();
      const log = new ConnectionLog(dir, undefined, {
        limits: { dmRecordsPerAccount: 2, dmRecordsTotal: 100, readRecordsPerGroup: 1 },
      });
      for (let i = 0; i < 5; i++) {
        log.dm('Mallory', i % 2 ? 'dm_refused' : 'dm_send', { from: 'Mallory/d1', i });
        log.write('post', { peer: 'peer:alice@10.0.0.9:1', i });
      }
      log.dm('bob', 'dm_in', { from: 'bob/d2', i: 'bob' });
      // Another share: mallory's reads are still written.
      log.read({ role: 'user', username: 'mallory', ip: '10.0.0.1' }, 'dm_fetch', { i: 'read' });
      log.close();
      const r = read(dir);
      expect(r.filter((x) => x.ev === 'post')).toHaveLength(5);
      expect(r.filter((x) => x.ev?.startsWith('dm_')).map((x) => x.i)).toEqual([
        '0',
        '1',
        'bob',
        'read',
      ]);
      expect(r.filter((x) => x.ev === 'suppressed')).toEqual([
        expect.objectContaining({
          group: 'dm:mallory',
          suppressed: '3',
          events: 'dm_send,dm_refused',
        }),
      ]);
    });

    it('says what it left out when the window ends, and a new window has a new share', async () => {
      const dir = tempDir();
      const log = new ConnectionLog(dir, undefined, {
        limits: { outsiderRecordsPerGroup: 2, outsiderWindowMs: 200 },
      });
      for (let i = 0; i < 5; i++) log.outsider('127.0.0.1', 'refuse', { i });
      const left = await waitFor(() => read(dir).find((x) => x.ev === 'suppressed'));
      expect(left).toMatchObject({ group: '127.0.0.0/24', suppressed: '3' });
      log.outsider('127.0.0.1', 'refuse', { i: 'next' });
      log.close();
      const r = read(dir);
      expect(r.map((x) => x.i ?? x.ev)).toEqual(['0', '1', 'suppressed', 'next']);
    });
  });
});
