/**
 * Input that tries to make the log lie or the browser misread: unprintable characters in a
 * service id from the path and in stored claims, tokens addressed to more than this gateway, and
 * answers a browser could sniff into something else.
 */
import { createHash, randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../../adapters/world/index.ts';
import { escapeUnprintable, isPrintable } from '../../gateway/domain/index.ts';
import { GATEWAY_ID, IDP_ISSUER, startGateway, type TestGateway } from '../support/fixtures.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

const auditor = { client: 'auditor' };
const personalId = () => world().citizens[0]!.personalId;
const seconds = () => Math.floor(Date.now() / 1000);
const b64sha = (s: string) => createHash('sha256').update(s).digest('base64url');

async function signed(jwk: JWK, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: jwk.kid }).sign(await importJWK(jwk, 'ES256'));
}

/** A portal assertion for `body` with `extra` claims over the usual ones. */
const portalToken = (body: string, extra: Record<string, unknown> = {}) => signed(gw.keys.portal!, {
  iss: 'portal', aud: GATEWAY_ID, iat: seconds(), exp: seconds() + 60, jti: randomUUID(), purpose: 'PUBLIC_SERVICE_PREFILL', body_sha256: b64sha(body), ...extra,
});

describe('unprintable characters never reach the log as they came', () => {
  const NASTY = ['\u001b[31m', '\t', '\r\n', '\u202e', '\u200b', '\u2066', '\ufeff', '\u2028'];

  it('writes a service id from the path with its control, bidi and zero-width characters escaped', async () => {
    const requested = `pop\u001b[2Jula\ttion\r\n.ide\u202ent\u200bity`;
    const res = await fetch(`${gw.url}/services/${encodeURIComponent(requested)}/v1`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await portalToken('{}')}` }, body: '{}',
    });
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe('SERVICE_UNKNOWN');
    const entry = await gw.gateway.audit.store.get(res.headers.get('x-request-id')!);
    expect(entry!.service).toBe(escapeUnprintable(requested));
    expect(entry!.service).toContain('\\u{1b}');
    expect(isPrintable(entry!.service)).toBe(true);
    expect((await gw.gateway.audit.verify()).ok).toBe(true);
  });

  it('keeps the stored service id within 100 characters, never cutting an escape', async () => {
    const requested = '\u202e'.repeat(40);
    const res = await fetch(`${gw.url}/services/${encodeURIComponent(requested)}/v1`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await portalToken('{}')}` }, body: '{}',
    });
    const entry = await gw.gateway.audit.store.get(res.headers.get('x-request-id')!);
    expect(entry!.service.length).toBeLessThanOrEqual(100);
    expect(entry!.service).toMatch(/^(\\u\{202e\})+$/);
  });

  it.each(NASTY)('refuses user_id, case_id and purpose holding %j: AUTH_INVALID, nothing stored', async (bad) => {
    const body = JSON.stringify({ personalId: personalId() });
    for (const claim of ['user_id', 'case_id', 'purpose']) {
      const value = claim === 'purpose' ? `PUBLIC_SERVICE_PREFILL${bad}` : `officer${bad}nguyen`;
      const res = await gw.call('population.identity', JSON.parse(body), { token: await portalToken(body, { [claim]: value }) });
      expect(res.status, claim).toBe(401);
      expect((await res.json()).code, claim).toBe('AUTH_INVALID');
    }
  });

  it('takes Vietnamese names and ordinary punctuation in user_id and case_id', async () => {
    const body = JSON.stringify({ personalId: personalId() });
    const res = await gw.call('population.identity', JSON.parse(body), { token: await portalToken(body, { user_id: 'Nguyễn Thị Ánh (cán bộ một cửa)', case_id: 'HS-2026/000123' }) });
    expect(res.status).toBe(200);
    const entry = await gw.gateway.audit.store.get(res.headers.get('x-request-id')!);
    expect(entry!.userId).toBe('Nguyễn Thị Ánh (cán bộ một cửa)');
  });

  it('writes no raw control, bidi or zero-width character into a CSV export, old entries included', async () => {
    // An entry from before these rules (or from another writer) can still hold them: the export escapes them.
    await gw.gateway.audit.record({
      id: randomUUID(), time: new Date().toISOString(), client: 'portal', userId: 'x\u202eevil\u0007', purpose: null, caseId: 'a\tb\r\nc',
      service: 'population.identity', version: 1, subjects: [], fields: [], outcome: 'denied', status: 400, errorCode: 'REQUEST_INVALID',
      upstreams: [{ agency: 'population', operation: 'identity', outcome: 'error', errorCode: 'X\u200bY', latencyMs: 1, reference: null }], latencyMs: 1, requestSha256: '0'.repeat(64), responseSha256: null,
    });
    const res = await gw.get('/audit/export?format=csv', auditor);
    expect(res.status).toBe(200);
    const csv = await res.text();
    const records = csv.split('\r\n');
    expect(records.at(-1)).toBe('');
    for (const record of records) expect(isPrintable(record), JSON.stringify(record)).toBe(true);
    expect(csv).toContain('x\\u{202e}evil\\u{7}');
    expect(csv).toContain('a\\u{9}b\\u{d}\\u{a}c');
    // JSON cells keep their value: the escape is a JSON one.
    expect(csv).toContain('X\\u200bY');
  });
});

describe('tokens addressed to more than this gateway', () => {
  const body = () => JSON.stringify({ personalId: personalId() });

  it('refuses an assertion whose aud also names another service, takes a one-element array', async () => {
    const b = body();
    const twice = await gw.call('population.identity', JSON.parse(b), { token: await portalToken(b, { aud: [GATEWAY_ID, 'urn:other:service'] }) });
    expect(twice.status).toBe(401);
    expect((await twice.json()).code).toBe('AUTH_INVALID');
    const once = await gw.call('population.identity', JSON.parse(b), { token: await portalToken(b, { aud: [GATEWAY_ID] }) });
    expect(once.status).toBe(200);
  });

  it('refuses a consent whose aud also names another service, takes a one-element array', async () => {
    const consent = (aud: unknown) => signed(gw.keys.idp!, { iss: IDP_ISSUER, aud, sub: personalId(), azp: 'portal', scope: 'core address', iat: seconds(), exp: seconds() + 300, jti: randomUUID() });
    const log = (c: string) => gw.get('/citizen/access-log', { client: 'portal', consent: c });
    const twice = await log(await consent([GATEWAY_ID, 'urn:other:service']));
    expect(twice.status).toBe(403);
    expect((await twice.json()).code).toBe('CONSENT_INVALID');
    expect((await log(await consent([GATEWAY_ID]))).status).toBe(200);
    expect((await log(await consent(GATEWAY_ID))).status).toBe(200);
  });
});

describe('X-Content-Type-Options: nosniff on every answer', () => {
  it('is on data answers, problems, audit JSON, exports, discovery, operations and the console', async () => {
    const answers = [
      await gw.call('population.identity', { personalId: personalId() }),
      await gw.call('population.identity', { personalId: '0' }),
      await gw.get('/audit/entries?limit=1', auditor),
      await gw.get('/audit/verify', auditor),
      await gw.get('/audit/checkpoints', auditor),
      await gw.get('/audit/export?format=ndjson', auditor),
      await gw.get('/services', auditor),
      await fetch(`${gw.url}/openapi.json`),
      await fetch(`${gw.url}/.well-known/jwks.json`),
      await fetch(`${gw.url}/readyz`),
      await fetch(`${gw.url}/healthz`),
      await fetch(`${gw.url}/metrics`),
      await fetch(`${gw.url}/no/such/path`),
      await fetch(`${gw.url}/console/api/session`),
      await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'x' }),
    ];
    for (const res of answers) {
      expect(res.headers.get('x-content-type-options'), res.url).toBe('nosniff');
      await res.arrayBuffer();
    }
  });
});
