/**
 * Fresh key pairs, encoded by the generation itself. Node 20 can deadlock when a garbage
 * collection runs while a KeyObject that `generateKeyPairSync` returned is being exported: the
 * collected key-generation job's destructor takes the lock the export holds (a test worker hung
 * for good in a futex wait under `~KeyGenJob`, called from `KeyObjectHandle::ExportJWK`). Keys
 * made again from the encoded bytes share nothing with the job, so exporting them is safe.
 */
import crypto from 'node:crypto';

/** A new key pair of `type` (`p256`: ECDSA on P-256). */
export function newKeyPair(type: 'ed25519' | 'x25519' | 'p256'): {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
} {
  const der = encoded(type);
  return {
    privateKey: crypto.createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' }),
    publicKey: crypto.createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' }),
  };
}

/** The pair as DER (SPKI and PKCS#8), straight from the generation. */
function encoded(type: 'ed25519' | 'x25519' | 'p256'): { publicKey: Buffer; privateKey: Buffer } {
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'der' } as const;
  if (type === 'p256')
    return crypto.generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding,
      privateKeyEncoding,
    });
  if (type === 'x25519')
    return crypto.generateKeyPairSync('x25519', { publicKeyEncoding, privateKeyEncoding });
  return crypto.generateKeyPairSync('ed25519', { publicKeyEncoding, privateKeyEncoding });
}
