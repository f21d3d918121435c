/**
 * The console's sessions and failed sign-ins, against both shared-state backends (memory, and a
 * real Redis at TEST_REDIS_URL) under one contract, on a clock the test moves.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryState, type SharedState } from '../gateway/shared-state.ts';
import { createRedisState } from '../gateway/redis-state.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `test:shared:${process.pid}_${randomUUID().slice(0, 8)}:`;
const opened: SharedState[] = [];

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${KEY_PREFIX}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const backends: [string, (now: () => number) => Promise<SharedState>][] = [
  ['memory', async (now) => createMemoryState(now)],
  ['redis', async (now) => createRedisState({ url: REDIS_URL, keyPrefix: `${KEY_PREFIX}${randomUUID()}:`, now })],
];

describe.each(backends)('%s shared state', (_name, open) => {
  const start = async () => {
    // A clock that starts now (Redis expiries run on real time) and moves only when told.
    let t = Date.now();
    const state = await open(() => t);
    opened.push(state);
    return { state, now: () => t, advance: (ms: number) => { t += ms; } };
  };

  it('keeps a session until its expiry, then forgets it; deleting ends it at once', async () => {
    const { state, now, advance } = await start();
    const session = { username: 'auditor', displayName: 'Auditor', expiresAt: now() + 60_000 };
    await state.sessions.put('id-1', session);
    await state.sessions.put('id-2', session);
    expect(await state.sessions.get('id-1')).toEqual(session);
    expect(await state.sessions.get('unknown')).toBeNull();
    await state.sessions.delete('id-2');
    expect(await state.sessions.get('id-2')).toBeNull();
    advance(60_000);
    expect(await state.sessions.get('id-1')).toBeNull();
  });

  it('counts failures per key within the sliding window only', async () => {
    const { state, advance } = await start();
    await state.signInFailures.record('auditor\u0000127.0.0.1', 60_000);
    advance(30_000);
    await state.signInFailures.record('auditor\u0000127.0.0.1', 60_000);
    await state.signInFailures.record('other\u0000127.0.0.1', 60_000);
    const both = await state.signInFailures.recent('auditor\u0000127.0.0.1', 60_000);
    expect(both).toHaveLength(2);
    expect(both[0]!).toBeLessThan(both[1]!);
    advance(30_001);
    expect(await state.signInFailures.recent('auditor\u0000127.0.0.1', 60_000)).toEqual([both[1]]);
    expect(await state.signInFailures.recent('nobody\u0000127.0.0.1', 60_000)).toEqual([]);
  });
});
