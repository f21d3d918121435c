/**
 * Config reload without a restart (SIGHUP, `gateway reload`).
 *
 * What a config decides per request (clients and their keys, purposes, grants, forms, consent's
 * issuer, limits, log level, console accounts) is built into one *generation*: the authenticator,
 * authorizer, consent verifier, operations, pipeline and routes of that config (server.ts,
 * `serveConfig`). The server hands each request to the generation current when it arrives, so a
 * request finishes with the config it started with, and a reload swaps one reference: the next
 * request sees the new clients and grants, and nothing cached (keys, grants) keeps a removed
 * client or a withdrawn grant alive.
 *
 * What the process was built on at start (listen address, dataDir, instanceId, the audit store,
 * Redis, the upstreams, signing, time-stamping) cannot change while it runs: a reload that changes
 * any of it is refused whole, naming the first such key, and the old config keeps serving. An
 * operator who edits an upstream's URL and a grant together learns that the restart is needed,
 * rather than believing both took effect.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from './audit/entry.ts';
import { ConfigError } from './config/errors.ts';
import type { GatewayConfig } from './config/types.ts';
import type { SigningKeys } from './key-set.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

/** The top-level keys a reload applies to new requests; every other key is fixed at start. */
export const RUNTIME_KEYS: readonly (keyof GatewayConfig)[] = [
  'logLevel', 'limits', 'trustProxy', 'identityProvider', 'clients', 'clientKeys', 'purposes', 'grants', 'forms', 'console',
];

/** A config generation's identity: 1 at start, one more per reload applied, and the hash of what it holds. */
export interface ConfigGeneration { generation: number; hash: string }

/** The first 16 hex digits of the SHA-256 of the config's RFC 8785 JSON: equal configs, equal hashes, on every instance. */
export const configHash = (cfg: GatewayConfig): string => sha256Hex(Buffer.from(canonicalJson(cfg))).slice(0, 16);

const escape = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** The JSON pointer of the first difference between two values, or null when they are equal. */
function firstDifference(a: unknown, b: unknown, path: string): string | null {
  if (a === b) return null;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}/${escape(k)}`);
      if (d) return d;
    }
    return null;
  }
  return path || '/';
}

/** Refuses a config that changes a key fixed at start, naming it. */
export function checkFixedKeys(running: GatewayConfig, next: GatewayConfig): void {
  const keys = new Set([...Object.keys(running), ...Object.keys(next)] as (keyof GatewayConfig)[]);
  for (const key of keys) {
    if (RUNTIME_KEYS.includes(key)) continue;
    const path = firstDifference(running[key], next[key], `/${escape(key)}`);
    if (path) throw new ConfigError(`${path}: cannot change while the gateway runs (restart it to apply; the running config is kept)`);
  }
}

/** The top-level keys whose values differ (what a reload changed, for its log line). */
export const changedKeys = (a: GatewayConfig, b: GatewayConfig): string[] =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => firstDifference(a[k as keyof GatewayConfig], b[k as keyof GatewayConfig], '') !== null);

/** The files a running gateway keeps under its dataDir for `gateway reload`: its pid, and the outcome of its last reload. */
export function runFiles(dataDir: string) {
  return { pid: join(dataDir, 'gateway.pid'), status: join(dataDir, 'gateway.reload.json') };
}

/** What the last reload came to, as `gateway reload` reads it. */
export interface ReloadStatus { pid: number; attempt: number; ok: boolean; generation: number; hash: string; error?: string; time: string }

function writeJsonAtomically(file: string, value: unknown) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value) + '\n');
  renameSync(tmp, file);
}

/** Written once listening; removed at shutdown, and only if it is still this process's. */
export function writePidFile(dataDir: string): () => void {
  const { pid } = runFiles(dataDir);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(pid, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(pid, 'utf8').trim() === String(process.pid)) rmSync(pid);
    } catch {
      // Already gone.
    }
  };
}

/** What a reload works on: the running gateway's swap (server.ts) and a fresh read of the same config. */
export interface Reloadable {
  readonly generation: ConfigGeneration;
  /** The signing key set, re-read on a reload too (a rotation made elsewhere). */
  signingKeys: Pick<SigningKeys, 'reload'>;
  /** Swaps in a validated config for new requests; throws ConfigError for a key fixed at start. */
  reload(next: GatewayConfig): ConfigGeneration & { changed: string[] };
  logger: Logger;
  metrics: Metrics;
}

/**
 * The reload a signal asks for: the signing keys re-read, then the config file (and the
 * environment) read and validated by the one loader, as at start; a valid one swapped in, an
 * invalid one refused with its key path in one error line, the old config serving on. Reloads run
 * one at a time; each one's outcome goes to the status file for `gateway reload`.
 */
export function createReloader(gateway: Reloadable, load: () => Promise<GatewayConfig>, statusFile?: string) {
  let attempt = 0;
  let queue: Promise<void> = Promise.resolve();
  const once = async (trigger: string) => {
    attempt++;
    const time = new Date().toISOString();
    // Keys first: a config with a mistake must not hold back a rotation.
    await gateway.signingKeys.reload();
    let status: ReloadStatus;
    try {
      const applied = gateway.reload(await load());
      gateway.metrics.configReloads.inc({ outcome: 'applied' });
      gateway.logger.info({ trigger, generation: applied.generation, hash: applied.hash, changed: applied.changed }, 'config reloaded');
      status = { pid: process.pid, attempt, ok: true, generation: applied.generation, hash: applied.hash, time };
    } catch (e) {
      const error = e instanceof ConfigError ? e.message : `unexpected: ${(e as Error).message}`;
      gateway.metrics.configReloads.inc({ outcome: 'refused' });
      gateway.logger.error({ trigger, error, ...(e instanceof ConfigError ? {} : { err: e }), ...gateway.generation }, `config reload refused: ${error}`);
      status = { pid: process.pid, attempt, ok: false, ...gateway.generation, error, time };
    }
    if (statusFile) writeJsonAtomically(statusFile, status);
  };
  return {
    reload(trigger: string): Promise<void> {
      queue = queue.then(() => once(trigger), () => once(trigger));
      return queue;
    },
  };
}

export class ReloadRequestError extends Error {}

/**
 * `gateway reload`: signals the gateway whose pid file lies in `dataDir` and waits for the outcome
 * of that reload in its status file (a reload newer than any before the signal).
 */
export async function requestReload(dataDir: string, timeoutMs = 15_000): Promise<ReloadStatus> {
  const files = runFiles(dataDir);
  if (!existsSync(files.pid)) throw new ReloadRequestError(`no running gateway: ${files.pid} does not exist (is it started with this dataDir?)`);
  const pid = Number(readFileSync(files.pid, 'utf8').trim());
  const read = (): ReloadStatus | null => {
    try {
      return JSON.parse(readFileSync(files.status, 'utf8')) as ReloadStatus;
    } catch {
      return null;
    }
  };
  const before = read();
  const after = before?.pid === pid ? before.attempt : 0;
  try {
    process.kill(pid, 'SIGHUP');
  } catch (e) {
    throw new ReloadRequestError(`no running gateway with pid ${pid} (${files.pid}): ${(e as NodeJS.ErrnoException).code}`);
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = read();
    if (status && status.pid === pid && status.attempt > after) return status;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new ReloadRequestError(`gateway ${pid} did not report the reload within ${timeoutMs / 1000} s (see its log)`);
}
