import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';
import { configSchema } from './schema.ts';
import type { GatewayConfig } from './types.ts';
import { agencyNames } from '../../adapters/index.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** A misuse found at start-up; the message names the exact key path. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const ajv = addFormats(new Ajv2020({ allErrors: true, useDefaults: true, strict: false }));
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

/** Environment variables that steer a running gateway on top of its file (12-factor). */
function applyEnvOverrides(raw: Record<string, any>, env: NodeJS.ProcessEnv): void {
  if (env.PORT) (raw.listen ??= {}).port = Number(env.PORT);
  if (env.GATEWAY_DATA_DIR) raw.dataDir = env.GATEWAY_DATA_DIR;
  if (env.GATEWAY_INSTANCE_ID) raw.instanceId = env.GATEWAY_INSTANCE_ID;
  if (env.LOG_LEVEL) raw.logLevel = env.LOG_LEVEL;
  if (env.AUDIT_POSTGRES_URL) Object.assign((raw.audit ??= {}), { store: 'postgres', postgresUrl: env.AUDIT_POSTGRES_URL });
  if (env.REDIS_URL) raw.redis = { ...(raw.redis ?? {}), url: env.REDIS_URL };
  for (const agency of agencyNames()) {
    const key = agency.toUpperCase();
    const url = env[`UPSTREAM_${key}_URL`];
    if (url) ((raw.upstreams ??= {})[agency] ??= {}).url = url;
    const latency = env[`SIMULATOR_${key}_LATENCY_MS`];
    const failure = env[`SIMULATOR_${key}_FAILURE_RATE`];
    if (latency !== undefined) ((raw.simulators ??= {})[agency] ??= {}).latencyMs = Number(latency);
    if (failure !== undefined) ((raw.simulators ??= {})[agency] ??= {}).failureRate = Number(failure);
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Cross-references the schema cannot express: grants and forms must name known clients, purposes, services. */
function checkReferences(cfg: GatewayConfig, knownServices: ReadonlySet<string>): void {
  const clients = new Set<string>();
  cfg.clients.forEach((c, i) => {
    if (clients.has(c.id)) throw new ConfigError(`/clients/${i}/id: duplicate client id "${c.id}"`);
    clients.add(c.id);
  });
  const purposes = new Set(cfg.purposes.map((p) => p.code));
  cfg.grants.forEach((g, i) => {
    if (!clients.has(g.client)) throw new ConfigError(`/grants/${i}/client: unknown client "${g.client}"`);
    if (!knownServices.has(g.service)) throw new ConfigError(`/grants/${i}/service: unknown service "${g.service}"`);
    g.purposes.forEach((p, j) => {
      if (!purposes.has(p)) throw new ConfigError(`/grants/${i}/purposes/${j}: unknown purpose "${p}"`);
    });
  });
  cfg.forms.forEach((f, i) => f.fields.forEach((field, j) => {
    if (!knownServices.has(field.service)) throw new ConfigError(`/forms/${i}/fields/${j}/service: unknown service "${field.service}"`);
  }));
}

/**
 * Validates a raw config object once: environment substitution, overrides, schema with defaults,
 * cross-references; returns it frozen. Every error names its key path.
 */
export function parseConfig(raw: unknown, options: { env?: NodeJS.ProcessEnv; knownServices: ReadonlySet<string> }): GatewayConfig {
  const env = options.env ?? process.env;
  const substituted = substituteEnv(structuredClone(raw), env, '') as Record<string, any>;
  if (!substituted || typeof substituted !== 'object' || Array.isArray(substituted)) throw new ConfigError('/: config must be an object');
  applyEnvOverrides(substituted, env);
  const validateSchema = schemaValidator();
  if (!validateSchema(substituted)) {
    const e = validateSchema.errors![0]!;
    const where = e.instancePath || '/';
    const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
    throw new ConfigError(`${where}: ${e.message}${extra}`);
  }
  const cfg = substituted as unknown as GatewayConfig;
  checkReferences(cfg, options.knownServices);
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
