import { resolve } from 'node:path';
import { parseConfig, readConfigFile, ConfigError } from './load.ts';
import { demoConfig } from './demo.ts';
import { grantableFieldGroups, grantableServices } from '../services/index.ts';
import type { GatewayConfig } from './types.ts';

export { ConfigError, parseConfig, readConfigFile } from './load.ts';
export { configSchema } from './schema.ts';
export { demoConfig, hashPassword, demoConsolePassword, DEMO_GATEWAY_ID, DEMO_IDP_ISSUER, DEMO_CLIENTS, DEMO_PURPOSES, DEMO_FORMS } from './demo.ts';
export * from './types.ts';

/**
 * The config a process runs with: the file named by --config or GATEWAY_CONFIG, else the
 * embedded demo (keys generated under GATEWAY_DATA_DIR, default ./.data).
 */
export async function resolveConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ config: GatewayConfig; demo: boolean }> {
  const env = options.env ?? process.env;
  const file = options.file ?? env.GATEWAY_CONFIG;
  const checks = { env, knownServices: grantableServices(), fieldGroups: grantableFieldGroups() };
  if (file) return { config: parseConfig(readConfigFile(resolve(file)), checks), demo: false };
  const raw = await demoConfig(env.GATEWAY_DATA_DIR ?? './.data');
  return { config: parseConfig(raw, checks), demo: true };
}

export const isConfigError = (e: unknown): e is ConfigError => e instanceof ConfigError;
