/**
 * The client for agencies not on Node (clients/shell/gateway-call.sh: openssl and curl only),
 * run as such an agency would: its own key made by openssl, registered as the JWK the script
 * prints, a real gateway on loopback, and a lying one in front of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { world } from '../adapters/world/index.ts';
import { startLyingGateway, type LyingGateway, type Tamper } from './support/lying-gateway.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const SCRIPT = join(process.cwd(), 'clients', 'shell', 'gateway-call.sh');
const dir = mkdtempSync(join(tmpdir(), 'gw-shell-'));
const KEY = join(dir, 'agency.pem');
const citizen = world().citizens.find((c) => c.lifeStatus === 'alive')!;

interface Run { code: number; stdout: string; stderr: string }
function script(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { env: { PATH: process.env.PATH!, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

let gw: TestGateway;
let jwk: JWK;
let liar: LyingGateway;

beforeAll(async () => {
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', KEY]);
  const printed = await script(['jwk', KEY]);
  expect(printed.code).toBe(0);
  jwk = JSON.parse(printed.stdout) as JWK;
  gw = await startGateway(await testConfig((raw) => {
    raw.clients.push({ id: 'shell-agency', name: 'An agency without Node', keys: { jwks: { keys: [jwk] } } });
    raw.grants.push({ client: 'shell-agency', service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core'] });
  }));
  liar = await startLyingGateway(gw.url);
});
afterAll(async () => {
  await liar.close();
  await gw.close();
});

const callEnv = (url: string, body = JSON.stringify({ personalId: citizen.personalId })) => ({
  GATEWAY_URL: url, GATEWAY_ID: gw.config.gatewayId, CLIENT_ID: 'shell-agency', KEY,
  SERVICE: 'population.identity', PURPOSE: 'PUBLIC_SERVICE_PREFILL', BODY: body,
});

describe('the openssl and curl client', () => {
  it('prints the public JWK of an openssl key with its RFC 7638 thumbprint as kid', async () => {
    const { calculateJwkThumbprint } = await import('jose');
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk));
    expect(jwk).not.toHaveProperty('d');
  });

  it('mints an assertion the gateway accepts (raw r||s, not DER) and prints the answer once its signature verifies', async () => {
    const run = await script(['call'], callEnv(gw.url));
    expect(run.stderr).toContain('answer verified');
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout);
    expect(answer.personalId).toBe(citizen.personalId);
    const { entries } = await gw.gateway.audit.store.query({ client: 'shell-agency' }, 5);
    expect(entries[0]).toMatchObject({ outcome: 'released', service: 'population.identity', purpose: 'PUBLIC_SERVICE_PREFILL' });
  });

  it('exits 1 with the problem document when the gateway refuses', async () => {
    const run = await script(['call'], { ...callEnv(gw.url), PURPOSE: 'AUDIT_REVIEW' });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(JSON.parse(run.stderr.split('\n')[0]!).code).toBe('FORBIDDEN_PURPOSE');
  });

  it.each([
    ['a changed answer', (body: Buffer, headers: Record<string, string>) => ({ body: Buffer.from(body.toString().replace(citizen.personalId, '001099000000')), headers })],
    ['a signature from a request about someone else', (body: Buffer, headers: Record<string, string>) => {
      const [h, s] = headers['x-gateway-signature']!.split('..');
      const claims = JSON.parse(Buffer.from(h!, 'base64url').toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, request_sha256: Buffer.alloc(32).toString('base64url') })).toString('base64url');
      return { body, headers: { ...headers, 'x-gateway-signature': `${forged}..${s}` } };
    }],
    ['no signature', (body: Buffer, headers: Record<string, string>) => {
      const { 'x-gateway-signature': _dropped, ...rest } = headers;
      return { body, headers: rest };
    }],
  ] as [string, Tamper][])('exits 3 and prints nothing for %s', async (_name, change) => {
    liar.tamper = change;
    try {
      const run = await script(['call'], callEnv(liar.url));
      expect(run.code).toBe(3);
      expect(run.stdout).toBe('');
    } finally {
      liar.tamper = null;
    }
  });
});
