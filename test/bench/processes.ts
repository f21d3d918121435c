/**
 * Real processes for the benchmark and the crash test: agency simulators and gateways started as
 * separate Node processes on loopback, the gateway as it is deployed (`node dist/gateway/cli.js
 * start`, the compiled build).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JWK } from 'jose';
import { publicPart } from '../../gateway/keys.ts';
import { DEMO_PURPOSES } from '../../gateway/config/index.ts';
import { grantableFieldGroups } from '../../gateway/services/index.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_GATEWAY_ID = 'urn:bench:gateway';

export interface Child { process: ChildProcess; pid: number; url: string; stop(signal?: NodeJS.Signals): Promise<void> }

/** A free loopback port (the gateway listens on a configured port, so the parent must pick it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function stopper(child: ChildProcess) {
  return async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };
}

/** Starts a bench script (run through tsx) in its own process; resolves with the URL it prints on its first line. */
function spawnListener(name: string, args: string[]): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0]!;
      if (out.includes('\n')) resolve({ process: child, pid: child.pid!, url: line.trim(), stop: stopper(child) });
    });
  });
}

/** Starts `test/bench/serve-simulator.ts` for one agency in its own process; resolves with its URL. */
export function spawnSimulator(agency: string, latencyMs = 0): Promise<Child> {
  return spawnListener(`${agency} simulator`, ['test/bench/serve-simulator.ts', agency, '0', String(latencyMs)]);
}

/** Starts the bare pass-through reference (`test/bench/pass-through.ts`) in front of `upstream`; `durableDir` adds its fdatasync'd journal there. */
export function spawnPassThrough(upstream: string, durableDir?: string): Promise<Child> {
  return spawnListener('pass-through', ['test/bench/pass-through.ts', upstream, ...(durableDir ? ['durable', durableDir] : [])]);
}

/**
 * Starts the safeguarded reference (`test/bench/safeguarded.ts`) in front of the population
 * simulator at `upstream`, taking assertions from `clients` (id → public JWK) addressed to the bench gateway's id.
 */
export function spawnSafeguarded(upstream: string, clients: Record<string, JWK>): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-safeguarded-'));
  const file = join(dir, 'clients.json');
  writeFileSync(file, JSON.stringify({ audience: BENCH_GATEWAY_ID, clients: Object.fromEntries(Object.entries(clients).map(([id, jwk]) => [id, publicPart(jwk)])) }));
  return spawnListener('safeguarded reference', ['test/bench/safeguarded.ts', upstream, dir, file]);
}

export interface BenchGatewayOptions {
  dataDir?: string;
  clientKeys: Record<string, JWK>;
  upstreams: Record<string, string>;
  store?: 'sqlite' | 'memory' | 'postgres';
  /** With the PostgreSQL store: the schema its chain lives in (several gateways may share it). */
  postgresSchema?: string;
  logLevel?: string;
  /** Upstream bulkhead size (default the config's). */
  maxConcurrent?: number;
  /** Extra node options for the gateway process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Changes the generated config before it is written (an option turned on: encryption, time-stamps…). */
  configPatch?: (raw: Record<string, any>) => void;
}

/** A complete gateway config for a bench or crash-test process: every client may call every data service, unthrottled. */
export function benchConfig(o: BenchGatewayOptions & { port: number; dataDir: string }, services: readonly string[]): Record<string, unknown> {
  const purposes = ['PUBLIC_SERVICE_PREFILL', 'LAND_TRANSFER_REGISTRATION', 'AUDIT_REVIEW'];
  const groups = grantableFieldGroups();
  return {
    gatewayId: BENCH_GATEWAY_ID,
    // Demo mode: agencies the bench does not run are embedded simulators, and the memory store is allowed.
    mode: 'demo',
    dataDir: o.dataDir,
    logLevel: o.logLevel ?? 'info',
    listen: { host: '127.0.0.1', port: o.port },
    audit: {
      store: o.store ?? 'sqlite',
      ...(o.store === 'postgres' ? { postgresUrl: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test', postgresSchema: o.postgresSchema } : {}),
      pseudonymKey: 'bench-pseudonym-key-0123456789abcdef', checkpointEveryEntries: 1000, checkpointEverySeconds: 5 },
    clients: Object.entries(o.clientKeys).map(([id, jwk]) => ({ id, name: `Bench client ${id}`, keys: { jwks: { keys: [publicPart(jwk)] } }, rateLimitPerMinute: 1_000_000_000 })),
    purposes: DEMO_PURPOSES,
    grants: Object.keys(o.clientKeys).flatMap((client) => [
      ...services.map((service) => ({ client, service, purposes, fieldGroups: groups.get(service) ?? [] })),
      { client, service: 'audit', purposes: ['AUDIT_REVIEW'] },
    ]),
    upstreams: Object.fromEntries(Object.entries(o.upstreams).map(([agency, url]) => [agency, { url, resilience: o.maxConcurrent ? { maxConcurrent: o.maxConcurrent, maxQueued: o.maxConcurrent * 4 } : {} }])),
  };
}

let built = false;

/**
 * Runs `npm run build` once per process, so the gateways run the current sources. Builds from
 * parallel test workers may overlap: scripts/build.mjs stages its output and renames it into dist/
 * file by file, so none of them reads a half-written file.
 */
export function ensureBuilt(): void {
  if (built) return;
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
  built = true;
}

/**
 * Starts the compiled gateway as the image does (its ENTRYPOINT, then `start --config FILE`; built first if this process has not yet)
 * with its stdout sent to /dev/null (a production logger writes there at info level); resolves
 * once /healthz answers.
 */
export async function spawnGateway(o: BenchGatewayOptions, services: readonly string[]): Promise<Child & { dataDir: string; configFile: string }> {
  ensureBuilt();
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const port = await freePort();
  const configFile = join(dataDir, 'config.json');
  const raw = benchConfig({ ...o, port, dataDir }, services);
  o.configPatch?.(raw);
  writeFileSync(configFile, JSON.stringify(raw, null, 2));
  const [, ...flags] = imageEntrypoint();
  const script = flags.pop()!;
  const child = spawn(process.execPath, [...flags, ...(o.nodeArgs ?? []), script, 'start', '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}): ${stderr.slice(0, 2000)}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start: ${stderr.slice(0, 2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { process: child, pid: child.pid!, url, dataDir, configFile, stop: stopper(child) };
}

/** The image's ENTRYPOINT (docker/Dockerfile): the gateway runs here with the node flags it runs with in production. */
export function imageEntrypoint(): string[] {
  const dockerfile = readFileSync(join(ROOT, 'docker', 'Dockerfile'), 'utf8');
  const line = [...dockerfile.matchAll(/^ENTRYPOINT (\[.*\])$/gm)].at(-1);
  if (!line) throw new Error('docker/Dockerfile has no ENTRYPOINT');
  return JSON.parse(line[1]!) as string[];
}

/** CPU time (user + system, every thread) a live process has used, in seconds; null where /proc is absent. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of proc(5), in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) of a live process, in MB; null where /proc is absent. */
export function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
