/**
 * A real gateway process (SQLite store) is killed with SIGKILL while concurrent requests are in
 * flight: once at an arbitrary moment, once while its writer is inside a batch's transaction (the
 * WAL write lock held), once while SQLite copies the WAL back into the database (the checkpoint
 * lock held). Every answer the client received with status 200 must have its audit entry (found
 * by X-Request-Id) once the store is reopened, and the chain must verify; a restarted gateway goes
 * on chaining after the entries the dead one committed.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { world } from '../adapters/world/index.ts';
import { createSqliteStore, verifyStore } from '../gateway/audit/index.ts';
import { keyPairFromJwk, loadOrCreatePrivateJwk } from '../gateway/keys.ts';
import { createSigner } from '../gateway/signing.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { testKeys } from './support/fixtures.ts';
import { killHolding, WAL_CHECKPOINT_LOCK, WAL_WRITE_LOCK } from './support/sqlite-locks.ts';
import { BENCH_GATEWAY_ID, spawnGateway, type Child } from './bench/processes.ts';

const CONCURRENCY = 24;
const REQUESTS = 1_500;
/**
 * The lock-timed kills wait for a moment that may come a few times a second (a WAL checkpoint
 * comes every ~1,000 pages written): the load goes on, with this many assertions, until it does.
 */
const REQUESTS_UNTIL_LOCK = 12_000;
/** The kill comes once this many 200s have arrived: load is then in full swing. */
const KILL_AFTER = 150;

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const citizens = world().citizens;
const identity = (privateJwk: JWK, i: number) => {
  const body = JSON.stringify({ personalId: citizens[i % citizens.length]!.personalId });
  return mintAssertion({ privateJwk, iss: 'portal', aud: BENCH_GATEWAY_ID, purpose: 'PUBLIC_SERVICE_PREFILL', body, lifetimeSeconds: 300 }).then((token) => ({ body, token }));
};

/**
 * Drives the gateway with concurrent requests until it dies; `kill` is started once KILL_AFTER
 * answers have arrived and must end the process. Returns the request ids of every 200 received.
 */
async function loadUntilKilled(gw: Child, privateJwk: JWK, kill: () => Promise<unknown>, requests = REQUESTS): Promise<{ released: string[]; refused: number }> {
  const signed = await Promise.all(Array.from({ length: requests }, (_, i) => identity(privateJwk, i)));
  const released: string[] = [];
  let killed: Promise<unknown> | null = null;
  let refused = 0;
  let next = 0;
  const worker = async () => {
    while (next < signed.length && gw.process.signalCode === null) {
      const { body, token } = signed[next++]!;
      try {
        const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
        await res.arrayBuffer();
        if (res.status === 200) released.push(res.headers.get('x-request-id')!);
      } catch {
        refused++; // the connection died with the process
      }
      if (released.length >= KILL_AFTER) killed ??= kill();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await killed;
  return { released, refused };
}

/** Reopens the dead gateway's store: every released answer is in it, and the chain verifies. */
async function expectEveryReleaseKept(gw: Child & { dataDir: string }, released: string[]) {
  const signer = createSigner(await keyPairFromJwk(await loadOrCreatePrivateJwk(join(gw.dataDir, 'keys', 'gateway.private.jwk.json'), 'ES256')));
  const store = createSqliteStore(join(gw.dataDir, 'audit.sqlite'));
  try {
    const missing = [];
    for (const id of released) if (!(await store.get(id))) missing.push(id);
    expect(missing).toEqual([]);
    const report = await verifyStore(store, signer.jwks);
    expect(report).toMatchObject({ ok: true, problem: null });
    expect(report.entries).toBeGreaterThanOrEqual(released.length);
  } finally {
    await store.close();
  }
  return signer;
}

async function startGateway(portal: JWK) {
  const gw = await spawnGateway({ clientKeys: { portal }, upstreams: {}, logLevel: 'silent' }, ['population.identity']);
  cleanups.push(() => gw.stop('SIGKILL'), () => rmSync(gw.dataDir, { recursive: true, force: true }));
  return gw;
}

describe('crash durability', () => {
  it('keeps the entry of every 200 the client saw when the process is killed mid-load', async () => {
    const keys = await testKeys();
    const gw = await startGateway(keys.portal!);
    const { released, refused } = await loadUntilKilled(gw, keys.portal!, () => gw.stop('SIGKILL'));
    expect(gw.process.signalCode).toBe('SIGKILL');
    expect(released.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(refused).toBeGreaterThan(0);
    const signer = await expectEveryReleaseKept(gw, released);

    // A restarted gateway chains after what the killed one committed.
    const again: Child = await spawnGateway({ clientKeys: { portal: keys.portal! }, upstreams: {}, logLevel: 'silent', dataDir: gw.dataDir }, ['population.identity']);
    cleanups.push(() => again.stop('SIGKILL'));
    const { body, token } = await identity(keys.portal!, 0);
    const res = await fetch(`${again.url}/services/population.identity/v1`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await again.stop('SIGTERM');
    const reopened = createSqliteStore(join(gw.dataDir, 'audit.sqlite'));
    try {
      expect(await reopened.get(res.headers.get('x-request-id')!)).not.toBeNull();
      expect(await verifyStore(reopened, signer.jwks)).toMatchObject({ ok: true });
    } finally {
      await reopened.close();
    }
  }, 120_000);

  it.each([
    ['inside a batch being written (the WAL write lock held)', WAL_WRITE_LOCK],
    ['during a WAL checkpoint (the checkpoint lock held)', WAL_CHECKPOINT_LOCK],
  ])('keeps every released entry when killed %s', async (_, lock) => {
    const keys = await testKeys();
    const gw = await startGateway(keys.portal!);
    let caught = false;
    const { released } = await loadUntilKilled(gw, keys.portal!, async () => {
      caught = await killHolding(gw.pid, join(gw.dataDir, 'audit.sqlite'), lock, Date.now() + 60_000);
      if (!caught) await gw.stop('SIGKILL');
    }, REQUESTS_UNTIL_LOCK);
    await gw.stop();
    // Killed while stopped with the lock in hand: the writer was mid-transaction (or mid-checkpoint).
    expect(caught).toBe(true);
    expect(gw.process.signalCode).toBe('SIGKILL');
    await expectEveryReleaseKept(gw, released);
  }, 120_000);
});
