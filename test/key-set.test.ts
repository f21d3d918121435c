/**
 * The signing key set on disk (gateway/key-set.ts): the single key file of before is the whole set
 * until the first rotation makes it the set's first key; the key that signs is the one activated
 * last; a set that cannot be read keeps the keys in use; pruning spares keys that signed a stored
 * checkpoint unless forced.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { activeKey, MANIFEST, openSigningKeys, pruneKeySet, readKeySet, rotateKeySet, signingPaths } from '../gateway/key-set.ts';
import { createSigner, verifyCheckpointJws } from '../gateway/signing.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const DAY = 86_400_000;

function paths() {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-keyset-unit-'));
  dirs.push(dataDir);
  return signingPaths({ dataDir, signing: { alg: 'ES256', rotation: { activationDelaySeconds: 0, pollSeconds: 1, retainRetiredDays: 400 } } });
}

describe('the signing key set', () => {
  it('without a manifest: the single key file, generated at first use, is the set; the first rotation copies it in as the first key', async () => {
    const p = paths();
    expect(p.dir).toBe(join(p.legacyFile, '..', 'signing'));
    const [only] = await readKeySet(p, 'ES256');
    expect(statSync(p.legacyFile).mode & 0o777).toBe(0o600);
    expect(only!.activatesAt).toBe(0);
    const now = Date.now();
    const { added, keys } = await rotateKeySet(p, 'ES256', { now, delaySeconds: 60 });
    expect(keys.map((k) => [k.kid, k.state])).toEqual([[only!.kid, 'active'], [added.kid, 'pending']]);
    expect(added.activatesAt).toBe(new Date(now + 60_000).toISOString());
    const manifest = JSON.parse(readFileSync(join(p.dir, MANIFEST), 'utf8'));
    expect(manifest.keys.map((k: { file: string }) => k.file)).toEqual([`${only!.kid}.private.jwk.json`, `${added.kid}.private.jwk.json`]);
    for (const k of manifest.keys) expect(statSync(join(p.dir, k.file)).mode & 0o777).toBe(0o600);
  });

  it('the signer signs with the key active now and publishes every key; what it signed verifies against the published set', async () => {
    const p = paths();
    await readKeySet(p, 'ES256');
    await rotateKeySet(p, 'ES256', { now: Date.now() - 1000, delaySeconds: 0 });
    const pending = await rotateKeySet(p, 'ES256', { now: Date.now(), delaySeconds: 3600 });
    const keys = await readKeySet(p, 'ES256');
    const signer = createSigner({ keys: () => keys });
    expect(signer.jwks.keys.map((k) => k.kid)).toEqual(keys.map((k) => k.kid));
    expect(signer.kid).toBe(keys[1]!.kid);
    expect(activeKey(keys, Date.parse(pending.added.activatesAt))).toBe(keys[2]);
    const jws = await signer.signCheckpoint({ seq: 1, hash: 'a'.repeat(64), time: new Date().toISOString() });
    expect(decodeProtectedHeader(jws).kid).toBe(keys[1]!.kid);
    expect(await verifyCheckpointJws(jws, signer.jwks)).toMatchObject({ seq: 1 });
    const body = Buffer.from('{"x":1}');
    const [h, , s] = (await signer.signResponse(body, { requestId: 'r', requestSha256: 'x' })).split('.');
    await expect(compactVerify(`${h}.${body.toString('base64url')}.${s}`, createLocalJWKSet(signer.jwks))).resolves.toBeDefined();
  });

  it('a running gateway\'s set that becomes unreadable keeps the keys in use', async () => {
    const p = paths();
    await rotateKeySet(p, 'ES256', { now: Date.now(), delaySeconds: 0 });
    const errors: unknown[] = [];
    const logger = { info() {}, error: (o: unknown) => errors.push(o) } as never;
    const keys = await openSigningKeys({ dataDir: join(p.legacyFile, '..', '..'), signing: { alg: 'ES256', rotation: { activationDelaySeconds: 0, pollSeconds: 3600, retainRetiredDays: 400 } } }, logger);
    try {
      const before = keys.keys();
      expect(before).toHaveLength(2);
      writeFileSync(join(p.dir, MANIFEST), '{ not json');
      await keys.reload();
      expect(keys.keys()).toBe(before);
      expect(errors).toHaveLength(1);
    } finally {
      keys.close();
    }
  });

  it('prune stops publishing keys retired longer than the retention, except one that signed a stored checkpoint (unless forced)', async () => {
    const p = paths();
    const now = Date.now();
    await readKeySet(p, 'ES256');
    utimesSync(p.legacyFile, new Date(now - 600 * DAY), new Date(now - 600 * DAY));
    const k2 = (await rotateKeySet(p, 'ES256', { now: now - 500 * DAY, delaySeconds: 0 })).added.kid;
    const k3 = (await rotateKeySet(p, 'ES256', { now: now - 450 * DAY, delaySeconds: 0 })).added.kid;
    const k4 = (await rotateKeySet(p, 'ES256', { now: now - 10 * DAY, delaySeconds: 0 })).added.kid;
    const k1 = (await readKeySet(p, 'ES256'))[0]!.kid;
    // k1 retired 500 days ago and signed a checkpoint; k2 retired 450 days ago; k3 10 days ago.
    const kept = await pruneKeySet(p, 'ES256', { now, retainDays: 400, signedCheckpoints: new Set([k1]) });
    expect(kept.removed.map((k) => k.kid)).toEqual([k2]);
    expect((await readKeySet(p, 'ES256')).map((k) => k.kid)).toEqual([k1, k3, k4]);
    const forced = await pruneKeySet(p, 'ES256', { now, retainDays: 400, signedCheckpoints: new Set([k1]), force: true });
    expect(forced.removed.map((k) => k.kid)).toEqual([k1]);
    expect((await readKeySet(p, 'ES256')).map((k) => k.kid)).toEqual([k3, k4]);
  });
});
