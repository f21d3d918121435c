/**
 * `mode: production` never falls back to the demo: each thing of the demo a config could leave in
 * is refused at start with its key path; the demo says at start that it is one.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, demoConfig, hashPassword, parseConfig } from '../gateway/config/index.ts';
import { generatePrivateJwk, publicPart } from '../gateway/keys.ts';
import { grantableFieldGroups, grantableServices } from '../gateway/services/index.ts';
import { createGateway } from '../gateway/server.ts';
import { agencyNames } from '../adapters/index.ts';

const run = promisify(execFile);
const checks = () => ({ env: {}, knownServices: grantableServices(), fieldGroups: grantableFieldGroups() });

/** A production config with nothing of the demo in it: real URLs, own keys, own credentials, a durable store. */
async function productionConfig(): Promise<{ raw: any; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-prod-'));
  const raw: any = await demoConfig(dataDir); // demo keys now exist under dataDir/demo, as after a demo run
  raw.mode = 'production';
  raw.upstreams = Object.fromEntries(agencyNames().map((a) => [a, { url: `https://${a}.agency.example` }]));
  raw.upstreams.tax = { ...raw.upstreams.tax, clientId: 'gateway', clientSecret: 's3cret' };
  const own = async () => ({ keys: [publicPart(await generatePrivateJwk('ES256'))] });
  for (const c of raw.clients) c.keys = { jwks: await own() };
  raw.identityProvider.jwks = await own();
  raw.console.accounts[0].passwordHash = hashPassword('a password of the province');
  return { raw, dataDir };
}

const refusal = (raw: unknown) => {
  try {
    parseConfig(raw, checks());
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
};

describe('production mode', () => {
  it('is the default, and accepts a config with nothing of the demo in it', async () => {
    const { raw } = await productionConfig();
    delete raw.mode;
    expect(parseConfig(raw, checks()).mode).toBe('production');
  });

  it('refuses an upstream without a url (the simulator would answer) and an agency option left to its demo value', async () => {
    const { raw } = await productionConfig();
    delete raw.upstreams.land.url;
    expect(refusal(raw)).toMatch(/^\/upstreams\/land\/url: required/);
    const second = (await productionConfig()).raw;
    delete second.upstreams.tax.clientSecret;
    expect(refusal(second)).toMatch(/^\/upstreams\/tax\/clientSecret: required/);
  });

  it('refuses a config with no client, and the in-memory audit store', async () => {
    const { raw } = await productionConfig();
    expect(refusal({ ...raw, clients: [], grants: [], forms: [] })).toMatch(/^\/clients: no client/);
    expect(refusal({ ...raw, audit: { store: 'memory' } })).toMatch(/^\/audit\/store: "memory"/);
  });

  it('refuses demo keys and the demo console password', async () => {
    const demo = await demoConfig(mkdtempSync(join(tmpdir(), 'gw-demo-'))) as any;
    const { raw, dataDir } = await productionConfig();
    const mine = await demoConfig(dataDir) as any; // the same data dir: its demo keys
    expect(refusal({ ...raw, clients: [raw.clients[0], mine.clients[1], raw.clients[2]] })).toMatch(/^\/clients\/1\/keys\/jwks\/keys\/0: a demo key/);
    expect(refusal({ ...raw, identityProvider: mine.identityProvider })).toMatch(/^\/identityProvider\/jwks\/keys\/0: a demo key/);
    expect(refusal({ ...raw, signing: { privateJwkFile: join(dataDir, 'demo', 'portal.private.jwk.json') } })).toMatch(/^\/signing\/privateJwkFile: a demo key/);
    expect(refusal({ ...raw, console: { accounts: demo.console.accounts } })).toMatch(/^\/console\/accounts\/0\/passwordHash: the demo console password/);
  });

  it('stops `gateway start` with exit code 1 naming the key path', async () => {
    const { raw, dataDir } = await productionConfig();
    delete raw.upstreams.population.url;
    const file = join(dataDir, 'gateway.config.json');
    writeFileSync(file, JSON.stringify(raw));
    const err = await run(process.execPath, ['bin/gateway.mjs', 'start', '--config', file]).then(() => null, (e) => e as { code: number; stderr: string });
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain('/upstreams/population/url');
  });

  it('says at start that a demo is a demo, naming the simulated agencies', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-demo-'));
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } });
    const cfg = parseConfig({ ...(await demoConfig(dataDir)), logLevel: 'info', audit: { store: 'memory' } }, checks());
    const gw = await createGateway(cfg, { logDestination: sink });
    try {
      const notice = lines.map((l) => JSON.parse(l)).find((l) => l.mode === 'demo');
      expect(notice).toMatchObject({ level: 'warn', simulated: agencyNames() });
    } finally {
      await gw.close();
    }
  });
});
