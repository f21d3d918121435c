/**
 * Signing key rotation with two real `gateway start` instances sharing one key set (the single key
 * file of before, and the `signing/` directory beside it), as the docker stack's instances share
 * their keys volume. `gateway keys rotate` publishes a new key at once and activates it a delay
 * later; both instances pick it up by polling the set, without a restart, and sign with it from
 * its activation; old answer signatures and checkpoints still verify against the new JWKS, on both
 * instances and offline (`gateway audit verify --export … --jwks …`). `--now` and SIGHUP
 * (`gateway reload`) switch at once.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { loadOrCreatePrivateJwk } from '../gateway/keys.ts';
import { verifyCheckpointJws } from '../gateway/signing.ts';
import type { GatewayConfig } from '../gateway/config/index.ts';
import { ROOT } from './bench/processes.ts';
import { testConfig, testKeys, type TestKeys } from './support/fixtures.ts';
import { cleanups, launch, runCleanups, until, userEnv, type Launched } from './support/launch.ts';

const BODY = JSON.stringify({ personalId: '001085123456' });
let keys: TestKeys;
let shared: string;
let configs: { cfg: GatewayConfig; file: string }[];
let a: Launched;
let b: Launched;

const cli = (...args: string[]) => promisify(execFile)(process.execPath, ['bin/gateway.mjs', ...args], { cwd: ROOT, env: userEnv() })
  .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));

beforeAll(async () => {
  keys = await testKeys();
  shared = mkdtempSync(join(tmpdir(), 'gw-keyset-'));
  cleanups.push(() => rmSync(shared, { recursive: true, force: true }));
  // Made once before the instances start, as the docker stack's keygen does.
  await loadOrCreatePrivateJwk(join(shared, 'gateway.private.jwk.json'), 'ES256');
  configs = [];
  for (const instanceId of ['gw-a', 'gw-b']) {
    const cfg = await testConfig((raw) => {
      raw.instanceId = instanceId;
      raw.logLevel = 'info';
      raw.signing = { privateJwkFile: join(shared, 'gateway.private.jwk.json'), rotation: { activationDelaySeconds: 3, pollSeconds: 1 } };
      raw.audit.checkpointEveryEntries = 1;
    });
    const file = join(cfg.dataDir, 'gateway.config.json');
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    cleanups.push(() => rmSync(cfg.dataDir, { recursive: true, force: true }));
    configs.push({ cfg, file });
  }
  [a, b] = await Promise.all(configs.map(({ cfg, file }) => launch(process.execPath, ['bin/gateway.mjs', 'start', '--config', file], { dataDir: cfg.dataDir })));
}, 90_000);
afterAll(runCleanups);

/** A data answer: its bytes and the kid that signed it. */
async function answer(g: Launched) {
  const token = await mintAssertion({ privateJwk: keys.portal!, iss: 'portal', aud: configs[0]!.cfg.gatewayId, purpose: 'PUBLIC_SERVICE_PREFILL', body: BODY });
  const res = await fetch(`${g.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: BODY });
  expect(res.status).toBe(200);
  const signature = res.headers.get('x-gateway-signature')!;
  return { body: Buffer.from(await res.arrayBuffer()), signature, kid: decodeProtectedHeader(signature).kid as string };
}

const jwksOf = async (g: Launched) => (await (await fetch(`${g.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
const kids = async (g: Launched) => (await jwksOf(g)).keys.map((k) => k.kid);

async function asAuditor(g: Launched, path: string) {
  const token = await mintAssertion({ privateJwk: keys.auditor!, iss: 'auditor', aud: configs[0]!.cfg.gatewayId, body: '' });
  return fetch(`${g.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
}
type Cp = { seq: number; jws: string };
const checkpoints = async (g: Launched) => ((await (await asAuditor(g, '/audit/checkpoints')).json()) as { checkpoints: Cp[] }).checkpoints;
const kidOf = (jws: string) => decodeProtectedHeader(jws).kid;

/** Verifies a detached answer signature (`header..signature`) under a JWKS. */
async function verifyAnswer(x: { body: Buffer; signature: string }, jwks: JSONWebKeySet) {
  const [header, , sig] = x.signature.split('.');
  return compactVerify(`${header}.${x.body.toString('base64url')}.${sig}`, createLocalJWKSet(jwks));
}

describe('signing key rotation across two instances, no restart', () => {
  let k1: string;
  let k2: string;
  let oldAnswer: Awaited<ReturnType<typeof answer>>;
  let oldCheckpoint: Cp;
  let jwksBefore: JSONWebKeySet;

  it('before: both instances publish and sign with the one key of the single key file', async () => {
    jwksBefore = await jwksOf(a);
    expect(jwksBefore.keys).toHaveLength(1);
    k1 = jwksBefore.keys[0]!.kid!;
    expect(await kids(b)).toEqual([k1]);
    oldAnswer = await answer(a);
    expect(oldAnswer.kid).toBe(k1);
    oldCheckpoint = await until('a checkpoint on A', async () => (await checkpoints(a)).at(-1));
    expect(kidOf(oldCheckpoint.jws)).toBe(k1);
  });

  it('gateway keys rotate publishes a new key (0600) on both instances, which both sign with after its activation time', async () => {
    const rotated = await cli('keys', 'rotate', '--config', configs[0]!.file);
    expect(rotated.code, rotated.stderr).toBe(0);
    const { dir, added } = JSON.parse(rotated.stdout.slice(0, rotated.stdout.lastIndexOf('}') + 1)) as { dir: string; added: { kid: string; state: string } };
    k2 = added.kid;
    expect(k2).not.toBe(k1);
    expect(dir).toBe(join(shared, 'signing'));
    expect(statSync(join(dir, `${k2}.private.jwk.json`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, `${k1}.private.jwk.json`)).mode & 0o777).toBe(0o600);

    for (const g of [a, b]) await until('the new key published', async () => ((await kids(g)).includes(k2)) || undefined);
    for (const g of [a, b]) await until('answers signed with the new key', async () => ((await answer(g)).kid === k2) || undefined);
    expect(await kids(a)).toEqual([k1, k2]);
    expect(await kids(b)).toEqual([k1, k2]);
    const ready = (await (await fetch(`${b.url}/readyz`)).json()) as { signingKid: string };
    expect(ready.signingKid).toBe(k2);
  });

  it('the old answer and the old checkpoint verify against the new JWKS of either instance; new checkpoints carry the new kid', async () => {
    for (const g of [a, b]) {
      const jwks = await jwksOf(g);
      expect((await verifyAnswer(oldAnswer, jwks)).protectedHeader.kid).toBe(k1);
      expect(await verifyCheckpointJws(oldCheckpoint.jws, jwks)).toMatchObject({ seq: oldCheckpoint.seq });
    }
    const fresh = await answer(a);
    await expect(verifyAnswer(fresh, jwksBefore)).rejects.toThrow();
    const latest = await until('a checkpoint by the new key', async () => (await checkpoints(a)).find((c) => kidOf(c.jws) === k2));
    expect(latest.seq).toBeGreaterThan(oldCheckpoint.seq);
    expect(await (await asAuditor(a, '/audit/verify')).json()).toMatchObject({ ok: true, problem: null });
  });

  it('the offline verifier passes an export across the rotation with the new JWKS (and not with the old one alone)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gw-rotation-export-'));
    cleanups.push(() => rmSync(out, { recursive: true, force: true }));
    writeFileSync(join(out, 'audit.ndjson'), await (await asAuditor(a, '/audit/export?format=ndjson')).text());
    writeFileSync(join(out, 'checkpoints.json'), JSON.stringify({ checkpoints: await checkpoints(a) }));
    writeFileSync(join(out, 'jwks.json'), JSON.stringify(await jwksOf(a)));
    writeFileSync(join(out, 'old-jwks.json'), JSON.stringify(jwksBefore));
    const exported = readFileSync(join(out, 'checkpoints.json'), 'utf8');
    expect(exported).toContain(oldCheckpoint.jws);
    const args = ['audit', 'verify', '--export', join(out, 'audit.ndjson'), '--checkpoints', join(out, 'checkpoints.json')];
    const passed = await cli(...args, '--jwks', join(out, 'jwks.json'));
    expect(passed.code, passed.stdout + passed.stderr).toBe(0);
    expect(passed.stdout).toMatch(/^chain intact: /m);
    const refused = await cli(...args, '--jwks', join(out, 'old-jwks.json'));
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout.slice(0, refused.stdout.lastIndexOf('}') + 1))).toMatchObject({ ok: false, problem: 'checkpoint_signature' });
  });

  it('keys rotate --now, then gateway reload: that instance signs with the third key as soon as the reload is reported, the other one after its next poll', async () => {
    const rotated = await cli('keys', 'rotate', '--now', '--config', configs[1]!.file);
    expect(rotated.code, rotated.stderr).toBe(0);
    const k3 = (JSON.parse(rotated.stdout.slice(0, rotated.stdout.lastIndexOf('}') + 1)) as { added: { kid: string } }).added.kid;
    const reloaded = await cli('reload', '--config', configs[0]!.file);
    expect(reloaded.code, reloaded.stderr).toBe(0);
    expect((await answer(a)).kid).toBe(k3);
    await until('B signing with the third key', async () => ((await answer(b)).kid === k3) || undefined);
    const listed = await cli('keys', 'list', '--config', configs[0]!.file);
    const states = (JSON.parse(listed.stdout) as { keys: { kid: string; state: string; retiredAt: string | null }[] }).keys;
    expect(states.map((k) => [k.kid, k.state])).toEqual([[k1, 'retired'], [k2, 'retired'], [k3, 'active']]);
    expect(states[0]!.retiredAt).not.toBeNull();
    expect(await kids(b)).toEqual([k1, k2, k3]);
    expect(await (await asAuditor(b, '/audit/verify')).json()).toMatchObject({ ok: true });
  });
});
