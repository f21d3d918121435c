import { CompactEncrypt, importJWK, type JWK } from 'jose';
import type { ClientConfig } from '../config/types.ts';
import type { Step } from './types.ts';

/** The JWE algorithms of an encrypted answer (Myinfo's: ECDH-ES key agreement, AES-GCM content). */
export const ANSWER_ENCRYPTION = { alg: 'ECDH-ES+A256KW', enc: 'A256GCM' } as const;

/** A client's encryption key: the `use: "enc"` key of its inline JWKS (config/load.ts checks there is one). */
export const encryptionJwkOf = (client: ClientConfig): JWK | undefined =>
  (client.keys.jwks?.keys as JWK[] | undefined)?.find((k) => k.use === 'enc');

/** Imported once per client of a config generation (a reload brings new client objects). */
const imported = new WeakMap<ClientConfig, { kid?: string; key: Promise<CryptoKey | Uint8Array> }>();
function keyOf(client: ClientConfig) {
  let entry = imported.get(client);
  if (!entry) {
    const jwk = encryptionJwkOf(client)!;
    entry = { kid: jwk.kid, key: importJWK(jwk, ANSWER_ENCRYPTION.alg) };
    imported.set(client, entry);
  }
  return entry;
}

/**
 * For a client configured with `encryptResponses`: the signed answer as a compact JWE to the
 * client's encryption key, so no proxy or log between the gateway and the client reads it. The
 * signature stays over the plaintext (the client verifies it after decrypting) and so does the
 * audit entry's `responseSha256`. Problems stay plain; a streamed answer is not encrypted.
 */
export const encrypt: Step = async (x) => {
  const client = x.auth!.client;
  if (!client.encryptResponses || x.result!.stream || !x.responseBody) return;
  const { kid, key } = keyOf(client);
  const jwe = await new CompactEncrypt(x.responseBody)
    .setProtectedHeader({ ...ANSWER_ENCRYPTION, ...(kid ? { kid } : {}), cty: 'application/json' })
    .encrypt(await key);
  x.encryptedBody = Buffer.from(jwe);
};
