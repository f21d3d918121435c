import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ConfigError, parseConfig } from '../gateway/config/index.ts';
import { grantableFieldGroups, grantableServices } from '../gateway/services/index.ts';
import { testConfig } from './support/fixtures.ts';

const run = promisify(execFile);
const knownServices = grantableServices();
const minimal = { gatewayId: 'urn:x', mode: 'demo' };
const errorOf = (raw: unknown, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(raw, { env, knownServices });
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
};

describe('config', () => {
  it('fills defaults and freezes the result', () => {
    const cfg = parseConfig(minimal, { env: {}, knownServices });
    expect(cfg.listen.port).toBe(8080);
    expect(cfg.audit.store).toBe('sqlite');
    expect(cfg.limits.maxAssertionLifetimeSeconds).toBe(300);
    expect(cfg.upstreams.population.resilience.timeoutMs).toBe(3000);
    expect(Object.isFrozen(cfg.upstreams.population.resilience)).toBe(true);
  });

  it('names the exact key path of an error', () => {
    expect(errorOf({ ...minimal, upstreams: { population: { resilience: { timeoutMs: -1 } } } })).toMatch(/^\/upstreams\/population\/resilience\/timeoutMs: /);
    expect(errorOf({ ...minimal, audit: { sotre: 'x' } })).toMatch(/^\/audit: .*"sotre"/);
    expect(errorOf({ ...minimal, clients: [{ id: 'a', name: 'A', keys: { jwks: { keys: [{ kty: 'EC' }] } } }], grants: [{ client: 'b', service: 'population.identity' }] })).toMatch(/^\/grants\/0\/client: unknown client "b"/);
    expect(errorOf({ ...minimal, purposes: [{ code: 'P1', legalBasis: 'x' }], clients: [{ id: 'a', name: 'A', keys: { jwks: { keys: [{ kty: 'EC' }] } } }], grants: [{ client: 'a', service: 'population.identity', purposes: ['P2'] }] })).toMatch(/^\/grants\/0\/purposes\/0: unknown purpose/);
    expect(errorOf({ ...minimal, clients: [{ id: 'a', name: 'A', keys: { jwks: { keys: [{ kty: 'EC' }] } } }], grants: [{ client: 'a', service: 'no.such' }] })).toMatch(/^\/grants\/0\/service: unknown service/);
  });

  it('takes secrets from the environment and names a missing variable', () => {
    const cfg = parseConfig({ ...minimal, audit: { pseudonymKey: '${PSEUDO_KEY}' } }, { env: { PSEUDO_KEY: 'k'.repeat(40) }, knownServices });
    expect(cfg.audit.pseudonymKey).toBe('k'.repeat(40));
    expect(errorOf({ ...minimal, audit: { pseudonymKey: '${PSEUDO_KEY}' } })).toMatch(/^\/audit\/pseudonymKey: environment variable PSEUDO_KEY is not set/);
  });

  it('lets the environment steer port, data dir and upstreams (12-factor)', () => {
    const cfg = parseConfig(minimal, { env: { PORT: '9090', GATEWAY_DATA_DIR: '/tmp/x', UPSTREAM_POPULATION_URL: 'http://10.1.2.3:80', SIMULATOR_LAND_LATENCY_MS: '40', SIMULATOR_TAX_FAILURE_RATE: '0.5' }, knownServices });
    expect(cfg.listen.port).toBe(9090);
    expect(cfg.dataDir).toBe('/tmp/x');
    expect(cfg.upstreams.population.url).toBe('http://10.1.2.3:80');
    expect(cfg.simulators.land.latencyMs).toBe(40);
    expect(cfg.simulators.tax.failureRate).toBe(0.5);
  });

  it('makes `gateway start` exit non-zero naming the key path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'gatewayId: urn:x\nmode: demo\nlimits:\n  maxAssertionLifetimeSeconds: 900\n');
    const err = await run('node', ['bin/gateway.mjs', 'start', '--config', file]).then(() => null, (e) => e as { code: number; stderr: string });
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain('/limits/maxAssertionLifetimeSeconds');
  });

  it('lists the allowed values of an enum, names the variable behind an error, and says how to make a password hash', () => {
    expect(errorOf({ ...minimal, audit: { store: 'mysql' } })).toBe('/audit/store: must be one of "sqlite", "postgres", "memory"');
    expect(errorOf(minimal, { LOG_LEVEL: 'loud' })).toMatch(/^\/logLevel \(from the environment variable LOG_LEVEL\): must be one of "fatal", .*"silent"$/);
    expect(errorOf(minimal, { PORT: 'eighty' })).toMatch(/^\/listen\/port \(from the environment variable PORT\): must be integer/);
    expect(errorOf(minimal, { SIMULATOR_TAX_LATENCY_MS: '-5' })).toMatch(/^\/simulators\/tax\/latencyMs \(from the environment variable SIMULATOR_TAX_LATENCY_MS\): /);
    expect(errorOf({ ...minimal, console: { accounts: [{ username: 'a', passwordHash: 'hunter2' }] } })).toMatch(/^\/console\/accounts\/0\/passwordHash: .*gateway hash-password/);
  });

  it('refuses a grant or a form naming a field group the service\'s contract does not declare', () => {
    const fieldGroups = grantableFieldGroups();
    const client = { id: 'a', name: 'A', keys: { jwks: { keys: [{ kty: 'EC' }] } } };
    const purposes = [{ code: 'P1', legalBasis: 'x' }];
    const grant = (fg: string[]) => ({ ...minimal, clients: [client], purposes, grants: [{ client: 'a', service: 'population.identity', purposes: ['P1'], fieldGroups: fg }] });
    expect(() => parseConfig(grant(['core', 'vital']), { env: {}, knownServices, fieldGroups })).not.toThrow();
    const message = (raw: unknown) => { try { parseConfig(raw, { env: {}, knownServices, fieldGroups }); return null; } catch (e) { return (e as Error).message; } };
    expect(message(grant(['core', 'shoesize']))).toBe('/grants/0/fieldGroups/1: "shoesize" is not a field group of population.identity (core, address, family, vital)');
    expect(message(grant(['parcel']))).toMatch(/^\/grants\/0\/fieldGroups\/0: "parcel" is not a field group of population.identity/);
    const form = { id: 'f', title: 'F', fields: [{ name: 'n', service: 'land.parcel', fieldGroup: 'core', path: 'x' }] };
    expect(message({ ...minimal, forms: [form] })).toMatch(/^\/forms\/0\/fields\/0\/fieldGroup: "core" is not a field group of land.parcel/);
  });

  it('accepts the fixture config (JSON round trip)', async () => {
    const cfg = await testConfig();
    expect(() => parseConfig(JSON.parse(JSON.stringify(cfg)), { env: {}, knownServices })).not.toThrow();
  });
});
