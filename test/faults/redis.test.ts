/**
 * Redis (replay cache, rate limits, console sessions) behind a relay that the test breaks:
 * connections cut under load, and a server that accepts connections but never answers. Requests
 * that need it are refused with SHARED_STATE_UNAVAILABLE (never let through, never hung), the
 * process stays up, and it recovers by itself.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig, type TestGateway } from '../support/fixtures.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { eventually, lookUp, readiness, underLoad, wait } from './support.ts';

const REDIS_URL = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const PREFIX = `test:faults:${process.pid}:${randomUUID().slice(0, 8)}:`;
let proxy: FaultProxy;
let gw: TestGateway;

beforeAll(async () => {
  proxy = await startFaultProxy({ host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) });
  gw = await startGateway(await testConfig((raw) => {
    raw.redis = { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: PREFIX, connectTimeoutMs: 500, commandTimeoutMs: 500 };
  }));
});

afterEach(() => proxy.resume());

afterAll(async () => {
  await gw?.close();
  await proxy?.close();
  const redis = new Redis(REDIS_URL.href);
  const keys: string[] = [];
  for await (const batch of redis.scanStream({ match: `${PREFIX}*`, count: 500 })) keys.push(...(batch as string[]));
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe('Redis connections cut under load', () => {
  it('keeps the process up: requests get 200 or SHARED_STATE_UNAVAILABLE, and succeed once Redis is back', async () => {
    let stop = false;
    const load = underLoad(gw, 8, () => stop);
    let cut = 0;
    for (let i = 0; i < 6; i++) {
      await wait(250);
      cut += proxy.drop(i % 2 === 0 ? 'reset' : 'close');
    }
    await wait(300);
    stop = true;
    const answers = await load;

    expect(cut).toBeGreaterThan(0);
    const kinds = new Set(answers.map((a) => `${a.status} ${a.code ?? ''}`.trim()));
    expect([...kinds].every((k) => k === '200' || k === '503 SHARED_STATE_UNAVAILABLE'), [...kinds].join(', ')).toBe(true);
    expect(answers.some((a) => a.code === 'SHARED_STATE_UNAVAILABLE')).toBe(true);
    await eventually(async () => (await lookUp(gw)).status === 200, 10_000, 'requests succeed once Redis reconnects');
    for (let i = 0; i < 5; i++) expect((await lookUp(gw, i)).status).toBe(200);
  });
});

describe('Redis accepting connections but not answering', () => {
  it('refuses every request within a bounded time, reports not ready, and recovers', async () => {
    expect((await lookUp(gw)).status).toBe(200);
    proxy.stall();
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => lookUp(gw, i)));
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.code).toBe('SHARED_STATE_UNAVAILABLE');
      // The command timeout is 0.5 s here.
      expect(a.ms).toBeLessThan(5000);
    }
    const ready = await readiness(gw);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.sharedState).toBe('unavailable');

    proxy.resume();
    await eventually(async () => (await readiness(gw)).status === 200, 10_000, 'ready once Redis answers');
    await eventually(async () => (await lookUp(gw)).status === 200, 10_000, 'requests succeed again');
  });
});
