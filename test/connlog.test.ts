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
import { tempDir } from './testnet.js';

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
});
