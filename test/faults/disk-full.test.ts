/**
 * The SQLite audit store on a small tmpfs that the test fills: requests get AUDIT_UNAVAILABLE with
 * nothing released, /readyz turns 503 within a few seconds (a load balancer stops sending traffic
 * to a gateway that can only refuse it), and both recover once space is freed. Mounting needs
 * root and a kernel that lets this sandbox mount; where it cannot, the test says so and is skipped.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig, type TestGateway } from '../support/fixtures.ts';
import { eventually, lookUp, readiness } from './support.ts';

const mountPoint = mkdtempSync(join(tmpdir(), 'gw-full-disk-'));

function tryMount(): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `mount not permitted here (${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}): the full-disk case is not run`;
  }
}
const cannotMount = tryMount();
if (cannotMount) console.warn(cannotMount);

/** Writes zeros until the file system refuses: the disk is full. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(cannotMount !== null)('a full disk under the SQLite audit store', () => {
  let gw: TestGateway;
  const filler = join(mountPoint, 'filler');

  beforeAll(async () => {
    gw = await startGateway(await testConfig((raw) => {
      raw.audit = { ...raw.audit, store: 'sqlite', sqliteFile: join(mountPoint, 'audit.sqlite') };
    }));
  });

  afterAll(async () => {
    await gw?.close();
    rmSync(filler, { force: true });
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('refuses with AUDIT_UNAVAILABLE, turns /readyz 503 within seconds, and recovers when space is freed', async () => {
    expect((await lookUp(gw)).status).toBe(200);
    expect((await readiness(gw)).status).toBe(200);

    fill(filler);
    const refused = await lookUp(gw, 1);
    expect(refused.status).toBe(503);
    expect(refused.code).toBe('AUDIT_UNAVAILABLE');
    const took = await eventually(async () => (await readiness(gw)).status === 503, 5000, '/readyz 503 on a full disk');
    expect(took).toBeLessThan(5000);
    expect((await readiness(gw)).body.checks.audit).toBe('unavailable');

    rmSync(filler);
    await eventually(async () => (await readiness(gw)).status === 200, 5000, '/readyz 200 once space is free');
    const released = await lookUp(gw, 2);
    expect(released.status).toBe(200);
    expect(await gw.gateway.audit.store.get(released.requestId!)).not.toBeNull();
    expect(await gw.gateway.audit.store.get(refused.requestId!)).toBeNull();
    expect((await gw.gateway.audit.verify()).ok).toBe(true);
  });

  it('turns /readyz 503 on an idle gateway whose disk fills, without any request failing first', async () => {
    fill(filler);
    try {
      await eventually(async () => (await readiness(gw)).status === 503, 10_000, '/readyz 503 once the idle probe meets the full disk');
    } finally {
      rmSync(filler);
    }
    await eventually(async () => (await readiness(gw)).status === 200, 5000, 'ready again');
  });
});
