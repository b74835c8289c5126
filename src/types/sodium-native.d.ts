/** The part of sodium-native (libsodium bindings) this project uses. */
declare module 'sodium-native' {
  const sodium: {
    crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
    crypto_sign_BYTES: number;
    crypto_sign_PUBLICKEYBYTES: number;
  };
  export default sodium;
}
