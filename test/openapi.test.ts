/**
 * The OpenAPI documents (issue 17) of the REST API (docs/openapi.json, its types
 * src/sdk/api-types.ts) and of a peer's local API (docs/local-api.openapi.json, its types
 * web/src/local-api-types.ts): the checked-in copies are exactly what the running code serves
 * (regenerate with `npm run openapi`); each passes Redocly's `recommended` lint rules; and a
 * client generated from the REST API's (openapi-typescript types + openapi-fetch) compiles and
 * drives it on a real testnet. test/local-openapi.test.ts holds the local API's answers to its
 * document.
 */
import fs from 'node:fs';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import createClient from 'openapi-fetch';
import prettier from 'prettier';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import type { paths } from '../src/sdk/api-types.js';
import { LOCAL_API, REST_API, documentText, typesText } from '../scripts/openapi.js';
import { createTestnet, signIn, type TestPeer } from './testnet.js';
import { MimeType } from '../src/protocol/common.js';

/** GET `rawPath` as it is written (fetch would resolve its `..`): its status and JSON body. */
function rawGet(base: string, rawPath: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(base), { path: rawPath }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || 'null') }),
      );
    });
    req.on('error', reject);
  });
}

async function pretty(text: string, file: string): Promise<string> {
  const options = await prettier.resolveConfig(file);
  return prettier.format(text, { ...options, filepath: file });
}

describe.each([
  ['the REST API', REST_API],
  ['the local API', LOCAL_API],
])('the OpenAPI document of %s', (_name, api) => {
  it('is checked in as the running code serves it, with its generated types', async () => {
    const doc = await api.served();
    const { docFile, typesFile } = api;
    expect(fs.readFileSync(docFile, 'utf8')).toBe(await pretty(documentText(doc), docFile));
    expect(fs.readFileSync(typesFile, 'utf8')).toBe(
      await pretty(await typesText(api, doc), typesFile),
    );
  });

  it('passes Redocly’s recommended rules without an error', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({
      source: fs.readFileSync(api.docFile, 'utf8'),
      absoluteRef: api.docFile,
      config,
    });
    const errors = problems.filter((p) => p.severity === 'error');
    expect(errors.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)).toEqual([]);
  });
});

describe('patterns', () => {
  it('a file type’s pattern in the documents accepts what the schema accepts, in either case (outside implementer)', () => {
    // OpenAPI patterns carry no regex flags: a zod regex with `i` came out lower case only.
    for (const file of [REST_API.docFile, LOCAL_API.docFile]) {
      const patterns = [
        ...fs.readFileSync(file, 'utf8').matchAll(/"pattern": "([^"]*!#\$&[^"]*)"/g),
      ].map((m) => JSON.parse(`"${m[1]}"`) as string);
      expect(patterns.length, file).toBeGreaterThan(0);
      for (const p of patterns)
        for (const type of ['text/plain', 'Text/Plain', 'IMAGE/PNG; charset=utf-8'])
          expect([file, p, type, new RegExp(p, 'u').test(type)]).toEqual([file, p, type, true]);
    }
    for (const type of ['text/plain', 'Text/Plain', 'IMAGE/PNG; charset=utf-8'])
      expect(MimeType.safeParse(type).success, type).toBe(true);
  });
});

describe('the REST API’s document', () => {
  it('drives the API through a client generated from it', async () => {
    const net = await createTestnet({ peers: 1 });
    const [alice] = net.peers as [TestPeer];
    await signIn(alice, 'alice');
    const token = (
      await alice.call('POST', '/api/tokens', { name: 'gen', scopes: ['read', 'write'] })
    ).body.token as string;
    const api = createClient<paths>({
      baseUrl: net.server.httpUrl.replace(/\/$/, ''),
      headers: { authorization: `Bearer ${token}` },
    });
    const me = await api.GET('/api/v1/users/{user_id}', { params: { path: { user_id: '@me' } } });
    expect(me.data).toMatchObject({ username: 'alice', bot: false });
    const made = await api.POST('/api/v1/channels', {
      body: { name: 'typed', allowVisitors: false },
    });
    expect(made.response.status).toBe(201);
    const id = made.data!.id;
    const list = await api.GET('/api/v1/users/{user_id}/channels', {
      params: { path: { user_id: '@me' } },
    });
    expect(list.data!.channels.map((c) => c.id)).toEqual([id]);
    const page = await api.GET('/api/v1/channels/{channel_id}/messages', {
      params: { path: { channel_id: id }, query: { limit: 10 } },
    });
    expect(page.data).toEqual({ messages: [], related: [], hasMore: false });
    const refused = await api.GET('/api/v1/channels/{channel_id}', {
      params: { path: { channel_id: '00000000-0000-7000-8000-000000000000' } },
    });
    expect(refused.response.status).toBe(404);
    expect(refused.error?.error.code).toBe('E_CHANNEL_NOT_FOUND');
  });

  // docs/REST.md: "reference page is at /api/v1/docs (bundled with the server, no CDN)".
  it('has its reference page at /api/v1/docs, bundled with the server, showing the same document', async () => {
    const net = await createTestnet({ peers: 0 });
    const base = net.server.httpUrl.replace(/\/$/, '');
    const page = await fetch(`${base}/api/v1/docs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const scripts = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      expect(src, 'served from the server itself').not.toMatch(/^(https?:)?\/\//);
      const r = await fetch(new URL(src, `${base}/api/v1/docs/`));
      expect(r.status, src).toBe(200);
      expect(r.headers.get('content-type'), src).toMatch(/javascript/);
      expect((await r.arrayBuffer()).byteLength, src).toBeGreaterThan(0);
    }
    const shown = await (await fetch(`${base}/api/v1/docs/json`)).json();
    const served = await (await fetch(`${base}/api/v1/openapi.json`)).json();
    expect(shown).toEqual(served);
    expect(served.paths['/api/v1/users/{user_id}']).toBeDefined();
    // A page's URL that leaves /docs reaches no route through it: refused as an unknown route,
    // in the API's shape (the pages' own server only describes the routes).
    for (const raw of [
      '/api/v1/docs/../users/@me',
      '/api/v1/docs/%2e%2e/channels',
      '/api/v1/docs/nope',
    ]) {
      const r = await rawGet(base, raw);
      expect({ raw, status: r.status, code: r.body.error?.code }).toEqual({
        raw,
        status: 404,
        code: 'E_NOT_FOUND',
      });
    }
  });
});
