/**
 * One-shot key set-up of the docker stack (the `keygen` service of docker/compose.yaml, which runs
 * the compiled dist/docker/keygen.js; from a checkout, `node --import tsx docker/keygen.ts`):
 *
 *   node dist/docker/keygen.js <gateway-keys-dir> <public-jwks-dir> <demo-clients-dir>
 *
 * - the gateway's signing key, shared by every instance (`signing.privateJwkFile`; the first key
 *   of the key set that `gateway keys rotate` makes beside it, in `signing/`);
 * - a private key for each demo agency (portal, land-office, auditor) and for the identity
 *   provider that signs citizen consent: in real life each agency holds its own, so they go to a
 *   volume the gateways never mount;
 * - the public JWKS of each, served by the `agency-jwks` web server, where the gateway config's
 *   `jwksUrl`s point, as agencies publish their keys.
 *
 * Existing keys are kept, so restarting the stack does not invalidate issued tokens.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadOrCreatePrivateJwk, publicPart } from '../gateway/keys.ts';

/** Who gets a key pair besides the gateway: the demo clients and the identity provider. */
const KEY_HOLDERS = ['portal', 'land-office', 'auditor', 'idp'] as const;

async function generateStackKeys(gatewayKeysDir: string, jwksDir: string, clientsDir: string): Promise<void> {
  await loadOrCreatePrivateJwk(join(gatewayKeysDir, 'gateway.private.jwk.json'), 'ES256');
  mkdirSync(jwksDir, { recursive: true });
  for (const holder of KEY_HOLDERS) {
    const jwk = await loadOrCreatePrivateJwk(join(clientsDir, `${holder}.private.jwk.json`), 'ES256');
    const file = join(jwksDir, `${holder}.jwks.json`);
    writeFileSync(file, JSON.stringify({ keys: [publicPart(jwk)] }, null, 2) + '\n');
    // Public keys: the web server's workers run as another user.
    chmodSync(file, 0o644);
  }
}

const [gatewayKeys, jwks, clients] = process.argv.slice(2);
if (!gatewayKeys || !jwks || !clients) {
  process.stderr.write('usage: keygen.ts <gateway-keys-dir> <public-jwks-dir> <demo-clients-dir>\n');
  process.exit(64);
}
await generateStackKeys(resolve(gatewayKeys), resolve(jwks), resolve(clients));
process.stdout.write(`keys ready: gateway signing key in ${gatewayKeys}, public JWKS in ${jwks}, demo client keys in ${clients}\n`);
