/**
 * Signals reach the gateway however it was started: `npm start`, `npx gateway start` and the
 * compiled build run directly (`node dist/gateway/cli.js start`, as systemd and the image run it).
 * Each is started as a user would, on a free port with its own data directory, answers a few
 * signed requests, and is sent SIGTERM or SIGINT (to the launcher's pid, or to its whole process
 * group as a terminal's Ctrl-C does). Then: the launcher has exited, every process holding its
 * output has exited, the port can be bound again, the log has exactly one "shutdown complete"
 * line, and the audit store's last signed checkpoint is its head.
 *
 * Also: the systemd unit (docker/gateway.service) runs what the build produces.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { world } from '../adapters/world/index.ts';
import { createSqliteStore, verifyChain } from '../gateway/audit/index.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { DEMO_GATEWAY_ID } from '../gateway/config/index.ts';
import { keyPairFromJwk, loadOrCreatePrivateJwk } from '../gateway/keys.ts';
import { createSigner } from '../gateway/signing.ts';
import { ensureBuilt, imageEntrypoint, ROOT } from './bench/processes.ts';
import { cleanups, launch, runCleanups, until, type Launched } from './support/launch.ts';

const CALLS = 3;
afterAll(runCleanups);

/** CALLS signed lookups as the demo portal; each one answered 200 is one audit entry. */
async function callAsPortal(g: Launched) {
  const privateJwk = JSON.parse(readFileSync(join(g.dataDir, 'demo', 'portal.private.jwk.json'), 'utf8'));
  for (const citizen of world().citizens.slice(0, CALLS)) {
    const body = JSON.stringify({ personalId: citizen.personalId });
    const token = await mintAssertion({ privateJwk, iss: 'portal', aud: DEMO_GATEWAY_ID, purpose: 'PUBLIC_SERVICE_PREFILL', body });
    const res = await fetch(`${g.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body });
    expect(res.status).toBe(200);
    expect((await res.json()).fullName).toBe(citizen.fullName);
  }
}

/** Whether a new server can listen on the port now. */
const portFree = (port: number) => new Promise<boolean>((resolve) => {
  const server = createServer();
  server.once('error', () => resolve(false));
  server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
});

const logLines = (output: string) => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);

/** The audit store as left on disk: head, last checkpoint, and the chain verified under the gateway's key. */
async function auditStoreOf(dataDir: string) {
  const store = createSqliteStore(join(dataDir, 'audit.sqlite'));
  try {
    const signer = createSigner(await keyPairFromJwk(await loadOrCreatePrivateJwk(join(dataDir, 'keys', 'gateway.private.jwk.json'), 'ES256')));
    const checkpoints = await store.checkpoints();
    return { head: await store.head(), lastCheckpoint: checkpoints.at(-1), report: await verifyChain(store.scan(), checkpoints, signer.jwks) };
  } finally {
    await store.close();
  }
}

/** Sends the signal, then checks everything a supervisor relies on; returns the completion line. */
async function stopAndCheck(g: Launched, signal: NodeJS.Signals, to: 'launcher' | 'group') {
  process.kill(to === 'group' ? -g.child.pid! : g.child.pid!, signal);
  const exit = await until('the launcher to exit', () => Promise.race([g.exit, new Promise<undefined>((r) => setTimeout(r, 100, undefined))]));
  await until('the gateway to exit (its output closed)', () => Promise.race([g.released.then(() => true), new Promise<undefined>((r) => setTimeout(r, 100, undefined))]));
  expect(await until('the port to be free', async () => (await portFree(g.port)) || undefined, 10_000)).toBe(true);

  const completions = logLines(g.output()).filter((l) => l.msg === 'shutdown complete');
  expect(completions, g.output()).toHaveLength(1);
  const done = completions[0]!;
  const { head, lastCheckpoint, report } = await auditStoreOf(g.dataDir);
  expect(head.seq).toBe(CALLS);
  expect(lastCheckpoint?.seq).toBe(head.seq);
  expect(lastCheckpoint?.hash).toBe(head.hash);
  expect(report).toMatchObject({ ok: true, entries: CALLS, lastCheckpoint: { seq: CALLS } });
  expect(done).toMatchObject({ headSeq: CALLS, checkpointSeq: CALLS });
  expect(logLines(g.output()).some((l) => l.level === 'error'), g.output()).toBe(false);
  return { exit, done };
}

describe('signals reach the gateway', () => {
  it.each([
    ['SIGTERM to npm: npm exits 0 after the gateway drained, committed and checkpointed', 'SIGTERM', 'launcher'],
    ['SIGINT to npm: the same', 'SIGINT', 'launcher'],
    ['Ctrl-C (SIGINT to the process group, so the gateway gets it twice): one shutdown, exit 0', 'SIGINT', 'group'],
  ] as const)('npm start, %s', async (_how, signal, to) => {
    const g = await launch('npm', ['start']);
    await callAsPortal(g);
    const { exit, done } = await stopAndCheck(g, signal, to);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(done).toMatchObject({ signal });
  }, 90_000);

  it('npx gateway start, SIGTERM to npx: the shell npx put in between dies of it, the gateway sees its launcher gone and shuts down', async () => {
    const g = await launch('npx', ['gateway', 'start']);
    await callAsPortal(g);
    const { done } = await stopAndCheck(g, 'SIGTERM', 'launcher');
    expect(done).toMatchObject({ reason: 'launcher exited' });
  }, 90_000);

  it('npx gateway start, Ctrl-C: the gateway gets SIGINT itself', async () => {
    const g = await launch('npx', ['gateway', 'start']);
    await callAsPortal(g);
    const { done } = await stopAndCheck(g, 'SIGINT', 'group');
    expect(done).toMatchObject({ signal: 'SIGINT' });
  }, 90_000);

  it('node dist/gateway/cli.js start (the compiled build, as systemd runs it), SIGTERM: exit 0', async () => {
    ensureBuilt();
    const g = await launch(process.execPath, ['dist/gateway/cli.js', 'start']);
    await callAsPortal(g);
    const { exit, done } = await stopAndCheck(g, 'SIGTERM', 'launcher');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(done).toMatchObject({ signal: 'SIGTERM' });
  }, 90_000);
});

/** The unit's [Service] (or other section's) keys; repeated keys collect their values. */
function unitSection(text: string, section: string): Record<string, string[]> {
  const keys: Record<string, string[]> = {};
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) { current = header[1]!; continue; }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    (keys[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return keys;
}

describe('docker/gateway.service', () => {
  const unitFile = join(ROOT, 'docker', 'gateway.service');
  const unit = readFileSync(unitFile, 'utf8');
  const service = unitSection(unit, 'Service');
  const one = (key: string) => {
    expect(service[key], key).toHaveLength(1);
    return service[key]![0]!;
  };

  it('runs the compiled build with the image\'s node flags: the script ExecStart names exists after npm run build', () => {
    ensureBuilt();
    const [node, ...argv] = one('ExecStart').split(/\s+/);
    expect(isAbsolute(node!)).toBe(true);
    const start = argv.indexOf('start');
    const script = argv[start - 1]!;
    expect(isAbsolute(script)).toBe(false); // relative to WorkingDirectory, the installed repository
    expect(existsSync(join(ROOT, script))).toBe(true);
    const [, ...imageArgs] = imageEntrypoint();
    expect(argv.slice(0, start)).toEqual(imageArgs);
    expect(argv.slice(start)).toEqual(['start', '--config', '/etc/gateway/gateway.config.yaml']);
    expect(isAbsolute(one('WorkingDirectory'))).toBe(true);
  });

  it('stops with SIGTERM, gives the drain time, restarts on failure only, as its own user', () => {
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('Restart')).toBe('on-failure');
    expect(Number.parseInt(one('TimeoutStopSec'), 10)).toBeGreaterThanOrEqual(10);
    expect(one('User')).not.toBe('root');
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(4096);
    expect(one('EnvironmentFile')).toMatch(/^\/etc\/gateway\//);
  });

  it('is hardened, and the data directory of the production config is its one writable path', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    const { dataDir } = YAML.parse(readFileSync(join(ROOT, 'docker', 'gateway.config.yaml'), 'utf8')) as { dataDir: string };
    expect(one('ReadWritePaths').split(/\s+/)).toEqual([dataDir]);
    expect(service.Environment).toContain(`GATEWAY_DATA_DIR=${dataDir}`);
  });

  it('passes systemd-analyze verify where systemd is installed', async () => {
    const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync);
    if (!analyze) return;
    const dir = mkdtempSync(join(tmpdir(), 'gw-unit-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(unitFile, join(dir, 'gateway.service'));
    const { stderr } = await promisify(execFile)(analyze, ['verify', join(dir, 'gateway.service')]).catch((e: { stderr: string }) => ({ stderr: e.stderr }));
    // Only the unit's own syntax: a host without node at /usr/bin or the gateway user may say so.
    expect(stderr.split('\n').filter((l) => /unknown (key|section)|failed to parse|invalid|not allowed|ignoring/i.test(l))).toEqual([]);
  });
});
