/**
 * A raw client for the NAT signals' server-side tests (test/punch.test.ts, test/relay.test.ts):
 * registered, logged in, with an online tracker entry, and the events of one name collected.
 */
import type { Testnet } from './testnet.js';
import { rawSession } from './testnet.js';

export async function natClient(tn: Testnet, username: string, event: 'punch' | 'relay') {
  const link = await tn.rawLink();
  await link.request('register', { username, password: `${username}-pw` });
  const s = await rawSession(link, { username, password: `${username}-pw` });
  await link.request('submit_info', {
    ip: '10.1.1.1',
    port: 4000,
    udpPort: 4001,
    status: 'online',
  });
  const events: Array<Record<string, any>> = [];
  link.on('event', (name: string, body: Record<string, any>) => {
    if (name === event) events.push(body);
  });
  return { link, s, events };
}
