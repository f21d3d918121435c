import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';
import { configSchema } from './schema.ts';
import type { GatewayConfig } from './types.ts';
import { agencyNames } from '../../adapters/index.ts';
import { ConfigError } from './errors.ts';
import { checkProduction } from './production.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export { ConfigError };

const ajv = addFormats(new Ajv2020({ allErrors: true, useDefaults: true, strict: false, verbose: true }));
/** The schema compiled for the agencies registered (compiled again only when an agency is added). */
let compiled: { agencies: string; validate: ReturnType<typeof ajv.compile> } | null = null;
function schemaValidator() {
  const names = agencyNames().join(',');
  if (compiled?.agencies !== names) compiled = { agencies: names, validate: ajv.compile(configSchema()) };
  return compiled.validate;
}

/** Replaces `${NAME}` in every string with the environment variable; a missing one is an error at its path. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(`${path}: environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}/${i}`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, `${path}/${k}`)]));
  }
  return value;
}

/**
 * Environment variables that steer a running gateway on top of its file (12-factor). Returns
 * which key path each one set, so an error there names the variable.
 */
function applyEnvOverrides(raw: Record<string, any>, env: NodeJS.ProcessEnv): Map<string, string> {
  const from = new Map<string, string>();
  const set = (variable: string, path: string[], value: unknown) => {
    let node = raw;
    for (const key of path.slice(0, -1)) node = node[key] ??= {};
    node[path.at(-1)!] = value;
    from.set(`/${path.join('/')}`, variable);
  };
  if (env.PORT) set('PORT', ['listen', 'port'], /^\d+$/.test(env.PORT) ? Number(env.PORT) : env.PORT);
  if (env.GATEWAY_DATA_DIR) set('GATEWAY_DATA_DIR', ['dataDir'], env.GATEWAY_DATA_DIR);
  if (env.GATEWAY_INSTANCE_ID) set('GATEWAY_INSTANCE_ID', ['instanceId'], env.GATEWAY_INSTANCE_ID);
  if (env.LOG_LEVEL) set('LOG_LEVEL', ['logLevel'], env.LOG_LEVEL);
  if (env.AUDIT_POSTGRES_URL) {
    set('AUDIT_POSTGRES_URL', ['audit', 'store'], 'postgres');
    set('AUDIT_POSTGRES_URL', ['audit', 'postgresUrl'], env.AUDIT_POSTGRES_URL);
  }
  if (env.REDIS_URL) set('REDIS_URL', ['redis', 'url'], env.REDIS_URL);
  const number = (v: string) => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);
  for (const agency of agencyNames()) {
    const key = agency.toUpperCase().replace(/-/g, '_');
    const url = env[`UPSTREAM_${key}_URL`];
    if (url) set(`UPSTREAM_${key}_URL`, ['upstreams', agency, 'url'], url);
    const latency = env[`SIMULATOR_${key}_LATENCY_MS`];
    const failure = env[`SIMULATOR_${key}_FAILURE_RATE`];
    if (latency !== undefined) set(`SIMULATOR_${key}_LATENCY_MS`, ['simulators', agency, 'latencyMs'], number(latency));
    if (failure !== undefined) set(`SIMULATOR_${key}_FAILURE_RATE`, ['simulators', agency, 'failureRate'], number(failure));
  }
  return from;
}

/** Hints for errors whose fix is not obvious from the schema alone. */
const HINTS: { path: RegExp; keyword: string; hint: string }[] = [
  { path: /^\/console\/accounts\/\d+\/passwordHash$/, keyword: 'pattern', hint: 'must be an scrypt hash (scrypt$N$r$p$salt$hash), never the password itself; make one with `echo \'password\' | npx gateway hash-password`' },
];

/** One schema error as an operator reads it: the key path, the variable that set it, what is allowed. */
function describeError(e: ErrorObject, fromEnv: ReadonlyMap<string, string>): string {
  const where = e.instancePath || '/';
  const variable = fromEnv.get(where);
  const source = variable ? ` (from the environment variable ${variable})` : '';
  const hint = HINTS.find((h) => h.keyword === e.keyword && h.path.test(where))?.hint;
  let what = hint ?? e.message ?? 'invalid';
  if (!hint && e.keyword === 'enum') what = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  if (!hint && e.keyword === 'additionalProperties') what += ` "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  if (!hint && e.keyword === 'type' && e.data !== undefined) what += `, not ${JSON.stringify(e.data)}`;
  return `${where}${source}: ${what}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** A client whose answers are encrypted has its encryption key in its inline JWKS: an EC key (P-256, P-384, P-521) or X25519 with `use: "enc"`. */
function checkEncryptionKey(c: GatewayConfig['clients'][number], i: number): void {
  if (!c.keys.jwks) throw new ConfigError(`/clients/${i}/keys: encryptResponses needs the client's encryption key in keys.jwks (inline); a JWKS URL is not read for it`);
  const keys = c.keys.jwks.keys as { kty?: string; crv?: string; use?: string; alg?: string }[];
  const at = keys.findIndex((k) => k.use === 'enc');
  if (at < 0) throw new ConfigError(`/clients/${i}/keys/jwks/keys: encryptResponses needs a key with "use": "enc" (ECDH-ES+A256KW)`);
  const k = keys[at]!;
  const usable = (k.kty === 'EC' && ['P-256', 'P-384', 'P-521'].includes(k.crv ?? '')) || (k.kty === 'OKP' && k.crv === 'X25519');
  if (!usable || (k.alg !== undefined && k.alg !== 'ECDH-ES+A256KW')) throw new ConfigError(`/clients/${i}/keys/jwks/keys/${at}: an encryption key must be EC (P-256, P-384, P-521) or OKP X25519, for ECDH-ES+A256KW`);
}

/** Cross-references the schema cannot express: grants and forms must name known clients, purposes, services. */
function checkReferences(cfg: GatewayConfig, localServices: ReadonlySet<string>, fieldGroups?: ReadonlyMap<string, readonly string[]>): void {
  // Services pinned from remote gateways (federation) may be granted too; their contracts are checked at start.
  const knownServices = new Set([...localServices, ...Object.values(cfg.upstreams).flatMap((u) => u?.gateway?.services.map((s) => s.service) ?? [])]);
  const clients = new Set<string>();
  cfg.clients.forEach((c, i) => {
    if (clients.has(c.id)) throw new ConfigError(`/clients/${i}/id: duplicate client id "${c.id}"`);
    clients.add(c.id);
    if (c.encryptResponses) checkEncryptionKey(c, i);
  });
  const purposes = new Set(cfg.purposes.map((p) => p.code));
  cfg.grants.forEach((g, i) => {
    if (!clients.has(g.client)) throw new ConfigError(`/grants/${i}/client: unknown client "${g.client}"`);
    if (!knownServices.has(g.service)) throw new ConfigError(`/grants/${i}/service: unknown service "${g.service}"`);
    g.purposes.forEach((p, j) => {
      if (!purposes.has(p)) throw new ConfigError(`/grants/${i}/purposes/${j}: unknown purpose "${p}"`);
    });
    const declared = fieldGroups?.get(g.service);
    if (declared) g.fieldGroups.forEach((group, j) => {
      if (!declared.includes(group)) throw new ConfigError(`/grants/${i}/fieldGroups/${j}: "${group}" is not a field group of ${g.service} (${declared.join(', ') || 'it has none'})`);
    });
  });
  cfg.forms.forEach((f, i) => f.fields.forEach((field, j) => {
    if (!knownServices.has(field.service)) throw new ConfigError(`/forms/${i}/fields/${j}/service: unknown service "${field.service}"`);
    const declared = fieldGroups?.get(field.service);
    if (declared && !declared.includes(field.fieldGroup)) throw new ConfigError(`/forms/${i}/fields/${j}/fieldGroup: "${field.fieldGroup}" is not a field group of ${field.service} (${declared.join(', ')})`);
  }));
}

/**
 * Validates a raw config object once: environment substitution, overrides, schema with defaults,
 * cross-references; returns it frozen. Every error names its key path.
 */
export function parseConfig(raw: unknown, options: {
  env?: NodeJS.ProcessEnv;
  knownServices: ReadonlySet<string>;
  /** The field groups each service's contract declares: grants and forms may name only these. */
  fieldGroups?: ReadonlyMap<string, readonly string[]>;
}): GatewayConfig {
  const env = options.env ?? process.env;
  const substituted = substituteEnv(structuredClone(raw), env, '') as Record<string, any>;
  if (!substituted || typeof substituted !== 'object' || Array.isArray(substituted)) throw new ConfigError('/: config must be an object');
  const fromEnv = applyEnvOverrides(substituted, env);
  const validateSchema = schemaValidator();
  if (!validateSchema(substituted)) throw new ConfigError(describeError(validateSchema.errors![0]!, fromEnv));
  const cfg = substituted as unknown as GatewayConfig;
  checkReferences(cfg, options.knownServices, options.fieldGroups);
  if (cfg.mode === 'production') checkProduction(cfg);
  return deepFreeze(cfg);
}

/** Reads a JSON or YAML config file. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    return /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
  }
}
