import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { createHash, scryptSync, timingSafeEqual } from 'node:crypto';
import { startGateway, GATEWAY_ID, IDP_ISSUER, type TestGateway } from './support/fixtures.ts';

const run = promisify(execFile);
const cli = (...args: string[]) => run('node', ['bin/gateway.mjs', ...args]).then((r) => r.stdout.trim());

let gw: TestGateway;
let dir: string;
beforeAll(async () => {
  gw = await startGateway();
  dir = mkdtempSync(join(tmpdir(), 'gw-cli-'));
  writeFileSync(join(dir, 'land-office.private.jwk.json'), JSON.stringify(gw.keys['land-office']));
  writeFileSync(join(dir, 'idp.private.jwk.json'), JSON.stringify(gw.keys.idp));
});
afterAll(async () => { await gw.close(); });

describe('gateway token', () => {
  it('mints a client assertion the gateway accepts, bound to the body', async () => {
    const body = '{"personalId":"001085123456"}';
    const token = await cli('token', '--key', join(dir, 'land-office.private.jwk.json'), '--aud', GATEWAY_ID, '--purpose', 'LAND_TRANSFER_REGISTRATION', '--case-id', 'HS-9', '--user-id', 'officer-1', '--body', body);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'land-office', aud: GATEWAY_ID, purpose: 'LAND_TRANSFER_REGISTRATION', case_id: 'HS-9', user_id: 'officer-1', body_sha256: createHash('sha256').update(body).digest('base64url') });
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300);
    const res = await gw.call('population.identity', null, { raw: body, token });
    expect(res.status).toBe(200);
  });

  it('mints a citizen consent with the identity provider key', async () => {
    const consent = await cli('token', 'consent', '--key', join(dir, 'idp.private.jwk.json'), '--iss', IDP_ISSUER, '--aud', GATEWAY_ID, '--sub', '001085123456', '--scope', 'core address', '--azp', 'portal');
    expect(decodeJwt(consent)).toMatchObject({ sub: '001085123456', azp: 'portal', scope: 'core address', iss: IDP_ISSUER });
    const res = await gw.call('portal.prefill', { form: 'driving-licence-renewal' }, { client: 'portal', consent });
    expect(res.status).toBe(200);
  });

  it('refuses a usage error with exit code 64', async () => {
    const err = await run('node', ['bin/gateway.mjs', 'token']).then(() => null, (e) => e as { code: number; stderr: string });
    expect(err?.code).toBe(64);
    expect(err?.stderr).toContain('--key');
  });
});

describe('gateway hash-password', () => {
  it('prints an scrypt hash of the password read on stdin', async () => {
    const child = spawn('node', ['bin/gateway.mjs', 'hash-password']);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.end('a long console password\n');
    await new Promise((r) => child.on('close', r));
    const [scheme, N, r, p, salt, hash] = out.trim().split('$');
    expect(scheme).toBe('scrypt');
    const again = scryptSync('a long console password', Buffer.from(salt!, 'base64url'), 32, { N: Number(N), r: Number(r), p: Number(p) });
    expect(timingSafeEqual(again, Buffer.from(hash!, 'base64url'))).toBe(true);
  });
});
