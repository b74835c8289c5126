/**
 * Limits shared by the server instances of a deployment (issue 16 §3; docs/SECURITY.md "Several
 * server instances"): two real `hchat server` processes on one PostgreSQL database and one NATS.
 * An attacker who spreads password guesses or registrations over both instances gets no more
 * than from one: the login throttles and the registration budget are counted in the store.
 */
import { describe, expect, it } from 'vitest';
import { startCluster } from '../cluster-kit.js';
import { LOGIN_LIMITS, REGISTRATION_LIMITS } from '../../src/shared/limits.js';
import { RawClient, publicKey } from './front-door-client.js';

const PW = 'right-password';

const codeOf = (f: Record<string, any>) => (f.body ? 'ok' : (f.error?.code ?? f.t));

describe('hostile: limits across two server instances on PostgreSQL and NATS', () => {
  /** Two instances on a fresh database and NATS of this test: their ports. */
  async function twoInstances(): Promise<[number, number]> {
    const { at } = await startCluster([], 2);
    return [at(0).port, at(1).port];
  }

  it('failed logins spread over both instances lock the account at the same count as on one', async () => {
    const [a, b] = await twoInstances();
    const home = await RawClient.open(a, '127.0.0.1');
    expect(codeOf(await home.request('register', { username: 'victim', password: PW }))).toBe('ok');
    // A login from home makes 127.0.0.0/24 one of the account's known places (on instance a).
    const first = await home.request('login', {
      username: 'victim',
      password: PW,
      publicKey: publicKey(),
    });
    expect(first.body?.username).toBe('victim');
    home.close();

    // One guesser at one account from one /24, alternating instances, one guess at a time.
    const clients = [await RawClient.open(a, '127.0.7.1'), await RawClient.open(b, '127.0.7.2')];
    const codes: string[] = [];
    const limit = LOGIN_LIMITS.failuresPerAccountAddress;
    for (let i = 0; i < limit + 3; i++) {
      const r = await clients[i % 2]!.request('login', {
        username: 'victim',
        password: `guess-${i}`,
        publicKey: publicKey(),
      });
      codes.push(codeOf(r));
      if (i === limit)
        expect(r.error.retryAfterMs).toBeGreaterThan(LOGIN_LIMITS.backoffBaseMs - 5000);
    }
    console.log(`guesses over two instances: ${codes.join(' ')}`);
    expect(codes).toEqual([
      ...Array(limit).fill('E_BAD_CREDENTIALS'),
      ...Array(3).fill('E_RATE_LIMITED'),
    ]);
    // The right password from the locked pair waits too, on either instance.
    for (const c of clients)
      expect(
        codeOf(
          await c.request('login', { username: 'victim', password: PW, publicKey: publicKey() }),
        ),
      ).toBe('E_RATE_LIMITED');
    // The user's known place (learnt on a) is known on b: they log in there.
    const back = await RawClient.open(b, '127.0.0.1');
    const ok = await back.request('login', {
      username: 'victim',
      password: PW,
      publicKey: publicKey(),
    });
    expect(ok.body?.username).toBe('victim');
    // An unknown account answers as a wrong password does, and counts alike.
    const other = await RawClient.open(b, '127.0.9.1');
    const unknown = await other.request('login', {
      username: 'nobody-here',
      password: PW,
      publicKey: publicKey(),
    });
    expect(unknown.error).toMatchObject({ code: 'E_BAD_CREDENTIALS' });
    for (const c of [...clients, back, other]) c.close();
  });

  it('pipelined guesses at both instances at once: the right one is not reached, each failure counts toward the lock', async () => {
    const [a, b] = await twoInstances();
    const home = await RawClient.open(a, '127.0.0.1');
    expect(codeOf(await home.request('register', { username: 'target', password: PW }))).toBe('ok');
    home.close();
    const clients = [await RawClient.open(a, '127.0.3.1'), await RawClient.open(b, '127.0.3.2')];
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        clients[i % 2]!.request('login', {
          username: 'target',
          password: i === 39 ? PW : `guess-${i}`,
          publicKey: publicKey(),
        }),
      ),
    );
    const codes = answers.map(codeOf);
    const evaluated = codes.filter((x) => x === 'E_BAD_CREDENTIALS').length;
    console.log(`pipelined guesses over two instances evaluated: ${evaluated} of 40`);
    // Checks in flight are counted per instance (docs/SECURITY.md): the other instance's may
    // pass the limit by at most inFlightPerKey; every failure counts once in the store.
    expect(evaluated).toBeLessThanOrEqual(
      LOGIN_LIMITS.failuresPerAccountAddress + LOGIN_LIMITS.inFlightPerKey,
    );
    expect(codes.filter((x) => x === 'E_RATE_LIMITED')).toHaveLength(40 - evaluated);
    expect(codes[39]).toBe('E_RATE_LIMITED'); // the right one, late in the burst, not evaluated
    // One guess at a time now: the lock comes at the same count as on one instance.
    const more: string[] = [];
    for (let i = 0; more.at(-1) !== 'E_RATE_LIMITED' && i < 10; i++)
      more.push(
        codeOf(
          await clients[i % 2]!.request('login', {
            username: 'target',
            password: `late-${i}`,
            publicKey: publicKey(),
          }),
        ),
      );
    expect(evaluated + more.length - 1).toBe(
      Math.max(evaluated, LOGIN_LIMITS.failuresPerAccountAddress),
    );
    for (const c of clients) c.close();
  });

  it('registrations spread over both instances share one budget per address prefix', async () => {
    const [a, b] = await twoInstances();
    const budget = REGISTRATION_LIMITS.registrationsPerAddress;
    const clients = [await RawClient.open(a, '127.0.5.1'), await RawClient.open(b, '127.0.5.2')];
    // Sent at once, half to each instance: exactly the budget gets through.
    const answers = await Promise.all(
      Array.from({ length: budget + 6 }, (_, i) =>
        clients[i % 2]!.request('register', { username: `reg${i}x`, password: PW }),
      ),
    );
    const codes = answers.map(codeOf);
    console.log(`registrations over two instances: ${codes.join(' ')}`);
    expect(codes.filter((x) => x === 'ok')).toHaveLength(budget);
    expect(codes.filter((x) => x === 'E_RATE_LIMITED')).toHaveLength(6);
    const limited = answers.find((r) => r.error?.code === 'E_RATE_LIMITED')!;
    expect(limited.error.retryAfterMs).toBeGreaterThan(
      REGISTRATION_LIMITS.registrationWindowMs - 60_000,
    );
    expect(limited.error.message).toMatch(/try again in \d+ s/);
    // Another /24 has its own budget, on either instance.
    const d = await RawClient.open(b, '127.0.6.1');
    expect(codeOf(await d.request('register', { username: 'elsewhere', password: PW }))).toBe('ok');
    for (const c of [...clients, d]) c.close();
  });
});
