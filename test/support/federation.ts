/**
 * Two gateways that trust each other, on loopback: a "national" gateway holding the population
 * database (its embedded simulator) and a "province" gateway whose population upstream is the
 * national gateway; and a fake remote gateway that can lie in every way a test needs.
 */
import { createServer, type Server } from 'node:http';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { generatePrivateJwk, keyPairFromJwk, publicPart } from '../../gateway/keys.ts';
import { createSigner } from '../../gateway/signing.ts';
import { sha256B64u } from '../../gateway/audit/entry.ts';
import { contractKey, loadContracts, type Contract } from '../../gateway/contracts.ts';
import { contractDocument, contractSha256, type ContractDocument } from '../../gateway/federation/contracts.ts';
import { world } from '../../adapters/world/index.ts';
import { testConfig } from './fixtures.ts';

export const NATIONAL_ID = 'urn:test:national-gateway';
export const PROVINCE_ID = 'urn:test:province-gateway';
export const PROVINCE_CLIENT = 'province-gateway';

const local = loadContracts();
export const identityContract = local.get(contractKey('population.identity', 1))!;
export const IDENTITY_SHA256 = contractSha256(identityContract);

/** The province's client key at the national gateway, in a file as `privateJwkFile` names it. */
export async function provinceClientKey(): Promise<{ jwk: JWK; file: string }> {
  const jwk = await generatePrivateJwk('ES256');
  const file = join(mkdtempSync(join(tmpdir(), 'gw-fed-key-')), 'federation.private.jwk.json');
  writeFileSync(file, JSON.stringify(jwk));
  return { jwk, file };
}

/** The national gateway's config: the province gateway is a client that may act for its agencies. */
export function nationalConfig(provinceKey: JWK) {
  return testConfig((raw) => {
    raw.gatewayId = NATIONAL_ID;
    raw.clients.push({
      id: PROVINCE_CLIENT, name: 'Cổng kết nối tỉnh (province gateway)', keys: { jwks: { keys: [publicPart(provinceKey)] } },
      federation: { mayActFor: ['portal', 'land-office'], agencyNames: { portal: 'Cổng dịch vụ công tỉnh (province portal)', 'land-office': 'Văn phòng đăng ký đất đai tỉnh' } },
    });
    raw.grants.push({
      client: PROVINCE_CLIENT, service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL', 'LAND_TRANSFER_REGISTRATION', 'LAND_FINANCIAL_OBLIGATIONS'],
      fieldGroups: ['core', 'address', 'family', 'vital'],
    });
  });
}

export interface RemotePin { service: string; version: number; contractSha256: string }

/** The province gateway's config: population through the gateway at `url`. */
export function provinceConfig(url: string, keyFile: string, o: { services?: RemotePin[]; timeoutMs?: number; retries?: number; patch?: (raw: any) => void } = {}) {
  return testConfig((raw) => {
    raw.gatewayId = PROVINCE_ID;
    raw.upstreams.population = {
      gateway: {
        url, gatewayId: NATIONAL_ID, clientId: PROVINCE_CLIENT, privateJwkFile: keyFile,
        services: o.services ?? [{ service: 'population.identity', version: 1, contractSha256: IDENTITY_SHA256 }],
      },
      resilience: { timeoutMs: o.timeoutMs ?? 1500, retries: o.retries ?? 0, retryBaseDelayMs: 5, retryMaxDelayMs: 20, breakerThreshold: 100, breakerHalfOpenAfterMs: 500 },
    };
    o.patch?.(raw);
  });
}

export type FakeMode = 'honest' | 'slow' | 'unsigned' | 'badSignature' | 'otherKey' | 'changedBody' | 'wrongRequestHash' | 'outsideContract';

/** A contract only the fake remote publishes: served by forwarding on the province. */
export const HOUSEHOLD: ContractDocument = {
  service: 'population.household', version: 1, title: 'Household of a citizen', description: 'The members of a citizen\'s registered household.',
  agencies: ['population'], fieldGroups: { members: ['members'] },
  requestSchema: { type: 'object', additionalProperties: false, required: ['personalId'], properties: { personalId: { type: 'string', pattern: '^\\d{12}$' } } },
  responseSchema: {
    type: 'object', additionalProperties: false, required: ['personalId', 'householdId'],
    properties: { personalId: { type: 'string' }, householdId: { type: 'string' }, members: { type: 'array', items: { type: 'string' } }, fieldGroups: { type: 'object' } },
  },
};
export const HOUSEHOLD_SHA256 = contractSha256(HOUSEHOLD);

/**
 * A remote gateway speaking the wire interface with a key of its own, honest or lying as `mode`
 * says: it publishes population.identity v1 (unless `retired`) and population.household v1, and
 * answers with the citizen from the seed world, signed as the gateway signs.
 */
export async function startFakeRemote() {
  const jwk = await generatePrivateJwk('ES256');
  const signer = createSigner(await keyPairFromJwk(jwk));
  // Another key under the same kid: a signature that only a key check catches.
  const other = createSigner({ ...(await keyPairFromJwk(await generatePrivateJwk('ES256'))), kid: jwk.kid! });
  const state = { mode: 'honest' as FakeMode, retired: false, changedContract: false, calls: 0 };
  const published = new Map<string, ContractDocument>([['population.identity/v1', contractDocument(identityContract)], ['population.household/v1', HOUSEHOLD]]);
  const citizen = world().citizens[0]!;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = req.url ?? '';
      if (req.method === 'GET' && url === '/.well-known/jwks.json') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(signer.jwks));
      const m = /^\/services\/([^/]+)\/v(\d+)$/.exec(url);
      const key = m ? `${decodeURIComponent(m[1]!)}/v${m[2]}` : '';
      if (req.method === 'GET' && m) {
        let doc = published.get(key);
        if (!doc || (state.retired && key === 'population.identity/v1')) return void res.writeHead(404, { 'Content-Type': 'application/problem+json' }).end('{"code":"SERVICE_UNKNOWN"}');
        if (state.changedContract) doc = { ...doc, title: `${doc.title} (changed)` };
        return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ...doc, contractSha256: contractSha256(doc) }));
      }
      if (req.method !== 'POST' || !published.has(key)) return void res.writeHead(404).end();
      state.calls++;
      const raw = Buffer.concat(chunks);
      if (state.mode === 'slow') return void setTimeout(() => res.writeHead(503).end(), 3000).unref();
      const answer: Record<string, unknown> = key === 'population.household/v1'
        ? { personalId: citizen.personalId, householdId: 'HK-0001', members: [citizen.personalId], fieldGroups: { members: 'released' } }
        : {
          personalId: citizen.personalId, fullName: citizen.fullName, dateOfBirth: citizen.dateOfBirth, sex: citizen.sex, nationality: citizen.nationality,
          ethnicity: citizen.ethnicity, hometown: citizen.hometown, permanentAddress: citizen.permanentAddress, currentAddress: citizen.currentAddress,
          lifeStatus: citizen.lifeStatus, fieldGroups: { core: 'released', address: 'released', family: 'unavailable', vital: 'released' },
          source: { agency: 'population', retrievedAt: new Date().toISOString(), reference: 'TC-FAKE-0001' },
        };
      if (state.mode === 'outsideContract') answer.ssn = 'not in the contract';
      const body = Buffer.from(JSON.stringify(answer));
      const binding = { requestId: '0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000', requestSha256: state.mode === 'wrongRequestHash' ? sha256B64u('another request') : sha256B64u(raw) };
      const signature = await (state.mode === 'otherKey' ? other : signer).signResponse(body, binding);
      const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-Request-Id': binding.requestId };
      if (state.mode !== 'unsigned') headers['X-Gateway-Signature'] = state.mode === 'badSignature' ? `${signature.slice(0, -4)}AAAA` : signature;
      const sent = state.mode === 'changedBody' ? Buffer.from(JSON.stringify({ ...answer, fullName: 'Someone Else' })) : body;
      res.writeHead(200, headers).end(sent);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    jwks: signer.jwks,
    state,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export type { Contract };
