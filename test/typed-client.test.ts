/**
 * The typed client (clients/typescript) against a real gateway on loopback, and a lying gateway in
 * front of it; and its generated types against the OpenAPI document of this repository.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { world } from '../adapters/world/index.ts';
import { createGatewayClient, GatewaySignatureError, type AnswerOf } from '../clients/typescript/src/index.ts';
import { GENERATED_FILE, generate, repositoryDocument } from '../clients/typescript/scripts/generate.ts';
import { startLyingGateway, type LyingGateway, type Tamper } from './support/lying-gateway.ts';
import { startGateway, type TestGateway } from './support/fixtures.ts';

const citizen = world().citizens.find((c) => c.lifeStatus === 'alive')!;

let gw: TestGateway;
let liar: LyingGateway;

beforeAll(async () => {
  gw = await startGateway();
  liar = await startLyingGateway(gw.url);
});
afterAll(async () => {
  await liar.close();
  await gw.close();
});

const portal = (url = gw.url) => createGatewayClient({ url, clientId: 'portal', privateJwk: gw.keys.portal! });

describe('the typed client', () => {
  it('calls a service, verifies the answer and returns it typed (the gateway id read from its configuration)', async () => {
    const result = await portal().call('population.identity/v1', { personalId: citizen.personalId }, { purpose: 'PUBLIC_SERVICE_PREFILL' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const identity: AnswerOf<'population.identity/v1'> = result.data;
    expect(identity.personalId).toBe(citizen.personalId);
    expect(result.signature.kid).toBe(gw.gateway.signer.jwks.keys[0]!.kid);
    const entry = await gw.gateway.audit.store.get(result.requestId);
    expect(entry).toMatchObject({ client: 'portal', outcome: 'released', service: 'population.identity' });
  });

  it('returns the problem, typed by code, when the gateway refuses', async () => {
    const result = await portal().call('population.identity/v1', { personalId: citizen.personalId }, { purpose: 'AUDIT_REVIEW' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.status).toBe(403);
    expect(result.problem.code).toBe('FORBIDDEN_PURPOSE');
  });

  it('sends the consent and the case id, and calls signed GET endpoints', async () => {
    const landOffice = createGatewayClient({ url: gw.url, clientId: 'land-office', privateJwk: gw.keys['land-office']!, gatewayId: gw.config.gatewayId });
    const parcel = world().parcels[0]!;
    const title = await landOffice.call('land.title-verification/v1', { certificateSerial: parcel.certificate.serial }, { purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-2026-000777', userId: 'officer-9' });
    expect(title.ok && title.data.verdict).toBeTruthy();
    const auditor = createGatewayClient({ url: gw.url, clientId: 'auditor', privateJwk: gw.keys.auditor!, gatewayId: gw.config.gatewayId });
    const page = await auditor.get('/audit/entries', { caseId: 'HS-2026-000777', limit: 5 }, { purpose: 'AUDIT_REVIEW' });
    expect(page.ok).toBe(true);
    if (page.ok) expect(page.data.entries.map((e) => e.userId)).toEqual(['officer-9']);
    const consent = await gw.consent(citizen.personalId, ['core']);
    const log = await portal().get('/citizen/access-log', {}, { consent });
    expect(log.ok).toBe(true);
  });

  it.each([
    ['a changed answer', 'SIGNATURE_INVALID', (body: Buffer, headers: Record<string, string>) => ({ body: Buffer.from(body.toString().replace(citizen.personalId, '001099000000')), headers })],
    ['no signature', 'SIGNATURE_MISSING', (body: Buffer, headers: Record<string, string>) => {
      const { 'x-gateway-signature': _dropped, ...rest } = headers;
      return { body, headers: rest };
    }],
    ['the answer to another request id', 'REQUEST_ID_MISMATCH', (body: Buffer, headers: Record<string, string>) => ({ body, headers: { ...headers, 'x-request-id': '0190f1e2-0000-7000-8000-000000000000' } })],
  ] as [string, string, Tamper][])('refuses %s with %s', async (_name, reason, change) => {
    liar.tamper = change;
    try {
      const error = await portal(liar.url).call('population.identity/v1', { personalId: citizen.personalId }, { purpose: 'PUBLIC_SERVICE_PREFILL' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GatewaySignatureError);
      expect((error as GatewaySignatureError).reason).toBe(reason);
    } finally {
      liar.tamper = null;
    }
  });

  it("has types generated from this repository's OpenAPI document, not stale", async () => {
    expect(readFileSync(GENERATED_FILE, 'utf8')).toBe(await generate(await repositoryDocument()));
  });

  it('builds as a package of its own', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'gw-client-'));
    await promisify(execFile)(process.execPath, [join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'clients/typescript', '--outDir', outDir]);
    for (const file of ['index.js', 'index.d.ts', 'generated/openapi.d.ts']) expect(existsSync(join(outDir, file)), file).toBe(true);
    const pkg = JSON.parse(readFileSync('clients/typescript/package.json', 'utf8'));
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(Object.keys(pkg.dependencies)).toEqual(['jose']);
  });
});
