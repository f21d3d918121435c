/**
 * The added latency of one federated hop: population.identity at a fixed rate through a province
 * gateway whose population upstream is a national gateway (client → province → national →
 * population simulator), beside the same service asked of the national gateway directly (client →
 * national → simulator). Both gateways are the compiled build in their own processes, SQLite
 * audit stores, as `spawnGateway` runs them; the load is open loop (paced.ts), the assertions
 * minted before each measured phase.
 *
 * From test/bench/run.ts (or alone: `npx tsx test/bench/federation.ts [rate] [requests]`):
 *
 *   import { benchFederatedHop } from './federation.ts';
 *   const hop = await benchFederatedHop({ rate: FIXED_RATE, requests: FIXED_RATE_REQUESTS, rounds: ROUNDS });
 *   row('(i) one federated hop: added latency at 500 req/s', `p50 ${round(hop.added.p50, 2)} ms, p99 ${round(hop.added.p99, 2)} ms (direct ${round(hop.direct.p50, 2)} / ${round(hop.direct.p99, 2)} → federated ${round(hop.federated.p50, 2)} / ${round(hop.federated.p99, 2)})`, '—', null);
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { mintAssertion } from '../../gateway/client-assertion.ts';
import { contractKey, loadContracts } from '../../gateway/contracts.ts';
import { contractSha256 } from '../../gateway/federation/contracts.ts';
import { generatePrivateJwk } from '../../gateway/keys.ts';
import { world } from '../../adapters/world/index.ts';
import { pacedLoad, type PacedResult } from './paced.ts';
import { BENCH_GATEWAY_ID, spawnGateway, spawnSimulator, type Child } from './processes.ts';

export const BENCH_NATIONAL_ID = 'urn:bench:national-gateway';
const PROVINCE_CLIENT = 'province-gateway';
const PATH = '/services/population.identity/v1';

export interface FederatedHopResult {
  rate: number;
  requests: number;
  /** Medians over the rounds of each path's p50 and p99 (ms), and their non-200 counts summed. */
  direct: { p50: number; p99: number; non200: number };
  federated: { p50: number; p99: number; non200: number };
  /** federated − direct, p50 and p99 (ms): what one hop through another gateway adds. */
  added: { p50: number; p99: number };
  runs: { direct: PacedResult; federated: PacedResult }[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Single-use assertions for `n` identity requests addressed to `aud`, minted ahead of the run. */
async function presigned(n: number, key: JWK, aud: string) {
  const citizens = world().citizens;
  const signed: { body: string; token: string }[] = [];
  for (let i = 0; i < n; i += 500) {
    signed.push(...await Promise.all(Array.from({ length: Math.min(500, n - i) }, async (_, j) => {
      const body = JSON.stringify({ personalId: citizens[(i + j) % citizens.length]!.personalId });
      return { body, token: await mintAssertion({ privateJwk: key, iss: 'bench', aud, body, purpose: 'PUBLIC_SERVICE_PREFILL', lifetimeSeconds: 300 }) };
    })));
  }
  let at = 0;
  return () => {
    const s = signed[Math.min(at++, signed.length - 1)]!;
    return { body: s.body, headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` } };
  };
}

/**
 * Starts a population simulator, a national gateway in front of it and a province gateway whose
 * population upstream is the national one; then, `rounds` times, `requests` identity requests at
 * `rate` per second to the national gateway (direct) and the same to the province (one hop).
 * Everything it started is stopped before it returns.
 */
export async function benchFederatedHop(o: { rate?: number; requests?: number; rounds?: number; warmup?: number; log?: (line: string) => void } = {}): Promise<FederatedHopResult> {
  const rate = o.rate ?? 500;
  const requests = o.requests ?? 5000;
  const rounds = o.rounds ?? 1;
  const log = o.log ?? (() => {});
  const benchKey = await generatePrivateJwk('ES256');
  const provinceKey = await generatePrivateJwk('ES256');
  const keyDir = mkdtempSync(join(tmpdir(), 'gw-bench-fed-'));
  const provinceKeyFile = join(keyDir, 'federation.private.jwk.json');
  writeFileSync(provinceKeyFile, JSON.stringify(provinceKey));
  const identity = loadContracts().get(contractKey('population.identity', 1))!;
  const started: Child[] = [];
  try {
    const sim = await spawnSimulator('population');
    started.push(sim);
    const national = await spawnGateway({
      clientKeys: { bench: benchKey, [PROVINCE_CLIENT]: provinceKey }, upstreams: { population: sim.url }, logLevel: 'warn',
      configPatch: (raw) => {
        raw.gatewayId = BENCH_NATIONAL_ID;
        raw.clients.find((c: { id: string }) => c.id === PROVINCE_CLIENT).federation = { mayActFor: ['bench'] };
      },
    }, ['population.identity']);
    started.push(national);
    const province = await spawnGateway({
      clientKeys: { bench: benchKey }, upstreams: {}, logLevel: 'warn',
      configPatch: (raw) => {
        raw.upstreams.population = {
          gateway: {
            url: national.url, gatewayId: BENCH_NATIONAL_ID, clientId: PROVINCE_CLIENT, privateJwkFile: provinceKeyFile,
            services: [{ service: 'population.identity', version: 1, contractSha256: contractSha256(identity) }],
          },
        };
      },
    }, ['population.identity']);
    started.push(province);

    const warmup = o.warmup ?? Math.min(1000, requests);
    log(`federated hop: warm-up (${warmup} requests each path)`);
    await pacedLoad(national.url, PATH, rate, warmup, await presigned(warmup, benchKey, BENCH_NATIONAL_ID));
    await pacedLoad(province.url, PATH, rate, warmup, await presigned(warmup, benchKey, BENCH_GATEWAY_ID));
    const runs: FederatedHopResult['runs'] = [];
    for (let round = 0; round < rounds; round++) {
      const forNational = await presigned(requests, benchKey, BENCH_NATIONAL_ID);
      const forProvince = await presigned(requests, benchKey, BENCH_GATEWAY_ID);
      const direct = await pacedLoad(national.url, PATH, rate, requests, forNational);
      const federated = await pacedLoad(province.url, PATH, rate, requests, forProvince);
      log(`federated hop round ${round + 1}: direct p50 ${direct.p50.toFixed(2)} p99 ${direct.p99.toFixed(2)} ms; federated p50 ${federated.p50.toFixed(2)} p99 ${federated.p99.toFixed(2)} ms`);
      runs.push({ direct, federated });
    }
    const summary = (pick: (r: FederatedHopResult['runs'][number]) => PacedResult) => ({
      p50: median(runs.map((r) => pick(r).p50)), p99: median(runs.map((r) => pick(r).p99)), non200: runs.reduce((n, r) => n + pick(r).other + pick(r).errors, 0),
    });
    const direct = summary((r) => r.direct);
    const federated = summary((r) => r.federated);
    return { rate, requests, direct, federated, added: { p50: federated.p50 - direct.p50, p99: federated.p99 - direct.p99 }, runs };
  } finally {
    for (const c of started.reverse()) await c.stop();
  }
}

if (import.meta.filename && process.argv[1] && process.argv[1].endsWith('federation.ts')) {
  const [rate, requests] = process.argv.slice(2).map(Number);
  const r = await benchFederatedHop({ rate: rate || 500, requests: requests || 5000, log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify({ rate: r.rate, requests: r.requests, direct: r.direct, federated: r.federated, added: r.added })}\n`);
}
