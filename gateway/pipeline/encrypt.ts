import { createCipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { ClientConfig } from '../config/types.ts';
import type { Step } from './types.ts';

/** The JWE algorithms of an encrypted answer (Myinfo's: ECDH-ES key agreement with key wrapping, AES-GCM content). */
export const ANSWER_ENCRYPTION = { alg: 'ECDH-ES+A256KW', enc: 'A256GCM' } as const;

/** A client's encryption key: the `use: "enc"` key of its inline JWKS (config/load.ts checks there is one). */
export const encryptionJwkOf = (client: ClientConfig): JWK | undefined =>
  (client.keys.jwks?.keys as JWK[] | undefined)?.find((k) => k.use === 'enc');

const uint32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** RFC 7518 §4.6.2: Concat KDF (one SHA-256 round) over Z, for the key-wrapping key of `alg`; no apu, no apv. */
const OTHER_INFO = Buffer.concat([uint32(ANSWER_ENCRYPTION.alg.length), Buffer.from(ANSWER_ENCRYPTION.alg), uint32(0), uint32(0), uint32(256)]);
const kdf = (z: Buffer) => createHash('sha256').update(Buffer.concat([uint32(1), z, OTHER_INFO])).digest();
/** RFC 3394's default initial value for AES key wrap. */
const KEY_WRAP_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

/**
 * Compact JWE (RFC 7516) of `plaintext` to one recipient's public key, ECDH-ES+A256KW with
 * A256GCM, on node:crypto: a fresh ephemeral key per answer, the content key wrapped under the
 * agreed key, the protected header as the GCM additional data. jose's WebCrypto path costs about
 * four times the CPU per answer; the tests decrypt every answer with jose.
 */
export function answerEncrypter(jwk: JWK): (plaintext: Buffer) => string {
  const recipient: KeyObject = createPublicKey({ key: jwk as never, format: 'jwk' });
  const ephemeral = jwk.kty === 'OKP'
    ? () => generateKeyPairSync('x25519')
    : () => generateKeyPairSync('ec', { namedCurve: recipient.asymmetricKeyDetails!.namedCurve! });
  return (plaintext) => {
    const { publicKey, privateKey } = ephemeral();
    const kek = kdf(diffieHellman({ privateKey, publicKey: recipient }));
    const cek = randomBytes(32);
    const wrap = createCipheriv('id-aes256-wrap', kek, KEY_WRAP_IV);
    const encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
    const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
    const header = Buffer.from(JSON.stringify({ ...ANSWER_ENCRYPTION, ...(jwk.kid ? { kid: jwk.kid } : {}), cty: 'application/json', epk: { kty, crv, x, ...(y ? { y } : {}) } })).toString('base64url');
    const iv = randomBytes(12);
    const gcm = createCipheriv('aes-256-gcm', cek, iv);
    gcm.setAAD(Buffer.from(header, 'ascii'));
    const ciphertext = Buffer.concat([gcm.update(plaintext), gcm.final()]);
    return [header, encryptedKey.toString('base64url'), iv.toString('base64url'), ciphertext.toString('base64url'), gcm.getAuthTag().toString('base64url')].join('.');
  };
}

/** Built once per client of a config generation (a reload brings new client objects). */
const encrypters = new WeakMap<ClientConfig, (plaintext: Buffer) => string>();
function encrypterOf(client: ClientConfig) {
  let e = encrypters.get(client);
  if (!e) encrypters.set(client, (e = answerEncrypter(encryptionJwkOf(client)!)));
  return e;
}

/**
 * For a client configured with `encryptResponses`: the signed answer as a compact JWE to the
 * client's encryption key, so no proxy or log between the gateway and the client reads it. The
 * signature stays over the plaintext (the client verifies it after decrypting) and so does the
 * audit entry's `responseSha256`. Problems stay plain; a streamed answer is not encrypted.
 */
export const encrypt: Step = (x) => {
  const client = x.auth!.client;
  if (!client.encryptResponses || x.result!.stream || !x.responseBody) return;
  x.encryptedBody = Buffer.from(encrypterOf(client)(x.responseBody));
};
