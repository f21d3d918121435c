/**
 * The one fixture builder: a test config with freshly generated keys, a gateway on loopback with
 * its embedded simulators, and a client that signs requests exactly as the README's wire interface says.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { generatePrivateJwk, publicPart } from '../../gateway/keys.ts';
import { agencyNames } from '../../adapters/index.ts';
import { parseConfig, DEMO_PURPOSES, DEMO_FORMS, hashPassword, type GatewayConfig } from '../../gateway/config/index.ts';
import { grantableFieldGroups, grantableServices } from '../../gateway/services/index.ts';
import { createGateway, type Gateway, type GatewayOptions } from '../../gateway/server.ts';
import { mintAssertion, mintConsent } from '../../gateway/client-assertion.ts';

export const GATEWAY_ID = 'urn:test:gateway';
export const IDP_ISSUER = 'urn:test:idp';
export const CONSOLE_PASSWORD = 'correct horse battery staple';

export interface TestKeys { [client: string]: JWK }

/** Keys are generated once per test file (EC key generation is the slow part). */
let keyCache: Promise<TestKeys> | undefined;
export function testKeys(): Promise<TestKeys> {
  keyCache ??= (async () => {
    const keys: TestKeys = {};
    for (const id of ['portal', 'land-office', 'auditor', 'narrow', 'idp']) keys[id] = await generatePrivateJwk('ES256');
    keys['edclient'] = await generatePrivateJwk('EdDSA');
    return keys;
  })();
  return keyCache;
}


/** A complete, valid config for tests; `patch` edits the raw object before validation. */
export async function testConfig(patch: (raw: any) => void = () => {}, env: NodeJS.ProcessEnv = {}): Promise<GatewayConfig> {
  const keys = await testKeys();
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-test-'));
  const known = grantableServices();
  const groups = grantableFieldGroups();
  const services = [...known].filter((s) => s !== 'audit');
  const client = (id: string, name: string) => ({ id, name, keys: { jwks: { keys: [publicPart(keys[id]!)] } } });
  const raw: any = {
    gatewayId: GATEWAY_ID,
    mode: 'demo',
    dataDir,
    logLevel: 'silent',
    listen: { host: '127.0.0.1', port: 0 },
    audit: { store: 'sqlite', pseudonymKey: 'test-pseudonym-key-0123456789abcdef', checkpointEveryEntries: 1000, checkpointEverySeconds: 3600 },
    identityProvider: { issuer: IDP_ISSUER, jwks: { keys: [publicPart(keys.idp!)] } },
    clients: [
      client('portal', 'Service portal'), client('land-office', 'Land registration office'), client('auditor', 'Provincial inspectorate'),
      client('narrow', 'Client with few groups'), client('edclient', 'EdDSA client'),
    ],
    purposes: DEMO_PURPOSES,
    grants: [
      ...services.map((service) => ({ client: 'land-office', service, purposes: ['LAND_TRANSFER_REGISTRATION', 'LAND_FINANCIAL_OBLIGATIONS', 'CRIMINAL_INVESTIGATION'], fieldGroups: groups.get(service) ?? [] })),
      ...services.map((service) => ({ client: 'portal', service, purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: groups.get(service) ?? [] })),
      ...services.map((service) => ({ client: 'narrow', service, purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: (groups.get(service) ?? []).filter((g) => g === 'core') })),
      { client: 'edclient', service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core'] },
      { client: 'auditor', service: 'audit', purposes: ['AUDIT_REVIEW'] },
    ],
    upstreams: Object.fromEntries(agencyNames().map((a) => [a, { resilience: { timeoutMs: 1500, retries: 1, retryBaseDelayMs: 5, retryMaxDelayMs: 20, breakerThreshold: 5, breakerHalfOpenAfterMs: 500 } }])),
    forms: DEMO_FORMS.map((f) => ({ ...f, fields: f.fields.filter((x) => known.has(x.service)) })),
    console: { accounts: [{ username: 'auditor', passwordHash: hashPassword(CONSOLE_PASSWORD) }] },
  };
  patch(raw);
  return parseConfig(raw, { env, knownServices: known, fieldGroups: groups });
}

export interface CallOptions {
  client?: string;
  purpose?: string | null;
  caseId?: string;
  userId?: string;
  consent?: string;
  headers?: Record<string, string>;
  /** Send these exact bytes instead of JSON.stringify(body). */
  raw?: string;
  token?: string;
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  config: GatewayConfig;
  keys: TestKeys;
  /** POST a data service as `client` with a fresh assertion. */
  call(service: string, body: unknown, o?: CallOptions): Promise<Response>;
  /** GET an authenticated endpoint (discovery, audit). */
  get(path: string, o?: CallOptions): Promise<Response>;
  assertion(body: string, o?: CallOptions): Promise<string>;
  consent(sub: string, scope: string[], o?: { azp?: string; lifetimeSeconds?: number; iat?: number }): Promise<string>;
  close(): Promise<void>;
}

const DEFAULT_PURPOSE: Record<string, string> = { portal: 'PUBLIC_SERVICE_PREFILL', narrow: 'PUBLIC_SERVICE_PREFILL', edclient: 'PUBLIC_SERVICE_PREFILL', 'land-office': 'LAND_TRANSFER_REGISTRATION' };

/** Starts a gateway on a loopback port with the test config (or `config`). */
export async function startGateway(config?: GatewayConfig, options: GatewayOptions = {}): Promise<TestGateway> {
  const cfg = config ?? (await testConfig());
  const keys = await testKeys();
  const gateway = await createGateway(cfg, options);
  const url = await gateway.listen(0, '127.0.0.1');
  const assertion = (body: string, o: CallOptions = {}) => {
    const client = o.client ?? 'portal';
    const purpose = o.purpose === null ? undefined : o.purpose ?? DEFAULT_PURPOSE[client];
    return mintAssertion({
      privateJwk: keys[client]!, iss: client, aud: cfg.gatewayId, purpose,
      caseId: o.caseId ?? (client === 'land-office' ? 'HS-2026-000123' : undefined), userId: o.userId, body,
    });
  };
  return {
    gateway, url, config: cfg, keys, assertion,
    async call(service, body, o = {}) {
      const text = o.raw ?? JSON.stringify(body);
      const token = o.token ?? (await assertion(text, o));
      return fetch(`${url}/services/${service}/v1`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, ...(o.consent ? { 'X-Citizen-Consent': o.consent } : {}), ...o.headers },
        body: text,
      });
    },
    async get(path, o = {}) {
      const token = o.token ?? (await assertion('', { purpose: null, ...o }));
      return fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${token}`, ...(o.consent ? { 'X-Citizen-Consent': o.consent } : {}), ...o.headers } });
    },
    consent: (sub, scope, o = {}) => mintConsent({ privateJwk: keys.idp!, iss: IDP_ISSUER, aud: cfg.gatewayId, sub, azp: o.azp ?? 'portal', scope, lifetimeSeconds: o.lifetimeSeconds ?? 300, iat: o.iat }),
    async close() {
      await gateway.close();
      rmSync(cfg.dataDir, { recursive: true, force: true });
    },
  };
}
