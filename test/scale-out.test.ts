/**
 * Two gateway instances on one PostgreSQL audit store and one Redis (TEST_POSTGRES_URL,
 * TEST_REDIS_URL): one chain under concurrent load, single-use assertions, rate limits, console
 * sessions and failed sign-ins that hold across instances, and a Redis outage that refuses
 * requests instead of letting them through.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { CONSOLE_PASSWORD, startGateway, testConfig, type TestGateway } from './support/fixtures.ts';
import { dropSchemas, POSTGRES_URL } from './support/postgres.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUN = `${process.pid}_${randomUUID().slice(0, 8)}`;
const SCHEMA = `t_scaleout_${RUN}`;
const KEY_PREFIX = `test:scaleout:${RUN}:`;
const RATE_LIMITED_CLIENT = 'edclient';
const RATE_LIMIT = 4;

const sharedDir = mkdtempSync(join(tmpdir(), 'gw-scaleout-'));
let a: TestGateway;
let b: TestGateway;

/** One instance's config: the shared store, Redis and signing key; its own instance id and data dir. */
const instanceConfig = (instanceId: string) => testConfig((raw) => {
  raw.instanceId = instanceId;
  raw.audit = { ...raw.audit, store: 'postgres', postgresUrl: POSTGRES_URL, postgresSchema: SCHEMA, checkpointEveryEntries: 50 };
  raw.redis = { url: REDIS_URL, keyPrefix: KEY_PREFIX };
  raw.signing = { privateJwkFile: join(sharedDir, 'gateway.private.jwk.json') };
  raw.clients.find((c: { id: string }) => c.id === RATE_LIMITED_CLIENT).rateLimitPerMinute = RATE_LIMIT;
});

async function redisKeys(pattern: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys: string[] = [];
    for await (const batch of redis.scanStream({ match: pattern, count: 500 })) keys.push(...(batch as string[]));
    return keys;
  } finally {
    redis.disconnect();
  }
}

async function deleteKeys(prefix: string) {
  const keys = await redisKeys(`${prefix}*`);
  if (!keys.length) return;
  const redis = new Redis(REDIS_URL);
  try {
    await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

beforeAll(async () => {
  // One after the other: the first creates the shared signing key file and runs the migrations.
  a = await startGateway(await instanceConfig('gw-a'));
  b = await startGateway(await instanceConfig('gw-b'));
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await dropSchemas([SCHEMA]);
  await deleteKeys(KEY_PREFIX);
  rmSync(sharedDir, { recursive: true, force: true });
});

/** Runs `tasks` with at most `width` in flight. */
async function concurrently<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

interface Outcome { status: number; code: string; requestId: string | null; authenticated: boolean }

describe('two instances, one store', () => {
  it('keeps one intact chain under concurrent load with an entry per authenticated request', async () => {
    const citizens = world().citizens;
    const before = (await a.gateway.audit.store.head()).seq;
    // Six kinds of request; instance and kind vary independently so each kind reaches both instances.
    const kinds: ((gw: TestGateway, i: number) => Promise<Response>)[] = [
      (gw, i) => gw.call('population.identity', { personalId: citizens[i % citizens.length]!.personalId }, { client: 'portal' }),
      (gw, i) => gw.call('population.identity', { personalId: citizens[i % citizens.length]!.personalId }, { client: 'land-office', purpose: 'PUBLIC_SERVICE_PREFILL' }),
      (gw, i) => gw.call('population.identity', { personalId: citizens[i % citizens.length]!.personalId }, { client: 'land-office' }),
      (gw) => gw.call('population.identity', { personalId: '001099000001' }, { client: 'land-office' }),
      (gw) => gw.call('population.identity', { personalId: citizens[0]!.personalId }, { token: 'not.a.jwt' }),
      (gw) => gw.call('population.identity', { personalId: '12345' }, { client: 'portal' }),
    ];
    const expectedCodes = ['OK', 'FORBIDDEN_PURPOSE', 'OK', 'SUBJECT_NOT_FOUND', 'AUTH_INVALID', 'REQUEST_INVALID'];
    const tasks = Array.from({ length: 300 }, (_, i) => async (): Promise<Outcome> => {
      const kind = Math.floor(i / 2) % kinds.length;
      const res = await kinds[kind]!(i % 2 ? b : a, i);
      const type = res.headers.get('content-type') ?? '';
      const body = await res.json();
      const code = res.status === 200 ? 'OK' : body.code;
      if (res.status !== 200) expect(type).toMatch(/^application\/problem\+json/);
      expect(code).toBe(expectedCodes[kind]);
      return { status: res.status, code, requestId: res.headers.get('x-request-id'), authenticated: code !== 'AUTH_INVALID' };
    });
    const outcomes = await concurrently(tasks, 40);

    const authenticated = outcomes.filter((o) => o.authenticated);
    expect(authenticated).toHaveLength(250);
    const report = await a.gateway.audit.verify();
    expect(report).toMatchObject({ ok: true, problem: null });
    expect(report.entries - before).toBe(authenticated.length);
    expect(report.lastCheckpoint).not.toBeNull();

    const stored: string[] = [];
    for await (const e of a.gateway.audit.store.scan(before + 1)) stored.push(e.id);
    expect(new Set(stored)).toEqual(new Set(authenticated.map((o) => o.requestId)));
    expect(stored).toHaveLength(new Set(stored).size);
  });

  it('refuses on instance B an assertion already used on instance A', async () => {
    const body = JSON.stringify({ personalId: world().citizens[1]!.personalId });
    const token = await a.assertion(body, { client: 'portal' });
    const first = await a.call('population.identity', undefined, { raw: body, token });
    expect(first.status).toBe(200);
    const replayed = await b.call('population.identity', undefined, { raw: body, token });
    expect(replayed.status).toBe(401);
    expect((await replayed.json()).code).toBe('AUTH_REPLAYED');
  });

  it('counts one rate limit across both instances', async () => {
    const personalId = world().citizens[2]!.personalId;
    const statuses: number[] = [];
    for (let i = 0; i < RATE_LIMIT; i++) {
      const res = await (i % 2 ? b : a).call('population.identity', { personalId }, { client: RATE_LIMITED_CLIENT });
      statuses.push(res.status);
    }
    expect(statuses).toEqual(Array(RATE_LIMIT).fill(200));
    for (const gw of [a, b]) {
      const res = await gw.call('population.identity', { personalId }, { client: RATE_LIMITED_CLIENT });
      expect(res.status).toBe(429);
      expect((await res.json()).code).toBe('RATE_LIMITED');
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
  });
});

/** A JSON POST to the console of `gw`, from its own origin. */
const consolePost = (gw: TestGateway, path: string, body: unknown, cookie?: string) => fetch(`${gw.url}/console/api/${path}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json', Origin: gw.url, ...(cookie ? { Cookie: cookie } : {}) }, body: JSON.stringify(body),
});
const consoleSession = (gw: TestGateway, cookie: string) => fetch(`${gw.url}/console/api/session`, { headers: { Cookie: cookie } });


describe('the console across instances', () => {
  it('knows a session signed in on A on B, and a sign-out on B ends it on A', async () => {
    const login = await consolePost(a, 'login', { username: 'auditor', password: CONSOLE_PASSWORD });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const id = cookie.split('=')[1]!;

    const onB = await consoleSession(b, cookie);
    expect(onB.status).toBe(200);
    expect(await onB.json()).toMatchObject({ username: 'auditor' });
    // Redis holds the session under a hash of its id: a copy of Redis gives no usable cookie.
    const keys = await redisKeys(`${KEY_PREFIX}session:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.some((k) => k.includes(id))).toBe(false);

    expect((await consolePost(b, 'logout', {}, cookie)).status).toBe(204);
    const onA = await consoleSession(a, cookie);
    expect(onA.status).toBe(401);
    expect((await onA.json()).code).toBe('AUTH_MISSING');
  });

  it('counts failed sign-ins on both instances together: the sixth is refused on either, even with the right password', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await consolePost(i % 2 ? b : a, 'login', { username: 'auditor', password: `wrong-${i}` });
      expect(res.status).toBe(401);
      expect((await res.json()).code).toBe('AUTH_INVALID');
    }
    for (const gw of [a, b]) {
      const res = await consolePost(gw, 'login', { username: 'auditor', password: CONSOLE_PASSWORD });
      expect(res.status).toBe(429);
      expect((await res.json()).code).toBe('RATE_LIMITED');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // Keyed by a hash: no username in Redis.
    const keys = await redisKeys(`${KEY_PREFIX}signin:*`);
    // Three counts: this username, this address, and all failures together.
    expect(keys).toHaveLength(3);
    for (const key of keys) expect(key).not.toContain('auditor');
  });
});

/** A loopback TCP relay to Redis that the test can cut, to stage an outage of a real Redis. */
async function relayTo(target: URL): Promise<{ url: string; cut: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(Number(target.port || 6379), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

describe('Redis outage', () => {
  it('refuses requests (fail closed) with a clear log line and keeps serving problems', async () => {
    const relay = await relayTo(new URL(REDIS_URL));
    const prefix = `${KEY_PREFIX}outage:`;
    const lines: Record<string, unknown>[] = [];
    const logDestination = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
    const cfg = await testConfig((raw) => {
      raw.logLevel = 'info';
      raw.redis = { url: relay.url, keyPrefix: prefix };
    });
    const gw = await startGateway(cfg, { logDestination });
    try {
      const personalId = world().citizens[0]!.personalId;
      expect((await gw.call('population.identity', { personalId })).status).toBe(200);
      await relay.cut();
      for (let i = 0; i < 3; i++) {
        const res = await gw.call('population.identity', { personalId });
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect((await res.json()).code).toBe('SHARED_STATE_UNAVAILABLE');
      }
      const ready = await fetch(`${gw.url}/readyz`);
      expect(ready.status).toBe(503);
      expect((await ready.json()).checks.sharedState).toBe('unavailable');
      const refusals = lines.filter((l) => l.code === 'SHARED_STATE_UNAVAILABLE');
      expect(refusals).toHaveLength(3);
      expect(refusals[0]).toMatchObject({ level: 'error', status: 503 });
      // The console fails closed as well: no session can be checked, so none is taken on trust.
      const consoleRes = await consoleSession(gw, 'gw_console=' + 'x'.repeat(43));
      expect(consoleRes.status).toBe(503);
      expect((await consoleRes.json()).code).toBe('SHARED_STATE_UNAVAILABLE');
    } finally {
      await gw.close();
      await deleteKeys(prefix);
    }
  });
});
