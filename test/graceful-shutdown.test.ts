/**
 * A real gateway process receives SIGTERM while requests are in flight: they all complete with 200,
 * their audit entries are committed, new connections are refused, the final checkpoint is at the
 * head, one "shutdown complete" line says so, and the process exits 0.
 *
 * The population upstream is the real simulator behind a gate held by the test, so "in flight" is
 * a known state (every request has reached the upstream) rather than a guess about timing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { agencyNamed, listenOnLoopback } from '../adapters/index.ts';
import { world } from '../adapters/world/index.ts';
import { createSqliteStore, verifyChain, type AuditEntry } from '../gateway/audit/index.ts';
import { keyPairFromJwk, loadOrCreatePrivateJwk } from '../gateway/keys.ts';
import { createSigner } from '../gateway/signing.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { testConfig, testKeys } from './support/fixtures.ts';

const IN_FLIGHT = 5;
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The population simulator behind a gate: lookups wait until `release()`; `arrived(n)` resolves once n are waiting. */
async function gatedPopulationUpstream() {
  let release!: () => void;
  const opened = new Promise<void>((r) => { release = r; });
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const app = express();
  app.use(async (req, _res, next) => {
    if (req.method !== 'POST') return next();
    count++;
    for (const w of waiters.filter((w) => count >= w.n)) w.resolve();
    await opened;
    next();
  });
  app.use(agencyNamed('population')!.createSimulator({}));
  const { url, close } = await listenOnLoopback(app);
  return {
    url, close, release,
    arrived: (n: number) => new Promise<void>((resolve) => (count >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

/** The child's JSON log lines, and a way to wait for one (`.lines`: all of them so far). */
function logLines(child: ChildProcess) {
  const lines: Record<string, any>[] = [];
  const waiters: { match: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text);
    lines.push(line);
    for (const w of waiters.filter((w) => w.match(line))) w.resolve(line);
  });
  const logged = (match: (l: Record<string, any>) => boolean) =>
    new Promise<Record<string, any>>((resolve) => {
      const found = lines.find(match);
      if (found) resolve(found);
      else waiters.push({ match, resolve });
    });
  return Object.assign(logged, { lines });
}

/** Resolves with the exit code; rejects if the process died of a signal instead of exiting. */
const exited = (child: ChildProcess) => new Promise<number>((resolve, reject) => child.once('exit', (code, signal) => (signal ? reject(new Error(`killed by ${signal}`)) : resolve(code!))));

/** Whether a connection to `url` fails (refused or reset) rather than being answered. */
async function connectionRefused(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    return false;
  } catch (e) {
    return ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'].includes((e as { cause?: { code?: string } }).cause?.code ?? '');
  }
}

describe('graceful shutdown of a gateway process', () => {
  it('finishes in-flight requests, commits their audit entries, refuses new connections and exits 0', async () => {
    const upstream = await gatedPopulationUpstream();
    cleanups.push(() => upstream.close());
    cleanups.push(() => upstream.release());
    const cfg = await testConfig((raw) => {
      raw.logLevel = 'info';
      raw.upstreams.population.resilience.timeoutMs = 20_000;
    });
    cleanups.push(() => rmSync(cfg.dataDir, { recursive: true, force: true }));
    const configFile = join(cfg.dataDir, 'gateway.config.json');
    writeFileSync(configFile, JSON.stringify(cfg));

    const { REDIS_URL: _r, AUDIT_POSTGRES_URL: _p, PORT: _port, GATEWAY_CONFIG: _c, GATEWAY_DATA_DIR: _d, ...env } = process.env;
    const child = spawn(process.execPath, ['bin/gateway.mjs', 'start', '--config', configFile], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...env, UPSTREAM_POPULATION_URL: upstream.url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    const exit = exited(child);
    const logged = logLines(child);
    const { url } = await logged((l) => typeof l.url === 'string');

    const keys = await testKeys();
    const citizens = world().citizens;
    const inFlight = Array.from({ length: IN_FLIGHT }, async (_, i) => {
      const client = i % 2 ? 'portal' : 'land-office';
      const body = JSON.stringify({ personalId: citizens[i]!.personalId });
      const token = await mintAssertion({
        privateJwk: keys[client]!, iss: client, aud: cfg.gatewayId, body,
        purpose: client === 'portal' ? 'PUBLIC_SERVICE_PREFILL' : 'LAND_TRANSFER_REGISTRATION', caseId: client === 'portal' ? undefined : 'HS-2026-000777',
      });
      const res = await fetch(`${url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body });
      return { status: res.status, requestId: res.headers.get('x-request-id'), body: await res.json() };
    });
    await upstream.arrived(IN_FLIGHT);

    child.kill('SIGTERM');
    await logged((l) => l.signal === 'SIGTERM');
    expect(await connectionRefused(url)).toBe(true);
    upstream.release();

    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual(Array(IN_FLIGHT).fill(200));
    results.forEach((r, i) => expect(r.body.fullName).toBe(citizens[i]!.fullName));
    expect(await exit).toBe(0);
    expect(await connectionRefused(url)).toBe(true);
    // One line marks the end, with the final checkpoint at the head (the last in-flight entry).
    const completions = logged.lines.filter((l) => l.msg === 'shutdown complete');
    expect(completions).toHaveLength(1);
    expect(completions[0]).toMatchObject({ signal: 'SIGTERM', headSeq: IN_FLIGHT, checkpointSeq: IN_FLIGHT });

    const store = createSqliteStore(join(cfg.dataDir, 'audit.sqlite'));
    try {
      const entries: AuditEntry[] = [];
      for await (const e of store.scan()) entries.push(e);
      expect(entries.map((e) => e.id).sort()).toEqual(results.map((r) => r.requestId).sort());
      expect(entries.every((e) => e.outcome === 'released')).toBe(true);
      const signer = createSigner(await keyPairFromJwk(await loadOrCreatePrivateJwk(join(cfg.dataDir, 'keys', 'gateway.private.jwk.json'), 'ES256')));
      const report = await verifyChain(store.scan(), await store.checkpoints(), signer.jwks);
      // The closing checkpoint covers the last entry, so a later truncation would be detected.
      expect(report).toMatchObject({ ok: true, entries: IN_FLIGHT, lastCheckpoint: { seq: IN_FLIGHT } });
    } finally {
      await store.close();
    }
  }, 60_000);
});
