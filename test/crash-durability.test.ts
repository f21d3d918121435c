/**
 * A real gateway process (SQLite store) is killed with SIGKILL while concurrent requests are in
 * flight. Every answer the client received with status 200 must have its audit entry (found by
 * X-Request-Id) once the store is reopened, and the chain must verify; a restarted gateway goes on
 * chaining after the entries the dead one committed.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { createSqliteStore, verifyStore } from '../gateway/audit/index.ts';
import { keyPairFromJwk, loadOrCreatePrivateJwk } from '../gateway/keys.ts';
import { createSigner } from '../gateway/signing.ts';
import { mintAssertion } from '../gateway/client-assertion.ts';
import { testKeys } from './support/fixtures.ts';
import { BENCH_GATEWAY_ID, spawnGateway, type Child } from './bench/processes.ts';

const CONCURRENCY = 24;
const REQUESTS = 1_500;
/** The kill comes once this many 200s have arrived: load is then in full swing. */
const KILL_AFTER = 150;

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('crash durability', () => {
  it('keeps the entry of every 200 the client saw when the process is killed mid-load', async () => {
    const keys = await testKeys();
    const clientKeys = { portal: keys.portal! };
    const gw = await spawnGateway({ clientKeys, upstreams: {}, logLevel: 'silent' }, ['population.identity']);
    cleanups.push(() => gw.stop('SIGKILL'), () => rmSync(gw.dataDir, { recursive: true, force: true }));

    const citizens = world().citizens;
    const signed = await Promise.all(Array.from({ length: REQUESTS }, async (_, i) => {
      const body = JSON.stringify({ personalId: citizens[i % citizens.length]!.personalId });
      return { body, token: await mintAssertion({ privateJwk: keys.portal!, iss: 'portal', aud: BENCH_GATEWAY_ID, purpose: 'PUBLIC_SERVICE_PREFILL', body, lifetimeSeconds: 300 }) };
    }));

    const released: string[] = [];
    let killed: Promise<void> | null = null;
    let refused = 0;
    let next = 0;
    const worker = async () => {
      while (next < signed.length) {
        const { body, token } = signed[next++]!;
        try {
          const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
          await res.arrayBuffer();
          if (res.status === 200) released.push(res.headers.get('x-request-id')!);
        } catch {
          refused++; // the connection died with the process
        }
        if (released.length >= KILL_AFTER) killed ??= gw.stop('SIGKILL');
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await killed;
    expect(gw.process.signalCode).toBe('SIGKILL');
    expect(released.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(refused).toBeGreaterThan(0);

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

    // A restarted gateway chains after what the killed one committed.
    const again: Child = await spawnGateway({ clientKeys, upstreams: {}, logLevel: 'silent', dataDir: gw.dataDir }, ['population.identity']);
    cleanups.push(() => again.stop('SIGKILL'));
    const body = JSON.stringify({ personalId: citizens[0]!.personalId });
    const res = await fetch(`${again.url}/services/population.identity/v1`, {
      method: 'POST', body,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await mintAssertion({ privateJwk: keys.portal!, iss: 'portal', aud: BENCH_GATEWAY_ID, purpose: 'PUBLIC_SERVICE_PREFILL', body })}` },
    });
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
});
