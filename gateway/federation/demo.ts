/**
 * `npm run demo:federation`: two gateways that trust each other, on loopback, with demo keys
 * generated at first start under `<GATEWAY_DATA_DIR or ./.data>/federation/`:
 *
 * - a "national" gateway (NATIONAL_PORT, default 8081) holding the population database (its
 *   embedded simulator, with the other agencies'), where the province gateway is a client that may
 *   act for the province's portal and land office;
 * - a "province" gateway (PROVINCE_PORT, default 8080), the single gateway's demo but for its
 *   population upstream, which is the national gateway: population.identity, portal.prefill and
 *   land.title-verification reach it without a change to their handlers.
 *
 * `npm start` stays the single gateway.
 */
import { join, resolve } from 'node:path';
import { agencyNames } from '../../adapters/index.ts';
import { DEMO_CLIENTS, DEMO_GATEWAY_ID, demoConfig, demoConsolePassword, parseConfig } from '../config/index.ts';
import { contractKey, loadContracts } from '../contracts.ts';
import { loadOrCreatePrivateJwk, publicPart } from '../keys.ts';
import { contractDirs, grantableFieldGroups, grantableServices } from '../services/index.ts';
import { createGateway, type Gateway } from '../server.ts';
import { contractSha256 } from './contracts.ts';

export const NATIONAL_GATEWAY_ID = 'urn:gov:vn:national-gateway';
export const PROVINCE_CLIENT_ID = 'province-gateway';

const parse = (raw: unknown) => parseConfig(raw, { env: {}, knownServices: grantableServices(), fieldGroups: grantableFieldGroups() });

/** The two demo configs; `nationalUrl` is where the province reaches the national gateway. */
export async function federationDemoConfigs(base: string, o: { nationalPort: number; provincePort: number; nationalUrl?: string }) {
  const nationalDir = join(base, 'national');
  const provinceDir = join(base, 'province');
  const provinceKeyFile = join(provinceDir, 'keys', 'federation.private.jwk.json');
  const provinceKey = await loadOrCreatePrivateJwk(provinceKeyFile, 'ES256');
  const nationalUrl = o.nationalUrl ?? `http://127.0.0.1:${o.nationalPort}`;

  const national = await demoConfig(nationalDir) as Record<string, any>;
  national.gatewayId = NATIONAL_GATEWAY_ID;
  national.listen = { host: '127.0.0.1', port: o.nationalPort };
  national.clients.push({
    id: PROVINCE_CLIENT_ID, name: 'Cổng kết nối dữ liệu tỉnh (province gateway)', keys: { jwks: { keys: [publicPart(provinceKey)] } },
    federation: { mayActFor: ['portal', 'land-office'], agencyNames: Object.fromEntries(DEMO_CLIENTS.map((c) => [c.id, `${c.name}, tỉnh`])) },
  });
  national.grants.push({
    client: PROVINCE_CLIENT_ID, service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL', 'LAND_TRANSFER_REGISTRATION', 'LAND_FINANCIAL_OBLIGATIONS'],
    fieldGroups: ['core', 'address', 'family', 'vital'],
  });

  const identity = loadContracts(contractDirs()).get(contractKey('population.identity', 1))!;
  const province = await demoConfig(provinceDir) as Record<string, any>;
  province.gatewayId = DEMO_GATEWAY_ID;
  province.listen = { host: '127.0.0.1', port: o.provincePort };
  province.upstreams = {
    population: {
      gateway: {
        url: nationalUrl, gatewayId: NATIONAL_GATEWAY_ID, clientId: PROVINCE_CLIENT_ID, privateJwkFile: provinceKeyFile,
        services: [{ service: 'population.identity', version: 1, contractSha256: contractSha256(identity) }],
      },
    },
  };
  return { national: parse(national), province: parse(province), nationalDir, provinceDir };
}

/** Starts both, national first (the province checks its pinned contract against it at start). */
export async function startFederationDemo(base: string, o: { nationalPort: number; provincePort: number }): Promise<{ national: Gateway; province: Gateway; close(): Promise<void> }> {
  const configs = await federationDemoConfigs(base, o);
  const national = await createGateway(configs.national);
  await national.listen();
  const province = await createGateway(configs.province).catch(async (e) => { await national.close(); throw e; });
  await province.listen();
  return { national, province, close: async () => { await province.close(); await national.close(); } };
}

const isMain = process.argv[1] && resolve(process.argv[1]).replace(/\.[jt]s$/, '') === resolve(import.meta.filename ?? '').replace(/\.[jt]s$/, '');
if (isMain) {
  const base = resolve(process.env.GATEWAY_DATA_DIR ?? './.data', 'federation');
  const ports = { nationalPort: Number(process.env.NATIONAL_PORT ?? 8081), provincePort: Number(process.env.PROVINCE_PORT ?? 8080) };
  const demo = await startFederationDemo(base, ports);
  const keys = join(base, 'province', 'demo');
  process.stdout.write(`
national gateway (${NATIONAL_GATEWAY_ID}): ${demo.national.url}  population database and the other agencies (simulators)
province gateway (${DEMO_GATEWAY_ID}): ${demo.province.url}  population through the national gateway; console password ${demoConsolePassword(join(base, 'province'))}
agencies other than population: ${agencyNames().filter((a) => a !== 'population').join(', ')} (the province's own simulators)

Try it (another terminal):
  BODY='{"personalId":"001085123456"}'
  TOKEN=$(npm run -s gateway -- token --key ${keys}/land-office.private.jwk.json --purpose LAND_TRANSFER_REGISTRATION --case-id HS-2026-000123 --user-id officer.nguyen --body "$BODY")
  curl -s -X POST ${demo.province.url}/services/population.identity/v1 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$BODY"
`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await demo.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
