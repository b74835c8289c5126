import { expect, it } from 'vitest';
import { createTestnet } from '../testnet.js';

it('a visitor entering again under its own name (a new session) is let in', async () => {
  const tn = await createTestnet({ peers: 1 });
  const p = tn.peers[0]!;
  expect((await p.call('POST', '/api/visitor', { name: 'Guest' })).status).toBe(200);
  const again = await p.call('POST', '/api/visitor', { name: 'Guest' });
  console.log('second entry:', again.status, JSON.stringify(again.body));
  expect(again.status).toBe(200);
}, 30_000);
