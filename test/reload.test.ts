/**
 * Config reload without a restart, on a real `gateway start` with a config file: SIGHUP (sent with
 * process.kill) and `gateway reload` re-read and validate the file. A valid one serves the next
 * requests (a new client works, a removed client gets AUTH_INVALID, a withdrawn grant
 * FORBIDDEN_SERVICE); an invalid one, or one changing a key fixed at start, is refused with its
 * key path (the command exits 1, the gateway logs one error line) and the old config keeps serving.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { generatePrivateJwk, publicPart } from '../gateway/keys.ts';
import type { GatewayConfig } from '../gateway/config/index.ts';
import { ROOT } from './bench/processes.ts';
import { testConfig, testKeys, type TestKeys } from './support/fixtures.ts';
import { launch, runCleanups, until, userEnv, type Launched } from './support/launch.ts';

const BODY = JSON.stringify({ personalId: '001085123456' });
let keys: TestKeys;
let newcomer: JWK;
let start: GatewayConfig;
let configFile: string;
let g: Launched;
let initialHash: string;

/** The config as a file holds it: the parsed test config (valid input as it is), edited. */
const write = (edit: (raw: any) => void = () => {}) => {
  const raw = JSON.parse(JSON.stringify(start));
  edit(raw);
  writeFileSync(configFile, JSON.stringify(raw, null, 2));
};

const withNewcomer = (raw: any) => {
  raw.clients.push({ id: 'newcomer', name: 'A client added at run time', keys: { jwks: { keys: [publicPart(newcomer)] } } });
  raw.grants.push({ client: 'newcomer', service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core'] });
  raw.clients = raw.clients.filter((c: { id: string }) => c.id !== 'narrow');
  raw.grants = raw.grants.filter((x: { client: string; service: string }) => x.client !== 'narrow' && !(x.client === 'portal' && x.service === 'population.identity'));
};

beforeAll(async () => {
  keys = await testKeys();
  newcomer = await generatePrivateJwk('ES256');
  start = await testConfig((raw) => { raw.logLevel = 'info'; });
  configFile = join(start.dataDir, 'gateway.config.json');
  write();
  g = await launch(process.execPath, ['bin/gateway.mjs', 'start', '--config', configFile], { dataDir: start.dataDir });
}, 90_000);
afterAll(runCleanups);

async function call(client: string, key: JWK = keys[client]!): Promise<{ status: number; code?: string }> {
  const token = await mintAssertion({ privateJwk: key, iss: client, aud: start.gatewayId, purpose: 'PUBLIC_SERVICE_PREFILL', body: BODY });
  const res = await fetch(`${g.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: BODY });
  return { status: res.status, code: res.status === 200 ? undefined : (await res.json()).code };
}

const generation = async () => ((await (await fetch(`${g.url}/readyz`)).json()) as { config: { generation: number; hash: string } }).config;
const logLines = () => g.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);

/** `gateway reload` as an operator runs it, in the gateway's environment but its own process. */
const reloadCommand = (...args: string[]) => promisify(execFile)(process.execPath, ['bin/gateway.mjs', 'reload', ...args], { cwd: ROOT, env: userEnv() })
  .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));

describe('config reload without a restart', () => {
  it('SIGHUP: a valid config serves the next requests: a new client works, a removed client and a withdrawn grant are refused at once', async () => {
    const initial = await generation();
    expect(initial).toMatchObject({ generation: 1 });
    initialHash = initial.hash;
    expect(await call('newcomer', newcomer)).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await call('narrow')).toEqual({ status: 200 });
    expect(await call('portal')).toEqual({ status: 200 });

    write(withNewcomer);
    process.kill(g.child.pid!, 'SIGHUP');
    await until('generation 2', async () => ((await generation()).generation === 2) || undefined);

    expect(await call('newcomer', newcomer)).toEqual({ status: 200 });
    expect(await call('narrow')).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await call('portal')).toEqual({ status: 403, code: 'FORBIDDEN_SERVICE' });
    const reloaded = logLines().filter((l) => l.msg === 'config reloaded');
    expect(reloaded).toHaveLength(1);
    expect(reloaded[0]).toMatchObject({ trigger: 'SIGHUP', generation: 2, changed: ['clients', 'grants'] });
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_config_generation 2$/m);
  }, 60_000);

  it('gateway reload: an invalid config is refused naming its key path (exit 1, one error line); the old config keeps serving', async () => {
    const before = await generation();
    write((raw) => { withNewcomer(raw); raw.clients[0].rateLimitPerMinute = 0; });
    const r = await reloadCommand('--config', configFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/clients/0/rateLimitPerMinute: must be >= 1');
    const refusals = logLines().filter((l) => l.level === 'error');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.msg).toContain('/clients/0/rateLimitPerMinute');
    expect(await generation()).toEqual(before);
    expect(await call('newcomer', newcomer)).toEqual({ status: 200 });
    expect(await call('portal')).toEqual({ status: 403, code: 'FORBIDDEN_SERVICE' });
  }, 60_000);

  it('gateway reload: a key fixed at start is refused naming it; a valid file afterwards is applied', async () => {
    const before = await generation();
    write((raw) => { withNewcomer(raw); raw.instanceId = 'gw-renamed'; });
    const refused = await reloadCommand('--config', configFile);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^config reload refused: \/instanceId: cannot change while the gateway runs/m);
    expect(await generation()).toEqual(before);
    expect(await call('newcomer', newcomer)).toEqual({ status: 200 });

    write(); // back to the config it started with
    const applied = await reloadCommand('--config', configFile);
    expect(applied).toMatchObject({ code: 0 });
    expect(applied.stdout).toContain(`config reloaded: generation ${before.generation + 1}`);
    expect(await call('newcomer', newcomer)).toEqual({ status: 401, code: 'AUTH_INVALID' });
    expect(await call('narrow')).toEqual({ status: 200 });
    expect(await call('portal')).toEqual({ status: 200 });
    // The same config as at start: a new generation, the same hash.
    expect(await generation()).toEqual({ generation: before.generation + 1, hash: initialHash });
  }, 60_000);

  it('gateway reload without a running gateway says so and exits 1', async () => {
    const dir = join(start.dataDir, 'elsewhere');
    const r = await promisify(execFile)(process.execPath, ['bin/gateway.mjs', 'reload'], { cwd: ROOT, env: { ...userEnv(), GATEWAY_DATA_DIR: dir } }).catch((e) => e);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no running gateway/);
  }, 30_000);

  it('the pid file `gateway reload` reads is there while the gateway runs, and gone after it stopped', async () => {
    const pidFile = join(start.dataDir, 'gateway.pid');
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(g.child.pid));
    process.kill(g.child.pid!, 'SIGTERM');
    expect(await g.exit).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
  }, 30_000);
});
