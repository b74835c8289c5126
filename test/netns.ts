/**
 * The NAT test world (issue 18, test/netns-core.ts) for one test: built when the test asks for
 * it, and every process, namespace and file of it removed when the test finishes (or earlier, by
 * its `close`).
 */
import { onTestFinished } from 'vitest';
import { buildNatWorld, type NatSpec, type OwnedNatWorld } from './netns-core.js';

export { SERVER_IP } from './netns-core.js';
export type { Home, HomePeer, NatSpec, NatWorld, OwnedNatWorld } from './netns-core.js';

/** Builds the world for the current test; everything is removed when the test finishes. */
export function createNatWorld(specs: NatSpec[]): OwnedNatWorld {
  if (process.getuid?.() !== 0) throw new Error('the NAT tests need root (network namespaces)');
  const world = buildNatWorld(specs);
  onTestFinished(() => world.close());
  return world;
}
