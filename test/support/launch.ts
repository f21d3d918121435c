/**
 * The gateway started as a user starts it (`npm start`, `npx gateway start`, a shell command line),
 * in a process group of its own, on a free port with its own data directory, from the repository.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT } from '../bench/processes.ts';
import { eventually } from './eventually.ts';

/** What the file's afterAll undoes: data directories, and process groups a failed test left running. */
export const cleanups: (() => unknown)[] = [];
export async function runCleanups(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

/**
 * Polls `check` every 50 ms until it returns a value other than undefined; fails after `ms`, or at
 * once with what `check` throws (a process that died will not become ready).
 */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  let failed: { error: unknown } | undefined;
  const value = await eventually(async () => {
    let v: T | undefined;
    try {
      v = await check();
    } catch (error) {
      failed = { error };
      return undefined;
    }
    if (v === undefined) throw new Error(`timed out waiting for ${what}`);
    return v;
  }, { timeoutMs: ms, intervalMs: 50 });
  if (failed) throw failed.error;
  return value!;
}

/** A user's environment: nothing of the surrounding run (npm sets its own lifecycle variables), no config or stores. */
export function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)
    && !['REDIS_URL', 'AUDIT_POSTGRES_URL', 'GATEWAY_CONFIG', 'GATEWAY_INSTANCE_ID', 'NODE_OPTIONS'].includes(k)));
}

export interface Launched {
  child: ChildProcess;
  port: number;
  url: string;
  dataDir: string;
  /** Everything written to stdout and stderr, by the launcher and what it started. */
  output: () => string;
  /** The launcher's exit: its code, or the signal it died of. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stdout and stderr are closed: every process that inherited them has exited. */
  released: Promise<void>;
}

export interface LaunchOptions {
  /** Start again where an earlier launch ran: its port and data directory. */
  port?: number;
  dataDir?: string;
}

/**
 * Starts `command args` in the repository (the embedded demo: its keys are generated in the data
 * directory), in a process group of its own, and waits for /healthz.
 */
export async function launch(command: string, args: string[], options: LaunchOptions = {}): Promise<Launched> {
  let dataDir = options.dataDir;
  if (!dataDir) {
    const fresh = mkdtempSync(join(tmpdir(), 'gw-launch-'));
    cleanups.push(() => rmSync(fresh, { recursive: true, force: true }));
    dataDir = fresh;
  }
  const port = options.port ?? await freePort();
  const child = spawn(command, args, {
    cwd: ROOT, env: { ...userEnv(), PORT: String(port), GATEWAY_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  // Should a test fail halfway: the whole group, launcher and gateway.
  cleanups.push(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } });
  let output = '';
  const closed = [child.stdout!, child.stderr!].map((s) => new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => { output += d.toString(); });
    s.once('close', () => resolve());
  }));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  let gone = false;
  void exit.then(() => { gone = true; });
  const healthy = () => fetch(`${url}/healthz`).then((r) => r.ok, () => false);
  await until(`${command} ${args.join(' ')} to answer /healthz`, async () => {
    if (gone && !(await healthy())) throw new Error(`${command} exited before it was ready:\n${output}`);
    return (await healthy()) || undefined;
  });
  return { child, port, url, dataDir, output: () => output, exit, released: Promise.all(closed).then(() => undefined) };
}
