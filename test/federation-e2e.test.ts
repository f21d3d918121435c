import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { entryHash, type AuditEntry } from '../gateway/audit/index.ts';
import { ConfigError } from '../gateway/config/errors.ts';
import { createGateway } from '../gateway/server.ts';
import { ROOT } from './bench/processes.ts';
import { startGateway, type TestGateway } from './support/fixtures.ts';
import {
  HOUSEHOLD_SHA256, IDENTITY_SHA256, NATIONAL_ID, PROVINCE_CLIENT, nationalConfig, provinceClientKey, provinceConfig, startFakeRemote, type FakeMode,
} from './support/federation.ts';

const an = world().citizens[0]!;

/** Runs `gateway <args>` as an operator would (the offline verifier needs neither gateway). */
function runCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/gateway.mjs', ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout });
    });
  });
}

async function exportOf(gw: TestGateway): Promise<{ lines: string[]; entries: AuditEntry[] }> {
  const res = await gw.get('/audit/export?format=ndjson', { client: 'auditor' });
  expect(res.status).toBe(200);
  const lines = (await res.text()).trim().split('\n');
  return { lines, entries: lines.map((l) => JSON.parse(l)).filter((e) => !('head' in e)) as AuditEntry[] };
}

describe('two gateways that trust each other', () => {
  let national: TestGateway;
  let province: TestGateway;
  beforeAll(async () => {
    const key = await provinceClientKey();
    national = await startGateway(await nationalConfig(key.jwk));
    province = await startGateway(await provinceConfig(national.url, key.file));
  });
  afterAll(async () => {
    await province?.close();
    await national?.close();
  });

  it('prefills a form on the province from the population database behind the national gateway', async () => {
    const consent = await province.consent(an.personalId, ['core', 'address']);
    const res = await province.call('portal.prefill', { form: 'driving-licence-renewal' }, { consent });
    expect(res.status).toBe(200);
    const body = await res.json();
    const fullName = body.fields.find((f: { name: string }) => f.name === 'fullName');
    expect(fullName).toMatchObject({ status: 'available', value: an.fullName, source: { agency: 'population', reference: expect.stringMatching(/^TC/) } });
  });

  it('passes purpose, case id and officer through, and the national entry names the province gateway acting for the land office', async () => {
    const res = await province.call('population.identity', { personalId: an.personalId }, { client: 'land-office', userId: 'officer.tran' });
    expect(res.status).toBe(200);
    expect((await res.json()).fieldGroups).toEqual({ core: 'released', address: 'released', family: 'released', vital: 'released' });
    const id = res.headers.get('x-request-id')!;
    const mine = (await province.gateway.audit.store.get(id))!;
    const hop = mine.upstreams[0]!;
    expect(hop).toMatchObject({ agency: 'population', operation: 'population.identity/v1', outcome: 'ok', gateway: NATIONAL_ID, reference: expect.stringMatching(/^TC/) });
    const theirs = (await national.gateway.audit.store.get(hop.remoteRequestId!))!;
    expect(theirs).toMatchObject({
      client: PROVINCE_CLIENT, actingFor: 'land-office', userId: 'officer.tran', purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-2026-000123',
      service: 'population.identity', outcome: 'released', responseSha256: hop.answerSha256,
    });
    expect(mine).not.toHaveProperty('actingFor');
  });

  it('verifies a title on the province with the owners read through the national gateway', async () => {
    const res = await province.call('land.title-verification', { certificateSerial: 'CS 100001' }, { client: 'land-office' });
    expect(res.status).toBe(200);
    expect((await res.json()).verdict).toBe('clear');
  });

  it('follows one request across both logs, each side proven from the other, offline', async () => {
    const res = await province.call('population.identity', { personalId: an.personalId }, { client: 'portal' });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    const dir = mkdtempSync(join(tmpdir(), 'gw-fed-proof-'));
    const p = await exportOf(province);
    const n = await exportOf(national);
    for (const [name, gw, exp] of [['province', province, p], ['national', national, n]] as const) {
      writeFileSync(join(dir, `${name}.ndjson`), `${exp.lines.join('\n')}\n`);
      writeFileSync(join(dir, `${name}.jwks.json`), JSON.stringify(await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()));
    }
    // From the files alone: the province's entry names the national's, which names the province back.
    const mine = p.entries.find((e) => e.id === requestId)!;
    const hop = mine.upstreams.find((u) => u.gateway === NATIONAL_ID)!;
    const theirs = n.entries.find((e) => e.id === hop.remoteRequestId)!;
    expect(theirs).toBeDefined();
    expect(theirs.client).toBe(PROVINCE_CLIENT);
    expect(theirs.actingFor).toBe('portal');
    expect(theirs.responseSha256).toBe(hop.answerSha256);
    expect(theirs.purpose).toBe(mine.purpose);
    expect(entryHash(mine)).toBe(mine.hash);
    expect(entryHash(theirs)).toBe(theirs.hash);
    // Entries without the member hash as they always did: direct calls carry no actingFor at all.
    expect(n.entries.filter((e) => e.client !== PROVINCE_CLIENT).every((e) => !('actingFor' in e))).toBe(true);
    for (const name of ['province', 'national']) {
      const r = await runCli(['audit', 'verify', '--export', join(dir, `${name}.ndjson`), '--jwks', join(dir, `${name}.jwks.json`)]);
      expect(r.stdout).toContain('chain intact');
      expect(r.code).toBe(0);
    }
  });

  it('shows the citizen on the national side the original agency, with the gateway that called for it', async () => {
    const consent = await national.consent(an.personalId, ['core'], { azp: 'portal' });
    const res = await national.get('/citizen/access-log', { client: 'portal', consent });
    expect(res.status).toBe(200);
    const { entries } = await res.json();
    const federated = entries.filter((e: { via?: unknown }) => e.via);
    expect(federated.length).toBeGreaterThan(0);
    expect(federated).toContainEqual(expect.objectContaining({
      agency: { id: 'portal', name: 'Cổng dịch vụ công tỉnh (province portal)' }, via: { id: PROVINCE_CLIENT, name: 'Cổng kết nối tỉnh (province gateway)' },
    }));
  });

  it('refuses delegation from a client the national config does not let act for others', async () => {
    const { mintAssertion } = await import('../gateway/client-assertion.ts');
    const { SignJWT, importJWK, decodeJwt } = await import('jose');
    const body = JSON.stringify({ personalId: an.personalId });
    // land-office is an ordinary client at the national gateway: its own assertion plus act/sub.
    const plain = decodeJwt(await mintAssertion({ privateJwk: national.keys['land-office']!, iss: 'land-office', aud: NATIONAL_ID, purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-1', body }));
    const token = await new SignJWT({ ...plain, sub: 'someone-else', act: { sub: 'land-office' } })
      .setProtectedHeader({ alg: 'ES256', kid: national.keys['land-office']!.kid }).sign(await importJWK(national.keys['land-office']!, 'ES256'));
    const res = await national.call('population.identity', null, { raw: body, token });
    expect(res.status).toBe(403);
    expect((await res.json()).code).toBe('FORBIDDEN_ACTING_PARTY');
  });

  it('lists the national\'s pinned service in the province\'s discovery and OpenAPI under its own id and version', async () => {
    const services = await (await province.get('/services', { client: 'portal' })).json();
    expect(services.services).toContainEqual(expect.objectContaining({ service: 'population.identity', version: 1, gateway: NATIONAL_ID }));
    const openapi = await (await fetch(`${province.url}/openapi.json`)).json();
    expect(openapi.paths['/services/population.identity/v1'].post['x-gateway']).toBe(NATIONAL_ID);
    const doc = await (await fetch(`${national.url}/services/population.identity/v1`)).json();
    expect(doc.contractSha256).toBe(IDENTITY_SHA256);
  });
});

describe('a remote gateway that is down', () => {
  let province: TestGateway;
  beforeAll(async () => {
    const key = await provinceClientKey();
    // Unreachable at start: the province starts on its own copy of the pinned contract (same hash).
    province = await startGateway(await provinceConfig('http://127.0.0.1:9', key.file));
  });
  afterAll(async () => { await province?.close(); });

  it('gives UPSTREAM_UNAVAILABLE and makes the title verification incomplete, never clear', async () => {
    const res = await province.call('population.identity', { personalId: an.personalId }, { client: 'land-office' });
    expect(res.status).toBe(503);
    expect((await res.json()).code).toBe('UPSTREAM_UNAVAILABLE');
    const tv = await province.call('land.title-verification', { certificateSerial: 'CS 100001' }, { client: 'land-office' });
    const body = await tv.json();
    expect(body.verdict).toBe('incomplete');
    expect(body.failedSources).toContainEqual(expect.objectContaining({ agency: 'population', code: 'UPSTREAM_UNAVAILABLE' }));
  });

  it('refuses to start when it holds no copy of a pinned contract the unreachable remote would have to give', async () => {
    const key = await provinceClientKey();
    const cfg = await provinceConfig('http://127.0.0.1:9', key.file, {
      services: [{ service: 'population.identity', version: 1, contractSha256: IDENTITY_SHA256 }, { service: 'population.household', version: 1, contractSha256: HOUSEHOLD_SHA256 }],
    });
    await expect(createGateway(cfg)).rejects.toThrow(/\/upstreams\/population\/gateway\/services\/1: .* cannot be reached at start/);
  });
});

describe('a remote gateway that is slow or lies', () => {
  let fake: Awaited<ReturnType<typeof startFakeRemote>>;
  let province: TestGateway;
  beforeAll(async () => {
    fake = await startFakeRemote();
    const key = await provinceClientKey();
    province = await startGateway(await provinceConfig(fake.url, key.file, {
      timeoutMs: 400,
      services: [{ service: 'population.identity', version: 1, contractSha256: IDENTITY_SHA256 }, { service: 'population.household', version: 1, contractSha256: HOUSEHOLD_SHA256 }],
      patch: (raw) => raw.grants.push({ client: 'portal', service: 'population.household', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['members'] }),
    }));
  });
  afterAll(async () => {
    await province?.close();
    await fake?.close();
  });

  it('releases an honest answer, verified', async () => {
    fake.state.mode = 'honest';
    const res = await province.call('population.identity', { personalId: an.personalId }, { client: 'land-office' });
    expect(res.status).toBe(200);
    expect((await res.json()).source.reference).toBe('TC-FAKE-0001');
  });

  it('times out on a slow remote (UPSTREAM_TIMEOUT)', async () => {
    fake.state.mode = 'slow';
    const res = await province.call('population.identity', { personalId: an.personalId }, { client: 'land-office' });
    expect((await res.json()).code).toBe('UPSTREAM_TIMEOUT');
  });

  for (const mode of ['unsigned', 'badSignature', 'otherKey', 'changedBody', 'wrongRequestHash', 'outsideContract'] as FakeMode[]) {
    it(`refuses an answer that is ${mode}: UPSTREAM_BAD_RESPONSE, nothing released`, async () => {
      fake.state.mode = mode;
      const res = await province.call('population.identity', { personalId: an.personalId }, { client: 'land-office' });
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(JSON.parse(text).code).toBe('UPSTREAM_BAD_RESPONSE');
      expect(text).not.toContain(an.fullName);
      const entry = (await province.gateway.audit.store.get(res.headers.get('x-request-id')!))!;
      expect(entry).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_BAD_RESPONSE', fields: [] });
      expect(entry.upstreams[0]).toMatchObject({ gateway: NATIONAL_ID, outcome: 'error', errorCode: 'UPSTREAM_BAD_RESPONSE' });
      expect(entry.upstreams[0]).not.toHaveProperty('answerSha256');
    });
  }

  it('serves a service only the remote publishes, under its id and version, by forwarding', async () => {
    fake.state.mode = 'honest';
    const services = await (await province.get('/services', { client: 'portal' })).json();
    expect(services.services).toContainEqual(expect.objectContaining({ service: 'population.household', version: 1, gateway: NATIONAL_ID }));
    const openapi = await (await fetch(`${province.url}/openapi.json`)).json();
    expect(openapi.paths).toHaveProperty(['/services/population.household/v1']);
    const res = await province.call('population.household', { personalId: an.personalId }, { client: 'portal' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ householdId: 'HK-0001', fieldGroups: { members: 'released' } });
  });

  it('refuses to start on a pinned version the remote retired, or a contract it changed, naming the key', async () => {
    const key = await provinceClientKey();
    fake.state.retired = true;
    await expect(createGateway(await provinceConfig(fake.url, key.file))).rejects.toThrow(ConfigError);
    await expect(createGateway(await provinceConfig(fake.url, key.file))).rejects.toThrow(/\/upstreams\/population\/gateway\/services\/0\/version: .* does not publish population.identity v1/);
    fake.state.retired = false;
    fake.state.changedContract = true;
    await expect(createGateway(await provinceConfig(fake.url, key.file))).rejects.toThrow(/\/upstreams\/population\/gateway\/services\/0\/contractSha256: /);
    fake.state.changedContract = false;
  });
});
