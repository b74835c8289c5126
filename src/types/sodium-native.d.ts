/** The part of sodium-native (libsodium bindings) this project uses. */
declare module 'sodium-native' {
  const sodium: {
    crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
    crypto_sign_BYTES: number;
    crypto_sign_PUBLICKEYBYTES: number;
    crypto_sign_SECRETKEYBYTES: number;
    crypto_sign_SEEDBYTES: number;
    /** Throws on failure. */
    crypto_sign_keypair(publicKey: Buffer, secretKey: Buffer): void;
    crypto_sign_seed_keypair(publicKey: Buffer, secretKey: Buffer, seed: Buffer): void;
    crypto_sign_detached(signature: Buffer, message: Buffer, secretKey: Buffer): void;
    /** Throws when the key is not a valid Ed25519 point. */
    crypto_sign_ed25519_pk_to_curve25519(x25519Public: Buffer, ed25519Public: Buffer): void;
    crypto_sign_ed25519_sk_to_curve25519(x25519Secret: Buffer, ed25519Secret: Buffer): void;
    /** True for a canonical point of the main subgroup that is not of small order. */
    crypto_core_ed25519_is_valid_point(point: Buffer): boolean;
    crypto_scalarmult_BYTES: number;
    crypto_scalarmult_SCALARBYTES: number;
    /** Throws when the result is all zeros (a small-order point). */
    crypto_scalarmult(shared: Buffer, secretKey: Buffer, publicKey: Buffer): void;
    crypto_scalarmult_base(publicKey: Buffer, secretKey: Buffer): void;
    crypto_aead_xchacha20poly1305_ietf_ABYTES: number;
    crypto_aead_xchacha20poly1305_ietf_KEYBYTES: number;
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number;
    /** Returns the ciphertext's length (`ciphertext` must be plaintext + ABYTES long). */
    crypto_aead_xchacha20poly1305_ietf_encrypt(
      ciphertext: Buffer,
      plaintext: Buffer,
      ad: Buffer | null,
      nsec: null,
      nonce: Buffer,
      key: Buffer,
    ): number;
    /** Throws when the tag does not verify. */
    crypto_aead_xchacha20poly1305_ietf_decrypt(
      plaintext: Buffer,
      nsec: null,
      ciphertext: Buffer,
      ad: Buffer | null,
      nonce: Buffer,
      key: Buffer,
    ): number;
    crypto_hash_sha512_BYTES: number;
    crypto_hash_sha512(out: Buffer, input: Buffer): void;
    randombytes_buf(out: Buffer): void;
    sodium_memzero(buf: Buffer): void;
  };
  export default sodium;
}
