// What `hchat` shows other local users of its command line (src/cli/options.ts redactedArgs;
// test/outsider/disk-neighbour.test.ts reads it from /proc as another user).
import { describe, expect, it } from 'vitest';
import { redactedArgs } from '../src/cli/options.js';

describe('redactedArgs', () => {
  it('hides the values of --api-token and --token, in both spellings', () => {
    expect(
      redactedArgs(['peer', '--api-token', 'abcdefghijklmnopqrstuvwxyz', '--data', 'd']),
    ).toEqual(['peer', '--api-token', '***', '--data', 'd']);
    expect(redactedArgs(['bot', '--token=tok_a.b', '--url', 'http://x'])).toEqual([
      'bot',
      '--token=***',
      '--url',
      'http://x',
    ]);
  });

  it('hides the credentials of --store and --bus URLs, keeping where they point', () => {
    expect(
      redactedArgs([
        'server',
        '--store',
        'postgres://hchat:s3cret@db:5432/hchat',
        '--bus=nats://u:p@a:4222,nats://u:p@b:4222',
      ]),
    ).toEqual([
      'server',
      '--store',
      'postgres://***@db:5432/hchat',
      '--bus=nats://***@a:4222,nats://***@b:4222',
    ]);
  });

  it('leaves a command line without secrets alone', () => {
    expect(
      redactedArgs(['server', '--store', 'postgres://db/hchat', '--port', '0']),
    ).toBeUndefined();
    expect(redactedArgs(['peer', '--data', '--api-token'])).toBeUndefined();
  });
});
