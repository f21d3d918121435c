/**
 * The gateway benchmark (`npm run bench`). Simulators and gateways run as separate processes on
 * loopback; autocannon drives them from this process with pre-minted, single-use client
 * assertions (one per request, each bound to its own body). Prints one table and writes
 * bench-results/latest.json. Figures, not assertions: the tests never depend on timing.
 */
import autocannon from 'autocannon';
import { cpus, tmpdir, totalmem } from 'node:os';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { generatePrivateJwk } from '../../gateway/keys.ts';
import { mintAssertion } from '../../gateway/client-assertion.ts';
import { grantableServices } from '../../gateway/services/index.ts';
import { world } from '../../adapters/world/index.ts';
import { createAdapters } from '../../adapters/index.ts';
import { parseConfig } from '../../gateway/config/index.ts';
import { auditAtScale } from './audit-scale.ts';
import { pacedLoad, percentile, type PacedResult } from './paced.ts';
import { durableWriteFloor, loopbackFloor, signatureFloor } from './floor.ts';
import { BENCH_GATEWAY_ID, ROOT, cpuSeconds, peakRssMb, spawnGateway, spawnPassThrough, spawnSafeguarded, spawnSimulator, type Child } from './processes.ts';
import { disturbanceMonitor, DISTURBED_SHARE } from './disturbance.ts';
import { postgresRounds } from './postgres.ts';
import { describeOnOff, onOff, type OnOffDriver, type OnOffResult } from './options.ts';
import { seedAgedLog } from './aged-log.ts';
import { benchFederatedHop, type FederatedHopResult } from './federation.ts';
import { startOpensslTsa } from '../support/openssl-tsa.ts';
import { exportJWK, generateKeyPair } from 'jose';

const AGENCIES = ['population', 'land', 'tax', 'justice'] as const; // the bench drives the four built-in agencies' shapes
const CONNECTIONS = 32;
const THROUGHPUT_REQUESTS = Number(process.env.BENCH_REQUESTS ?? 10_000);
const WARMUP_REQUESTS = 2_000;
const ROUNDS = 3;
const FIXED_RATE = 500;
const FIXED_RATE_REQUESTS = 3_000;
/** The second fixed rate, printed beside the first without a target: where the knee is. */
const HIGH_RATE = 1_000;
const AUDIT_ENTRIES = Number(process.env.BENCH_AUDIT_ENTRIES ?? 1_000_000);
const FANOUT_LATENCY = { population: 20, land: 10, justice: 60, tax: 40 } as const;
const FANOUT_CONNECTIONS = 8;
/** (i) each option's closed loop, per gateway and round (three rounds, alternating). */
const OPTION_REQUESTS = 5_000;
/** (i) the log two days old that archiving works through while it is measured, and its checkpoint spacing (one segment each). */
const AGED_ENTRIES = 150_000;
const AGED_SEGMENT = 2_000;

interface Load { requestsPerSecond: number; p50: number; p99: number; ok: number; other: number; errors: number }
interface Signed { body: string; token: string }
interface Row { name: string; figure: string; target: string; pass: boolean | null }

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Every process the bench started; with this one, what the disturbance monitor counts as the bench's own. */
const children: Child[] = [];
const monitor = disturbanceMonitor(() => children.map((c) => c.pid));

/** Runs autocannon and measures every response's latency itself (autocannon's histogram is whole milliseconds). */
function load(url: string, path: string, amount: number, next: () => { body: string; headers: Record<string, string> }, options: { connections?: number } = {}): Promise<Load> {
  return monitor.phase(`closed loop ${new URL(url).port}${path}`, () => closedLoop(url, path, amount, next, options));
}

async function closedLoop(url: string, path: string, amount: number, next: () => { body: string; headers: Record<string, string> }, options: { connections?: number } = {}): Promise<Load> {
  const latencies: number[] = [];
  let ok = 0;
  let other = 0;
  // autocannon's own duration is counted in whole-second ticks: time the run from here instead.
  const started = performance.now();
  let lastAnswer = started;
  const instance = autocannon({
    url, connections: options.connections ?? CONNECTIONS, amount, timeout: 10,
    requests: [{ method: 'POST', path, setupRequest: (req: any) => { const r = next(); return { ...req, body: r.body, headers: { ...req.headers, ...r.headers } }; } }],
  } as autocannon.Options) as unknown as Promise<autocannon.Result> & NodeJS.EventEmitter;
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    lastAnswer = performance.now();
    if (status === 200) {
      ok++;
      latencies.push(ms);
    } else other++;
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  return { requestsPerSecond: ok / ((lastAnswer - started) / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99), ok, other, errors: result.errors + result.timeouts };
}

/** Mints `n` assertions ahead of the run, so signing them costs the measured run nothing. */
async function presign(n: number, client: string, key: JWK, bodyOf: (i: number) => string, claims: { purpose: string; caseId?: string }): Promise<Signed[]> {
  const out: Signed[] = [];
  const chunk = 500;
  for (let i = 0; i < n; i += chunk) {
    out.push(...await Promise.all(Array.from({ length: Math.min(chunk, n - i) }, async (_, j) => {
      const body = bodyOf(i + j);
      return { body, token: await mintAssertion({ privateJwk: key, iss: client, aud: BENCH_GATEWAY_ID, body, lifetimeSeconds: 300, ...claims }) };
    })));
  }
  return out;
}

function iterate(items: Signed[]) {
  let i = 0;
  return () => {
    // Out of tokens means a replay: the gateway refuses it and the run counts a non-200.
    const s = items[Math.min(i++, items.length - 1)]!;
    return { body: s.body, headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` } };
  };
}

/** The batch size histogram from /metrics: mean entries per commit and the largest bucket reached. */
async function batchSizes(gatewayUrl: string): Promise<{ mean: number; maxBucket: string }> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const sum = num(/^gateway_audit_batch_size_sum (\S+)$/m);
  const count = num(/^gateway_audit_batch_size_count (\S+)$/m);
  const buckets = [...text.matchAll(/^gateway_audit_batch_size_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => ({ le: m[1]!, n: Number(m[2]) }));
  const max = buckets.find((b) => b.n === count);
  return { mean: sum / count, maxBucket: max ? `≤ ${max.le}` : '?' };
}

type Agency = (typeof AGENCIES)[number];

/**
 * The slowest path measured, not assumed: the composite's own calls made directly from here,
 * through the same adapters against the same simulators and in the same shape (the land registry,
 * then every owner's identity, the mortgages and the obligations in parallel), by as many
 * concurrent callers as the gateway run had, so both sides meet the same contention for the two
 * cores. p50 of the whole path and of each agency's calls, after `warmup` paths.
 */
async function directFanOut(urls: Record<Agency, string>, services: string[], concurrency: number, paths: number, warmup = 20): Promise<{ pathMs: number; callsMs: Record<Agency, number> }> {
  const cfg = parseConfig({ gatewayId: BENCH_GATEWAY_ID, mode: 'demo', dataDir: tmpdir() }, { knownServices: new Set(services) });
  const adapters = createAdapters(cfg, urls);
  const times: Record<Agency, number[]> = { population: [], land: [], tax: [], justice: [] };
  const pathTimes: number[] = [];
  const parcels = world().parcels;
  let next = 0;
  const caller = async () => {
    while (next < paths) {
      const i = next++;
      const counted = i >= warmup;
      const timed = async <T>(agency: Agency, call: () => Promise<T>) => {
        const t = performance.now();
        const result = await call();
        if (counted) times[agency].push(performance.now() - t);
        return result;
      };
      const started = performance.now();
      const { parcels: [p] } = await timed('land', () => adapters.land.findParcels({ certificateSerial: parcels[i % parcels.length]!.certificate.serial }));
      const ref = { communeCode: p!.communeCode, mapSheet: p!.mapSheet, parcelNumber: p!.parcelNumber };
      await Promise.all([
        ...p!.owners.map((o) => timed('population', () => adapters.population.getIdentity(o.personalId))),
        timed('justice', () => adapters.justice.findRegistrations({ parcel: ref })),
        timed('tax', () => adapters.tax.getObligations({ parcel: ref })),
      ]);
      if (counted) pathTimes.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const p50 = (xs: number[]) => percentile(xs.sort((a, b) => a - b), 50);
  return { pathMs: p50(pathTimes), callsMs: { population: p50(times.population), land: p50(times.land), tax: p50(times.tax), justice: p50(times.justice) } };
}

function machine() {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, ramGb: round(totalmem() / 2 ** 30, 1), node: process.version, platform: `${process.platform} ${process.arch}` };
}

async function main() {
  const started = performance.now();
  const cleanup = () => Promise.all(children.map((c) => c.stop('SIGKILL')));
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  const rows: Row[] = [];
  const results: Record<string, unknown> = { machine: machine(), startedAt: new Date().toISOString() };
  const row = (name: string, figure: string | number, target: string, pass: boolean | null) => rows.push({ name, figure: String(figure), target, pass });
  const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);

  try {
    const keys = { portal: await generatePrivateJwk('ES256'), 'land-office': await generatePrivateJwk('ES256') };
    const services = [...grantableServices()].filter((s) => s !== 'audit' && s !== 'citizen.access-log');
    const citizens = world().citizens.filter((c) => c.lifeStatus === 'alive');
    const identityBody = (i: number) => JSON.stringify({ personalId: citizens[i % citizens.length]!.personalId });
    const sims: Record<string, Child> = {};
    for (const a of AGENCIES) children.push((sims[a] = await spawnSimulator(a, 0)));
    const upstreams = Object.fromEntries(AGENCIES.map((a) => [a, sims[a]!.url]));

    // (a), (b), (d): the simulator alone, and the full pipeline in front of it with the durable
    // SQLite store and with the memory store, and the two references. Runs alternate, three rounds;
    // a ratio is the median of the three rounds' ratios (each taken from runs back to back, so a
    // slow spell of the VM weighs on both sides of it), a figure the median of its three runs.
    say('(a, b, d) throughput: simulator direct, gateway with SQLite audit, gateway with memory audit, the two references');
    const simBody = (i: number) => JSON.stringify({ soDinhDanh: citizens[i % citizens.length]!.personalId });
    let n = 0;
    const simRequest = () => ({ body: simBody(n++), headers: { 'content-type': 'application/json' } });
    const gw = await spawnGateway({ clientKeys: keys, upstreams }, services);
    children.push(gw);
    const mem = await spawnGateway({ clientKeys: keys, upstreams, store: 'memory' }, services);
    children.push(mem);
    // The reference: a bare pass-through with no safeguard, and the same with an fdatasync before each answer.
    const bare = await spawnPassThrough(sims.population!.url);
    children.push(bare);
    const bareDurable = await spawnPassThrough(sims.population!.url, mkdtempSync(join(tmpdir(), 'gw-bench-journal-')));
    children.push(bareDurable);
    // And every safeguard hand-written on node:http, with no structure (safeguarded.ts): what the gateway's own structure costs beyond them.
    const safeguarded = await spawnSafeguarded(sims.population!.url, keys);
    children.push(safeguarded);
    const identityRequests = async (amount: number) => iterate(await presign(amount + 2 * CONNECTIONS, 'portal', keys.portal, identityBody, { purpose: 'PUBLIC_SERVICE_PREFILL' }));
    const gatewayLoad = async (url: string, amount: number) => load(url, '/services/population.identity/v1', amount, await identityRequests(amount));
    await load(sims.population!.url, '/api/v1/cong-dan/tra-cuu', WARMUP_REQUESTS, simRequest);
    await gatewayLoad(gw.url, WARMUP_REQUESTS);
    await gatewayLoad(mem.url, WARMUP_REQUESTS);
    for (const ref of [bare, bareDurable]) await load(ref.url, '/api/v1/cong-dan/tra-cuu', WARMUP_REQUESTS, simRequest);
    await gatewayLoad(safeguarded.url, WARMUP_REQUESTS);
    const runs: { direct: Load[]; sqlite: Load[]; memory: Load[]; bare: Load[]; bareDurable: Load[]; safeguarded: Load[] } = { direct: [], sqlite: [], memory: [], bare: [], bareDurable: [], safeguarded: [] };
    // A process's CPU time (every thread: event loop, audit writer, GC) per answered request.
    const cpuPerRequestMs: Record<'sqlite' | 'bare' | 'bareDurable' | 'safeguarded', number[]> = { sqlite: [], bare: [], bareDurable: [], safeguarded: [] };
    const measured = async (kind: keyof typeof cpuPerRequestMs, pid: number, run: () => Promise<Load>) => {
      const before = cpuSeconds(pid);
      const result = await run();
      const after = cpuSeconds(pid);
      if (before !== null && after !== null) cpuPerRequestMs[kind].push((1000 * (after - before)) / result.ok);
      runs[kind].push(result);
    };
    for (let round = 0; round < ROUNDS; round++) {
      runs.direct.push(await load(sims.population!.url, '/api/v1/cong-dan/tra-cuu', THROUGHPUT_REQUESTS, simRequest));
      await measured('sqlite', gw.pid, () => gatewayLoad(gw.url, THROUGHPUT_REQUESTS));
      runs.memory.push(await gatewayLoad(mem.url, THROUGHPUT_REQUESTS));
      await measured('bare', bare.pid, () => load(bare.url, '/api/v1/cong-dan/tra-cuu', THROUGHPUT_REQUESTS, simRequest));
      await measured('bareDurable', bareDurable.pid, () => load(bareDurable.url, '/api/v1/cong-dan/tra-cuu', THROUGHPUT_REQUESTS, simRequest));
      await measured('safeguarded', safeguarded.pid, () => gatewayLoad(safeguarded.url, THROUGHPUT_REQUESTS));
    }
    const middle = (xs: Load[]) => [...xs].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(xs.length / 2)]!;
    const ratioOf = (xs: Load[], ys: Load[]) => median(xs.map((x, i) => x.requestsPerSecond / ys[i]!.requestsPerSecond));
    const [direct, viaGateway, viaMemory] = [middle(runs.direct), middle(runs.sqlite), middle(runs.memory)];
    const unansweredIn = (xs: { other: number; errors: number }[]) => xs.reduce((k, r) => k + r.other + r.errors, 0);
    const failed = unansweredIn([...runs.sqlite, ...runs.memory]);
    const referenceFailed = unansweredIn([...runs.bare, ...runs.bareDurable, ...runs.safeguarded]);
    if (referenceFailed) say(`(ref) ${referenceFailed} non-200 answers from the references`);
    const batches = await batchSizes(gw.url);
    const ratio = ratioOf(runs.sqlite, runs.direct);
    row('(a) simulator direct: throughput', `${Math.round(direct.requestsPerSecond)} req/s (p50 ${round(direct.p50)} ms, p99 ${round(direct.p99)} ms)`, '—', null);
    row('(b) gateway full pipeline: throughput', `${Math.round(viaGateway.requestsPerSecond)} req/s (p50 ${round(viaGateway.p50)} ms, p99 ${round(viaGateway.p99)} ms)`, '—', failed === 0 ? null : false);
    const typical = (xs: number[]) => (xs.length ? median(xs) : null);
    const cpuText = (ms: number | null) => (ms === null ? 'CPU n/a' : `${round(ms, 3)} ms CPU per request`);
    const cpuPerRequest = typical(cpuPerRequestMs.sqlite);
    const durableCpu = typical(cpuPerRequestMs.bareDurable);
    const cpuRatio = cpuPerRequest !== null && durableCpu ? cpuPerRequest / durableCpu : null;
    row('(b) gateway CPU per request (all threads)', cpuPerRequest === null ? 'n/a' : `${round(cpuPerRequest, 3)} ms, ${cpuRatio === null ? '?' : round(cpuRatio, 2)} × the durable pass-through's`, '≤ 4 ×', cpuRatio === null ? null : cpuRatio <= 4);
    // What no pass-through does and every request must: verify the client's signature, sign the answer.
    const signaturesMs = signatureFloor();
    const cpuOverFloor = cpuPerRequest !== null && durableCpu ? cpuPerRequest / (durableCpu + signaturesMs) : null;
    row('(ref) the two ES256 operations of a request (verify, sign)', `${round(signaturesMs, 3)} ms CPU`, '—', null);
    row('(b) CPU per request / (durable pass-through + the two)', cpuOverFloor === null ? 'n/a' : `${round(cpuOverFloor, 2)} ×`, '≤ 4 ×', cpuOverFloor === null ? null : cpuOverFloor <= 4);
    row('(b/a) throughput ratio', round(ratio, 3), '≥ 0.40', ratio >= 0.4);
    const reference = {
      bare: middle(runs.bare), bareDurable: middle(runs.bareDurable), safeguarded: middle(runs.safeguarded),
      bareRatio: ratioOf(runs.bare, runs.direct), bareDurableRatio: ratioOf(runs.bareDurable, runs.direct), safeguardedRatio: ratioOf(runs.safeguarded, runs.direct),
    };
    const refRow = (name: string, r: Load, ratioToDirect: number, cpu: number[]) => row(name, `${Math.round(r.requestsPerSecond)} req/s, ${round(ratioToDirect, 3)} of (a); ${cpuText(typical(cpu))}`, '—', null);
    refRow('(ref) bare pass-through: throughput', reference.bare, reference.bareRatio, cpuPerRequestMs.bare);
    refRow('(ref) + fdatasync before each answer', reference.bareDurable, reference.bareDurableRatio, cpuPerRequestMs.bareDurable);
    refRow('(ref) every safeguard, hand-written (safeguarded.ts)', reference.safeguarded, reference.safeguardedRatio, cpuPerRequestMs.safeguarded);
    const safeguardedCpu = typical(cpuPerRequestMs.safeguarded);
    const overSafeguarded = cpuPerRequest !== null && safeguardedCpu ? cpuPerRequest / safeguardedCpu : null;
    const safeguardedOverDurable = safeguardedCpu && durableCpu ? safeguardedCpu / durableCpu : null;
    row('(ref) its CPU per request / the durable pass-through\'s', safeguardedOverDurable === null ? 'n/a' : `${round(safeguardedOverDurable, 2)} ×`, '—', null);
    row('(b) CPU per request / the safeguarded reference\'s (what the structure costs)', overSafeguarded === null ? 'n/a' : `${round(overSafeguarded, 2)} ×`, '—', null);

    // (c) added latency at a fixed, moderate rate: three rounds, each direct, the gateway, the
    // gateway with the memory store (no commit in the path), then the references; every figure is
    // the median of its three, so one slow spell of the VM neither decides nor hides a result.
    say(`(c) added latency at ${FIXED_RATE} req/s (open loop, evenly spaced, ${ROUNDS} rounds)`);
    const paced = (url: string | string[], path: string, next: () => { body: string; headers: Record<string, string> }, rate = FIXED_RATE, servers: readonly string[] = []) =>
      monitor.phase(`paced ${rate}/s ${path}`, () => pacedLoad(url, path, rate, FIXED_RATE_REQUESTS, next), servers);
    const fixedRuns: { direct: PacedResult; gateway: PacedResult; memory: PacedResult; bare: PacedResult; bareDurable: PacedResult; safeguarded: PacedResult }[] = [];
    const highRuns: { direct: PacedResult; gateway: PacedResult; bareDurable: PacedResult }[] = [];
    const tokens = async () => iterate(await presign(FIXED_RATE_REQUESTS + 20, 'portal', keys.portal, identityBody, { purpose: 'PUBLIC_SERVICE_PREFILL' }));
    for (let round = 0; round < ROUNDS; round++) {
      const [forGateway, forMemory, forHigh, forSafeguarded] = [await tokens(), await tokens(), await tokens(), await tokens()];
      fixedRuns.push({
        direct: await paced(sims.population!.url, '/api/v1/cong-dan/tra-cuu', simRequest),
        gateway: await paced(gw.url, '/services/population.identity/v1', forGateway),
        memory: await paced(mem.url, '/services/population.identity/v1', forMemory),
        bare: await paced(bare.url, '/api/v1/cong-dan/tra-cuu', simRequest),
        bareDurable: await paced(bareDurable.url, '/api/v1/cong-dan/tra-cuu', simRequest),
        safeguarded: await paced(safeguarded.url, '/services/population.identity/v1', forSafeguarded),
      });
      highRuns.push({
        direct: await paced(sims.population!.url, '/api/v1/cong-dan/tra-cuu', simRequest, HIGH_RATE),
        gateway: await paced(gw.url, '/services/population.identity/v1', forHigh, HIGH_RATE),
        bareDurable: await paced(bareDurable.url, '/api/v1/cong-dan/tra-cuu', simRequest, HIGH_RATE),
      });
    }
    await Promise.all([mem.stop(), bare.stop(), bareDurable.stop(), safeguarded.stop()]);
    const unanswered = unansweredIn(fixedRuns.flatMap((r) => [r.direct, r.gateway]));
    const othersUnanswered = unansweredIn(fixedRuns.flatMap((r) => [r.memory, r.bare, r.bareDurable, r.safeguarded]));
    if (unanswered + othersUnanswered) say(`(c) non-200 answers: ${unanswered} direct or gateway, ${othersUnanswered} memory store or references`);
    const summarise = <R extends { direct: PacedResult }>(rounds: R[], of: (r: R) => PacedResult) => ({
      p50: median(rounds.map((r) => of(r).p50)), p99: median(rounds.map((r) => of(r).p99)),
      addedP50: median(rounds.map((r) => of(r).p50 - r.direct.p50)), addedP99: median(rounds.map((r) => of(r).p99 - r.direct.p99)),
    });
    const fixed = (of: (r: (typeof fixedRuns)[number]) => PacedResult) => summarise(fixedRuns, of);
    const [directFixed, gatewayFixed, memoryFixed] = [fixed((r) => r.direct), fixed((r) => r.gateway), fixed((r) => r.memory)];
    const referenceFixed = { bare: fixed((r) => r.bare), bareDurable: fixed((r) => r.bareDurable), safeguarded: fixed((r) => r.safeguarded) };
    const { addedP50, addedP99 } = gatewayFixed;
    // The targets are the durable pass-through's own added latency in the same rounds, plus a margin.
    const refAdded = referenceFixed.bareDurable;
    row(`(c) added latency p50 at ${FIXED_RATE} req/s`, `${round(addedP50)} ms (${round(directFixed.p50)} → ${round(gatewayFixed.p50)}; durable pass-through ${round(refAdded.addedP50)} ms)`, `≤ ref + 1 ms`, addedP50 <= refAdded.addedP50 + 1 && unanswered === 0);
    row(`(c) added latency p99 at ${FIXED_RATE} req/s`, `${round(addedP99)} ms (${round(directFixed.p99)} → ${round(gatewayFixed.p99)}; durable pass-through ${round(refAdded.addedP99)} ms)`, `≤ ref + 10 ms`, addedP99 <= refAdded.addedP99 + 10 && unanswered === 0);
    const added = (r: { addedP50: number; addedP99: number }) => `p50 ${round(r.addedP50)} ms, p99 ${round(r.addedP99)} ms`;
    row('(c) same, memory audit store (no commit)', added(memoryFixed), '—', null);
    row(`(ref) bare pass-through: added at ${FIXED_RATE} req/s`, added(referenceFixed.bare), '—', null);
    row('(ref) + fdatasync before each answer: added', added(referenceFixed.bareDurable), '—', null);
    row('(ref) every safeguard, hand-written: added', added(referenceFixed.safeguarded), '—', null);
    const highFixed = { gateway: summarise(highRuns, (r) => r.gateway), bareDurable: summarise(highRuns, (r) => r.bareDurable) };
    const highUnanswered = unansweredIn(highRuns.map((r) => r.gateway));
    row(`(c) added latency at ${HIGH_RATE} req/s`, `${added(highFixed.gateway)}${highUnanswered ? `, ${highUnanswered} non-200` : ''}`, '—', null);
    row(`(ref) + fdatasync: added at ${HIGH_RATE} req/s`, added(highFixed.bareDurable), '—', null);
    // The machine's floor under (c): the durable write in every audit commit, and the extra hop.
    const floor = { durableWrite: await durableWriteFloor(gw.dataDir, FIXED_RATE, FIXED_RATE_REQUESTS), loopback: await loopbackFloor(FIXED_RATE, FIXED_RATE_REQUESTS) };
    row(`(c) floor: 16 KB write + fdatasync at ${FIXED_RATE}/s`, `p50 ${round(floor.durableWrite.p50, 3)} ms, p99 ${round(floor.durableWrite.p99, 3)} ms`, '—', null);
    row(`(c) floor: loopback TCP round trip at ${FIXED_RATE}/s`, `p50 ${round(floor.loopback.p50, 3)} ms, p99 ${round(floor.loopback.p99, 3)} ms`, '—', null);
    const rssMb = peakRssMb(gw.pid);
    await gw.stop();

    const durableRatio = ratioOf(runs.sqlite, runs.memory);
    row('(d) memory store: throughput', `${Math.round(viaMemory.requestsPerSecond)} req/s`, '—', null);
    row('(d) SQLite / memory throughput', round(durableRatio, 3), '≥ 0.90', durableRatio >= 0.9);
    row('(d) audit commit batch size', `mean ${round(batches.mean, 1)}, max bucket ${batches.maxBucket}`, '—', null);

    // (h) PostgreSQL as the store: one instance, then two on one chain.
    say('(h) PostgreSQL audit store: one instance, then two on one chain');
    const postgres = await postgresRounds({
      spawn: async (schema) => {
        const child = await spawnGateway({ clientKeys: keys, upstreams, store: 'postgres', postgresSchema: schema }, services);
        children.push(child);
        return child;
      },
      // The PostgreSQL server's processes work for the gateways here: their CPU is the bench's own.
      closedLoop: async (urls, amount) => {
        const share = Math.floor(amount / urls.length);
        const requests = await Promise.all(urls.map(() => identityRequests(share)));
        const runs = await monitor.phase(`closed loop, PostgreSQL store, ${urls.length} instances`,
          () => Promise.all(urls.map((url, i) => closedLoop(url, '/services/population.identity/v1', share, requests[i]!))), ['postgres']);
        return runs.reduce((sum, r) => sum + r.requestsPerSecond, 0);
      },
      paced: async (urls) => paced(urls, '/services/population.identity/v1', await tokens(), FIXED_RATE, ['postgres']),
      direct: () => paced(sims.population!.url, '/api/v1/cong-dan/tra-cuu', simRequest),
      requests: THROUGHPUT_REQUESTS,
    });
    if (!postgres) row('(h) PostgreSQL store', 'skipped (no PostgreSQL at BENCH_POSTGRES_URL)', '—', null);
    else {
      for (const [label, r] of [['one instance', postgres.one], ['two instances, one chain', postgres.two]] as const) {
        row(`(h) PostgreSQL, ${label}`, `${Math.round(r.requestsPerSecond)} req/s (${round(r.requestsPerSecond / viaGateway.requestsPerSecond, 2)} of SQLite's); added at ${FIXED_RATE} req/s p50 ${round(r.addedP50)} ms, p99 ${round(r.addedP99)} ms; batch mean ${round(r.batchMean, 1)}`, '—', null);
      }
    }

    // (i) options of the request path, each off and on in the same run.
    say('(i) options: each off and on, side by side');
    const options: Record<string, OnOffResult> = {};
    const driver: OnOffDriver = {
      closedLoop: async (url, amount) => load(url, '/services/population.identity/v1', amount, await identityRequests(amount)),
      paced: async (url) => paced(url, '/services/population.identity/v1', await tokens()),
      requests: OPTION_REQUESTS, rounds: ROUNDS,
    };
    const sideBySide = async (name: string, configPatch: (raw: Record<string, any>) => void, o: { dataDirs?: [string, string]; activity?: (on: Child) => Promise<string> } = {}) => {
      const off = await spawnGateway({ clientKeys: keys, upstreams, dataDir: o.dataDirs?.[0] }, services);
      const on = await spawnGateway({ clientKeys: keys, upstreams, configPatch, dataDir: o.dataDirs?.[1] }, services);
      children.push(off, on);
      await Promise.all([off, on].map(async (g) => load(g.url, '/services/population.identity/v1', WARMUP_REQUESTS, await identityRequests(WARMUP_REQUESTS))));
      options[name] = await onOff(off, on, driver);
      const activity = o.activity ? `; meanwhile ${await o.activity(on)}` : '';
      await Promise.all([off.stop(), on.stop()]);
      row(`(i) ${name}`, describeOnOff(options[name]!) + activity, '—', null);
    };
    const { publicKey: encryptionKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const encryptionJwk = { ...(await exportJWK(encryptionKey)), use: 'enc', kid: 'bench-enc' };
    await sideBySide('answers encrypted to the client (JWE)', (raw) => {
      const portal = raw.clients.find((c: { id: string }) => c.id === 'portal');
      portal.keys.jwks.keys.push(encryptionJwk);
      portal.encryptResponses = true;
    });
    // Both gateways start on a log two days old; one time-stamps its checkpoints (OpenSSL's TSA)
    // and seals and drops the old entries while it is measured, the other does neither.
    const tsa = await startOpensslTsa('bench');
    const aged = [mkdtempSync(join(tmpdir(), 'gw-bench-aged-')), mkdtempSync(join(tmpdir(), 'gw-bench-aged-'))] as [string, string];
    for (const dir of aged) await seedAgedLog(dir, AGED_ENTRIES, AGED_SEGMENT);
    const metric = async (g: Child, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await (await fetch(`${g.url}/metrics`)).text())?.[1] ?? NaN);
    await sideBySide('RFC 3161 time-stamps and archiving of the audit log', (raw) => {
      raw.audit.timestamping = { authorities: [{ url: tsa.url, certificateFile: tsa.certFile }] };
      raw.audit.retention = { hotDays: 1 };
      raw.audit.archive = { everySeconds: 1, maxSegmentEntries: AGED_SEGMENT };
    }, {
      dataDirs: aged,
      activity: async (on) => `${await metric(on, 'gateway_audit_archived_entries')} entries sealed into ${await metric(on, 'gateway_audit_archive_segments')} segments, ${tsa.served} time-stamps taken`,
    });
    await tsa.close();
    // One hop through another gateway (province → national → the population simulator), beside the national gateway asked directly.
    const hop: FederatedHopResult = await benchFederatedHop({ rate: FIXED_RATE, requests: FIXED_RATE_REQUESTS, rounds: ROUNDS });
    row(`(i) one federated hop: added at ${FIXED_RATE} req/s`, `p50 ${round(hop.added.p50)} ms, p99 ${round(hop.added.p99)} ms (direct ${round(hop.direct.p50)} / ${round(hop.direct.p99)} → federated ${round(hop.federated.p50)} / ${round(hop.federated.p99)}${hop.federated.non200 ? `, ${hop.federated.non200} non-200` : ''})`, '—', null);

    // (e) composite fan-out against the slowest path.
    let fanout: Record<string, unknown> | null = null;
    if (!services.includes('land.title-verification')) {
      say('(e) skipped: land.title-verification is not registered yet');
      row('(e) title verification p50 / slowest path', 'skipped (service not registered)', '≤ 1.15', null);
    } else {
      say('(e) land.title-verification fan-out');
      const slow: Record<string, Child> = {};
      for (const a of AGENCIES) children.push((slow[a] = await spawnSimulator(a, FANOUT_LATENCY[a])));
      const fg = await spawnGateway({ clientKeys: keys, upstreams: Object.fromEntries(AGENCIES.map((a) => [a, slow[a]!.url])) }, services);
      children.push(fg);
      const parcels = world().parcels;
      const titleBody = (i: number) => JSON.stringify({ certificateSerial: parcels[i % parcels.length]!.certificate.serial });
      const claims = { purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-2026-000123' };
      await load(fg.url, '/services/land.title-verification/v1', 100, iterate(await presign(120, 'land-office', keys['land-office'], titleBody, claims)), { connections: 4 });
      const title = await load(fg.url, '/services/land.title-verification/v1', 600, iterate(await presign(620, 'land-office', keys['land-office'], titleBody, claims)), { connections: FANOUT_CONNECTIONS });
      await fg.stop();
      const direct = await directFanOut(Object.fromEntries(AGENCIES.map((a) => [a, slow[a]!.url])) as Record<Agency, string>, services, FANOUT_CONNECTIONS, 320);
      await Promise.all(AGENCIES.map((a) => slow[a]!.stop()));
      const nominal = FANOUT_LATENCY.land + Math.max(FANOUT_LATENCY.population, FANOUT_LATENCY.justice, FANOUT_LATENCY.tax);
      const slowest = direct.pathMs;
      const fanRatio = title.p50 / slowest;
      fanout = { ...title, nominalSlowestPathMs: nominal, directCallsP50Ms: direct.callsMs, slowestPathMs: slowest, ratio: fanRatio, ratioToNominal: title.p50 / nominal };
      row('(e) title verification p50 / slowest path', `${round(fanRatio, 3)} (${round(title.p50)} ms vs ${round(slowest)} ms direct, ${nominal} ms nominal; p99 ${round(title.p99)} ms${title.other ? `, ${title.other} non-200` : ''})`, '≤ 1.15', fanRatio <= 1.15 && title.other === 0);
    }
    await Promise.all(AGENCIES.map((a) => sims[a]!.stop()));

    // (f) the audit log at scale.
    say(`(f) audit at scale: ${AUDIT_ENTRIES} entries`);
    const scale = await auditAtScale(AUDIT_ENTRIES);
    const verifyShare = scale.verifiedPerSecond / scale.rawSha256PerSecond;
    row(`(f) verify ${AUDIT_ENTRIES.toLocaleString('en')} entries`, `${Math.round(scale.verifiedPerSecond).toLocaleString('en')} entries/s (${round(scale.verifySeconds)} s; ${round(verifyShare, 2)} of SHA-256 alone, ${Math.round(scale.rawSha256PerSecond).toLocaleString('en')}/s${scale.ok ? '' : '; CHAIN NOT OK'})`, '≥ 300,000/s or ≥ 0.5 of SHA-256', scale.ok && (scale.verifiedPerSecond >= 300_000 || verifyShare >= 0.5));
    row('(f) search by subject p95', `${round(scale.searchP95Ms, 3)} ms (p50 ${round(scale.searchP50Ms, 3)} ms)`, '≤ 20 ms', scale.searchP95Ms <= 20);
    // Entries sealed into archive segments (audit.retention.hotDays) are found through the kept subject index and one gzip member each.
    row('(f) search by subject p95, entries archived', `${round(scale.archived.searchP95Ms, 3)} ms (p50 ${round(scale.archived.searchP50Ms, 3)} ms; ${scale.archived.archivedEntries} entries in ${scale.archived.segments} segments)`, 'reported', null);

    // (g) memory.
    row('(g) gateway peak RSS (VmHWM)', rssMb === null ? 'n/a' : `${Math.round(rssMb)} MB`, '≤ 200 MB', rssMb === null ? null : rssMb <= 200);

    Object.assign(results, { options, federatedHop: hop, highRuns, highFixed, postgres, cpuRatio, signaturesMs, cpuOverFloor, overSafeguarded, safeguardedOverDurable, runs, direct, viaGateway, cpuPerRequestMs, ratio, reference, directFixed, gatewayFixed, addedP50, addedP99, memoryFixed, referenceFixed, fixedRuns, floor, viaMemory, durableRatio, batches, fanout, auditScale: scale, peakRssMb: rssMb, seconds: round((performance.now() - started) / 1000, 1), rows });
  } finally {
    await cleanup();
  }

  const disturbed = monitor.disturbed();
  Object.assign(results, { disturbedShare: DISTURBED_SHARE, phases: monitor.phases, disturbed: disturbed.length > 0 });
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results', 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  printTable(results.machine as ReturnType<typeof machine>, rows, disturbed.length > 0);
  const worstForeign = Math.max(0, ...monitor.phases.map((p) => p.foreignShare + p.stealShare));
  const worstKernel = Math.max(0, ...monitor.phases.map((p) => p.kernelShare));
  process.stdout.write(`\nload from outside the bench: at most ${round(100 * worstForeign, 1)} % of the machine in any of its ${monitor.phases.length} measured phases (a run is disturbed above ${round(100 * DISTURBED_SHARE, 1)} %; the kernel's own threads, not counted as outside load, took at most ${round(100 * worstKernel, 1)} %)\n`);
  if (disturbed.length) {
    process.stdout.write(`DISTURBED RUN: ${disturbed.length} phases ran beside other load (worst: ${disturbed[0]!.phase}, ${round(100 * (disturbed[0]!.foreignShare + disturbed[0]!.stealShare), 1)} % of the machine). These figures are not a result; run again on a quiet machine.\n`);
    process.exitCode = 3;
  }
  process.stdout.write(`\nwritten to bench-results/latest.json (${results.seconds} s)\n`);
}

function printTable(m: ReturnType<typeof machine>, rows: Row[], disturbed: boolean) {
  const w = [Math.max(...rows.map((r) => r.name.length)), Math.max(...rows.map((r) => r.figure.length)), 12];
  const line = (a: string, b: string, c: string, d: string) => `| ${a.padEnd(w[0]!)} | ${b.padEnd(w[1]!)} | ${c.padEnd(w[2]!)} | ${d.padEnd(4)} |`;
  process.stdout.write(`\nmachine: ${m.cpu}, ${m.cores} cores, ${m.ramGb} GB RAM, Node ${m.node} (${m.platform})\n\n`);
  process.stdout.write(line('measure', 'figure', 'target', 'pass') + '\n');
  process.stdout.write(`|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 2)}|${'-'.repeat(w[2]! + 2)}|------|\n`);
  // A disturbed run passes and fails nothing: its figures say what the other load did as much as what the gateway does.
  const verdict = (r: Row) => (r.pass === null ? '' : disturbed ? '?' : r.pass ? 'pass' : 'FAIL');
  for (const r of rows) process.stdout.write(line(r.name, r.figure, r.target, verdict(r)) + '\n');
}

await main();
