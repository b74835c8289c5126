import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, HchatError } from '../src/protocol/errors.js';
import { OPS, EVENTS } from '../src/protocol/server-link.js';
import { P2P_EVENTS, P2P_OPS } from '../src/protocol/peer-link.js';

const protocolDoc = fs.readFileSync(
  path.resolve(import.meta.dirname, '..', 'docs', 'PROTOCOL.md'),
  'utf8',
);

describe('error catalogue and protocol document', () => {
  it('documents every error code with its HTTP status', () => {
    for (const [code, { status }] of Object.entries(ERRORS)) {
      expect(protocolDoc, code).toMatch(
        new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`),
      );
    }
  });

  it('documents every operation and event of the server link', () => {
    for (const op of Object.keys(OPS))
      expect(protocolDoc, op).toMatch(new RegExp(`\\|\\s*\`${op}\`\\s*\\|`));
    for (const ev of Object.keys(EVENTS))
      expect(protocolDoc, ev).toMatch(new RegExp(`\\|\\s*\`${ev}\`\\s*\\|`));
  });

  it('documents every operation and event of the peer-to-peer link', () => {
    for (const op of Object.keys(P2P_OPS))
      expect(protocolDoc, op).toMatch(new RegExp(`\\|\\s*\`${op}\`(\\s*\\(P2P\\))?\\s*\\|`));
    for (const ev of Object.keys(P2P_EVENTS))
      expect(protocolDoc, ev).toMatch(new RegExp(`\\|\\s*\`${ev}\`\\s*\\|`));
  });

  it('maps codes to and from the wire both ways; unknown codes become E_INTERNAL', () => {
    for (const code of Object.keys(ERRORS) as (keyof typeof ERRORS)[]) {
      const e = new HchatError(code);
      expect(HchatError.fromWire(e.toWire())).toMatchObject({ code, message: e.message });
    }
    expect(HchatError.fromWire({ code: 'E_WHAT', message: 'x' }).code).toBe('E_INTERNAL');
  });
});
