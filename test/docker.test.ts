/**
 * The docker stack, checked without a Docker engine: the compose file's services, the paths it
 * references, the Dockerfile's hardening and build, the example config against the real config
 * loader, and, run from the compiled build as the image runs them, the key set-up script and the
 * `simulate` command the simulator containers run.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { JWK } from 'jose';
import { ConfigError, parseConfig } from '../gateway/config/index.ts';
import { agencyNames } from '../adapters/index.ts';

const AGENCIES = agencyNames();
import { grantableServices } from '../gateway/services/index.ts';
import { publicPart } from '../gateway/keys.ts';
import { ensureBuilt } from './bench/processes.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DOCKER = join(ROOT, 'docker');
const read = (file: string) => readFileSync(file, 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
}

// Compose files use YAML merge keys (<<) for the shared service definitions.
const compose = YAML.parse(read(join(DOCKER, 'compose.yaml')), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const rawConfig = YAML.parse(read(join(DOCKER, 'gateway.config.yaml')));
const dockerfile = read(join(DOCKER, 'Dockerfile')).replace(/\\\n/g, ' ');
const GATEWAY_IMAGE = services['gw-1']!.image;
const dockerStages = dockerfile.split(/^FROM /m).slice(1);
/** The image's ENTRYPOINT, e.g. ["node", "dist/gateway/cli.js"]. */
const IMAGE_ENTRYPOINT = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerStages.at(-1)!)![1]!) as string[];

/** Secrets an operator puts in docker/.env (the compose file refuses to start without them). */
const OPERATOR_ENV: Record<string, string> = { POSTGRES_PASSWORD: 'pg-test-password', AUDIT_PSEUDONYM_KEY: 'test-pseudonym-key-0123456789abcdef0123' };

/** Compose's interpolation of `${NAME}`, `${NAME:-default}` and `${NAME:?message}`. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, op?: string, arg?: string) => {
    if (env[name] !== undefined && env[name] !== '') return env[name]!;
    if (op === '-') return arg ?? '';
    throw new Error(`compose would refuse to start: ${name} ${arg ?? 'unset'}`);
  });
}

const environmentOf = (name: string, env = OPERATOR_ENV) =>
  Object.fromEntries(Object.entries(services[name]!.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), env)]));

/** Every `${NAME}` in the string values of a parsed YAML document. */
function referencedVariables(value: unknown, found = new Set<string>()): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(/\$\{([A-Z0-9_]+)\}/g)) found.add(m[1]!);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) referencedVariables(v, found);
  return found;
}

const flag = (args: string[] | undefined, name: string) => args?.[args.indexOf(name) + 1];

describe('docker/compose.yaml', () => {
  it('runs postgres, redis, the four simulators, two gateways and a load balancer', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'gw-1', 'gw-2', 'lb', ...AGENCIES.map((a) => `sim-${a}`)]));
    expect(services.postgres!.image).toMatch(/^postgres:/);
    expect(services.redis!.image).toMatch(/^redis:/);
    expect(services.lb!.image).toMatch(/^nginx:/);
    expect(services.lb!.ports).toEqual([expect.stringMatching(/:8080$/)]);
  });

  it('runs each agency simulator from the gateway image with `simulate <agency>` on all interfaces', () => {
    for (const agency of AGENCIES) {
      const sim = services[`sim-${agency}`]!;
      expect(sim.image, agency).toBe(GATEWAY_IMAGE);
      expect(sim.command!.slice(0, 2)).toEqual(['simulate', agency]);
      expect(flag(sim.command, '--host')).toBe('0.0.0.0');
      // Its healthcheck probes the port it listens on (the image's own HEALTHCHECK is the gateway's).
      expect(sim.healthcheck!.test!.join(' ')).toContain(`127.0.0.1:${flag(sim.command, '--port')}/_simulator/healthz`);
      expect(Object.keys(sim.environment!)).toEqual(expect.arrayContaining([`SIMULATOR_${agency.toUpperCase()}_LATENCY_MS`, `SIMULATOR_${agency.toUpperCase()}_FAILURE_RATE`]));
    }
  });

  it('runs two gateway instances with their own instance ids, sharing PostgreSQL, Redis, the signing key and the pseudonym key', () => {
    const [gw1, gw2] = [services['gw-1']!, services['gw-2']!];
    expect(gw2.image).toBe(GATEWAY_IMAGE);
    const [env1, env2] = [environmentOf('gw-1'), environmentOf('gw-2')];
    expect(env1.GATEWAY_INSTANCE_ID).toBe('gw-1');
    expect(env2.GATEWAY_INSTANCE_ID).toBe('gw-2');
    for (const shared of ['AUDIT_POSTGRES_URL', 'REDIS_URL', 'AUDIT_PSEUDONYM_KEY']) expect(env1[shared], shared).toBe(env2[shared]);
    expect(new URL(env1.AUDIT_POSTGRES_URL!).hostname).toBe('postgres');
    expect(new URL(env1.REDIS_URL!).hostname).toBe('redis');
    expect(env1.AUDIT_PSEUDONYM_KEY).toBe(OPERATOR_ENV.AUDIT_PSEUDONYM_KEY);
    expect(gw1.volumes).toEqual(gw2.volumes);
    expect(gw1.volumes).toContain('gateway-keys:/etc/gateway/keys:ro');
    expect(gw1.volumes).toContain('./gateway.config.yaml:/etc/gateway/gateway.config.yaml:ro');
  });

  it('refuses to start without the operator secrets', () => {
    expect(() => environmentOf('gw-1', { POSTGRES_PASSWORD: 'x' })).toThrow(/AUDIT_PSEUDONYM_KEY/);
    expect(() => environmentOf('postgres', {})).toThrow(/POSTGRES_PASSWORD/);
  });

  it('orders start-up with depends_on conditions the dependencies can meet', () => {
    const conditions = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        const target = services[dependency];
        expect(target, `${name} depends on ${dependency}`).toBeDefined();
        expect(conditions.has(condition), `${name} → ${dependency}: ${condition}`).toBe(true);
        if (condition === 'service_healthy') expect(target!.healthcheck?.test, `${dependency} has a healthcheck`).toBeDefined();
        if (condition === 'service_completed_successfully') expect(target!.restart, `${dependency} runs once`).toBe('no');
      }
    }
    for (const gw of ['gw-1', 'gw-2']) {
      expect(services[gw]!.depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' }, keygen: { condition: 'service_completed_successfully' },
        ...Object.fromEntries(AGENCIES.map((a) => [`sim-${a}`, { condition: 'service_healthy' }])),
      });
      expect(services[gw]!.healthcheck!.test!.join(' ')).toContain('/readyz');
    }
    expect(services.lb!.depends_on).toEqual({ 'gw-1': { condition: 'service_healthy' }, 'gw-2': { condition: 'service_healthy' } });
  });

  it('references only paths that exist: build context, Dockerfile, mounted files', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) {
        const context = resolve(DOCKER, service.build.context);
        expect(statSync(context).isDirectory(), `${name} build context`).toBe(true);
        expect(existsSync(resolve(context, service.build.dockerfile)), `${name} Dockerfile`).toBe(true);
        expect(existsSync(join(context, '.dockerignore')), '.dockerignore at the context root').toBe(true);
      }
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source!.startsWith('.') || source!.startsWith('/')) expect(existsSync(resolve(DOCKER, source!)), `${name}: ${volume}`).toBe(true);
        else expect(compose.volumes, `${name}: named volume ${source}`).toHaveProperty(source!);
      }
    }
  });

  it('balances round robin over both gateway instances', () => {
    expect(services.lb!.volumes).toContain('./nginx.conf:/etc/nginx/nginx.conf:ro');
    const nginx = read(join(DOCKER, 'nginx.conf'));
    const upstream = /upstream gateway \{([^}]*)\}/.exec(nginx)?.[1] ?? '';
    expect(upstream).toMatch(/server gw-1:8080\b/);
    expect(upstream).toMatch(/server gw-2:8080\b/);
    expect(upstream).not.toMatch(/\b(ip_hash|least_conn|hash|random)\b/);
    expect(nginx).toMatch(/proxy_pass http:\/\/gateway;/);
    // Audit searches put personal ids in the query string: the access log writes the path only.
    expect(nginx).not.toMatch(/log_format[^;]*\$request[ "]/);
    expect(nginx).not.toMatch(/log_format[^;]*\$(request_uri|args|query_string)/);
  });
});

/** Minimal .dockerignore semantics: globs against the context path, last match wins, `!` re-includes. */
function dockerIgnored(path: string, patterns: string[]): boolean {
  let ignored = false;
  for (const line of patterns) {
    const negate = line.startsWith('!');
    const glob = negate ? line.slice(1) : line;
    const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*\*/g, '.*').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

describe('docker/Dockerfile', () => {
  const stages = dockerStages;
  const runtime = stages.at(-1)!;
  const instructions = (stage: string, name: string) => [...stage.matchAll(new RegExp(`^${name} (.*)$`, 'gm'))].map((m) => m[1]!.trim());

  it('builds in a stage with a compiler and runs node:20-bookworm-slim without dev dependencies', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    for (const stage of stages) expect(stage).toMatch(/^\$\{NODE_IMAGE\} AS \w+/);
    const build = stages[0]!;
    for (const pkg of ['python3', 'make', 'g++']) expect(build).toMatch(new RegExp(`apt-get install[^\\n]*\\s${pkg.replace('+', '\\+')}(\\s|$)`, 'm'));
    expect(build).toMatch(/RUN npm ci\b/);
    expect(build).toMatch(/RUN npm prune --omit=dev/);
    expect(runtime).toMatch(/COPY --from=build \/app\/node_modules/);
    expect(runtime).not.toMatch(/g\+\+|npm (ci|install)/);
  });

  it('compiles with `npm run build` before pruning the dev dependencies, and runs only dist/', () => {
    const build = stages[0]!;
    const [ci, compile, prune] = [/RUN npm ci\b/, /^RUN npm run build$/m, /RUN npm prune --omit=dev/].map((re) => build.search(re));
    expect(compile).toBeGreaterThan(ci!);
    expect(prune).toBeGreaterThan(compile!);
    // The runtime stage takes code from the build stage only: no TypeScript sources, no loader.
    expect(instructions(runtime, 'COPY')).toEqual(expect.arrayContaining(['--from=build /app/dist ./dist']));
    for (const copy of instructions(runtime, 'COPY')) expect(copy, copy).toMatch(/^--from=build /);
    expect(IMAGE_ENTRYPOINT).toEqual(['node', '--max-semi-space-size=8', '--max-old-space-size=128', 'dist/gateway/cli.js']);
    for (const [name, service] of Object.entries(services)) expect((service.entrypoint ?? []).join(' '), name).not.toMatch(/tsx|\.ts\b/);
  });

  it('needs neither tsx nor TypeScript at run time: both are dev dependencies, which npm ci still installs', () => {
    const pkg = JSON.parse(read(join(ROOT, 'package.json')));
    for (const dev of ['tsx', 'typescript']) {
      expect(pkg.devDependencies, dev).toHaveProperty(dev);
      expect(pkg.dependencies, dev).not.toHaveProperty(dev);
    }
    expect(pkg.scripts.build).toBeDefined();
  });

  it('runs as a non-root user with a /readyz HEALTHCHECK and the gateway entrypoint', () => {
    const user = instructions(runtime, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const healthcheck = instructions(runtime, 'HEALTHCHECK').join(' ');
    expect(healthcheck).toContain('/readyz');
    expect(healthcheck).toContain('fetch(');
    expect(JSON.parse(instructions(runtime, 'ENTRYPOINT')[0]!)).toEqual(['node', '--max-semi-space-size=8', '--max-old-space-size=128', 'dist/gateway/cli.js']);
    const cmd = JSON.parse(instructions(runtime, 'CMD')[0]!);
    expect(cmd).toEqual(['start', '--config', '/etc/gateway/gateway.config.yaml']);
    // The file compose mounts is the one the default command reads.
    expect(services['gw-1']!.volumes).toContain(`./gateway.config.yaml:${cmd[2]}:ro`);
  });

  it('copies sources that exist and that .dockerignore leaves in the context', () => {
    const ignore = read(join(ROOT, '.dockerignore')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources = stages.flatMap((s) => instructions(s, 'COPY')).filter((c) => !c.startsWith('--from')).flatMap((c) => c.replace(/--\S+\s+/g, '').split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['gateway', 'adapters', 'contracts', 'package-lock.json', 'tsconfig.build.json', 'scripts', 'docker/keygen.ts']));
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(dockerIgnored(source, ignore), `${source} is in the build context`).toBe(false);
    }
    for (const excluded of ['node_modules', 'dist', '.data', 'test', '.git', 'docker/compose.yaml']) expect(dockerIgnored(excluded, ignore), excluded).toBe(true);
  });
});

describe('npm run build (the dist/ the image runs)', () => {
  const DIST = join(ROOT, 'dist');
  const filesUnder = (dir: string): string[] => (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));

  beforeAll(() => ensureBuilt());

  it('compiles every module and leaves no .ts specifier behind, static or dynamic', () => {
    for (const tree of ['gateway', 'adapters']) {
      for (const file of filesUnder(join(ROOT, tree)).filter((f) => f.endsWith('.ts'))) {
        const compiled = join(DIST, tree, file.replace(/\.ts$/, '.js'));
        expect(existsSync(compiled), compiled).toBe(true);
        expect(read(compiled), compiled).not.toMatch(/(from\s*|import\s*\(\s*)['"]\.{1,2}\/[^'"]*\.ts['"]/);
      }
    }
    expect(existsSync(join(DIST, 'docker', 'keygen.js'))).toBe(true);
  });

  it('puts the files the code reads beside itself where it looks for them', () => {
    // Console assets, the audit store's worker scripts: every non-TypeScript file of the sources
    // (type declarations such as .d.mts are TypeScript: nothing reads them at run time).
    for (const tree of ['gateway', 'adapters']) {
      for (const file of filesUnder(join(ROOT, tree)).filter((f) => !/\.[cm]?ts$/.test(f))) {
        expect(read(join(DIST, tree, file)), `${tree}/${file}`).toBe(read(join(ROOT, tree, file)));
      }
    }
    for (const file of filesUnder(join(ROOT, 'contracts'))) expect(read(join(DIST, 'contracts', file)), file).toBe(read(join(ROOT, 'contracts', file)));
    const pkg = JSON.parse(read(join(ROOT, 'package.json')));
    expect(JSON.parse(read(join(DIST, 'package.json')))).toMatchObject({ type: 'module', version: pkg.version });
  });
});

describe('docker/gateway.config.yaml', () => {
  const knownServices = grantableServices();

  it('needs only variables the compose file gives both gateways', () => {
    const needed = referencedVariables(rawConfig);
    expect(needed.size).toBeGreaterThan(0);
    for (const gw of ['gw-1', 'gw-2']) for (const name of needed) expect(environmentOf(gw), `${gw} sets ${name}`).toHaveProperty(name);
  });

  it('validates with the config loader, as gw-1 would start with it', () => {
    const env = environmentOf('gw-1');
    const cfg = parseConfig(rawConfig, { env, knownServices });
    expect(cfg.instanceId).toBe('gw-1');
    expect(cfg.listen.host).toBe('0.0.0.0');
    expect(cfg.audit).toMatchObject({ store: 'postgres', postgresUrl: env.AUDIT_POSTGRES_URL, pseudonymKey: OPERATOR_ENV.AUDIT_PSEUDONYM_KEY });
    expect(cfg.redis?.url).toBe(env.REDIS_URL);
    expect(cfg.signing.privateJwkFile).toMatch(/^\/etc\/gateway\/keys\//);
    expect(cfg.upstreams.tax.clientSecret).toBe(env.TAX_CLIENT_SECRET);
  });

  it('stops the start, naming the key path, when a secret is missing', () => {
    const { AUDIT_PSEUDONYM_KEY: _missing, ...env } = environmentOf('gw-1');
    expect(() => parseConfig(rawConfig, { env, knownServices })).toThrow(ConfigError);
    expect(() => parseConfig(rawConfig, { env, knownServices })).toThrow(/^\/audit\/pseudonymKey/);
  });

  it('points every upstream at its simulator service and port', () => {
    for (const agency of AGENCIES) {
      const url = new URL(rawConfig.upstreams[agency].url);
      const sim = services[url.hostname];
      expect(sim, `${agency} upstream host ${url.hostname}`).toBeDefined();
      expect(sim!.command!.slice(0, 2)).toEqual(['simulate', agency]);
      expect(url.port).toBe(flag(sim!.command, '--port'));
    }
  });

  it('takes client and identity provider keys from the agency-jwks service', () => {
    const urls = [...rawConfig.clients.map((c: { keys: { jwksUrl?: string } }) => c.keys.jwksUrl), rawConfig.identityProvider.jwksUrl];
    for (const url of urls) expect(new URL(url).hostname, url).toBe('agency-jwks');
    expect(services['agency-jwks']!.volumes).toContain('public-jwks:/usr/share/nginx/html:ro');
  });
});

describe('docker/keygen.ts (the keygen service)', () => {
  let dir: string;
  // The service's entrypoint as compose runs it, from the compiled build; the volumes become temp dirs.
  const run = () => {
    const [node, ...args] = services.keygen!.entrypoint!;
    expect(node).toBe('node');
    return promisify(execFile)(process.execPath, [...args, ...services.keygen!.command!.map((p) => join(dir, p))], { cwd: ROOT });
  };
  const readJson = (file: string) => JSON.parse(read(file));

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'gw-keygen-'));
    await run();
  });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('is what the compose keygen service runs, into the volumes the others mount', () => {
    expect(services.keygen!.entrypoint).toEqual(['node', 'dist/docker/keygen.js']);
    expect(services.keygen!.command).toEqual(['/etc/gateway/keys', '/srv/jwks', '/srv/demo-clients']);
    expect(services.keygen!.volumes).toEqual(['gateway-keys:/etc/gateway/keys', 'public-jwks:/srv/jwks', 'demo-clients:/srv/demo-clients']);
    for (const gw of ['gw-1', 'gw-2']) expect((services[gw]!.volumes ?? []).some((v) => v.startsWith('demo-clients:')), `${gw} never sees client private keys`).toBe(false);
  });

  it('writes the signing key the config names and a published JWKS for every key the config fetches', () => {
    const signing = join(dir, '/etc/gateway/keys', basename(rawConfig.signing.privateJwkFile));
    expect(readJson(signing)).toHaveProperty('d');
    expect(statSync(signing).mode & 0o077).toBe(0);
    const urls: string[] = [...rawConfig.clients.map((c: { keys: { jwksUrl: string } }) => c.keys.jwksUrl), rawConfig.identityProvider.jwksUrl];
    for (const url of urls) {
      const file = basename(new URL(url).pathname);
      const jwks = readJson(join(dir, '/srv/jwks', file));
      const holder = file.replace(/\.jwks\.json$/, '');
      const privateJwk = readJson(join(dir, '/srv/demo-clients', `${holder}.private.jwk.json`)) as JWK;
      expect(jwks, file).toEqual({ keys: [publicPart(privateJwk)] });
      expect(jwks.keys[0]).not.toHaveProperty('d');
    }
  });

  it('keeps existing keys when run again', async () => {
    const file = join(dir, '/srv/jwks/portal.jwks.json');
    const before = read(file);
    await run();
    expect(read(file)).toBe(before);
  });
});

describe('gateway simulate (the simulator containers\' command)', () => {
  beforeAll(() => ensureBuilt());

  /** Starts `gateway simulate` through the image's entrypoint (the compiled CLI); resolves with its URL once it says it is listening. */
  function simulate(args: string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, [...IMAGE_ENTRYPOINT.slice(1), 'simulate', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const url = new Promise<string>((done, fail) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) done(m[1]!);
      });
      void exited.then((code) => fail(new Error(`simulate exited with ${code}`)));
    });
    url.catch(() => {}); // a start that fails is awaited through `exited`
    return { child, url, exited };
  }

  it('serves one agency with the faults its environment stages, and stops on SIGTERM', async () => {
    const sim = simulate(['population', '--port', '0', '--host', '127.0.0.1'], { SIMULATOR_POPULATION_FAILURE_RATE: '1' });
    try {
      const url = await sim.url;
      const health = await fetch(`${url}/_simulator/healthz`);
      expect(await health.json()).toEqual({ status: 'ok', agency: 'population' });
      const lookup = await fetch(`${url}/api/v1/cong-dan/tra-cuu`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ soDinhDanh: '001085123456' }) });
      expect(lookup.status).toBe(503);
    } finally {
      sim.child.kill('SIGTERM');
    }
    expect(await sim.exited).toBe(0);
  });

  it('refuses an unknown agency and a bad fault setting with a usage error', async () => {
    expect(await simulate(['nowhere']).exited).toBe(64);
    expect(await simulate(['land'], { SIMULATOR_LAND_FAILURE_RATE: '2' }).exited).toBe(64);
  });
});
