/**
 * Console sign-in limits against guessing and spraying: one username tried from many addresses,
 * many usernames from one address, a spray from everywhere; on one instance and across two
 * through Redis; client addresses and TLS believed only from a trusted proxy.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { CONSOLE_PASSWORD, startGateway, testConfig, type TestGateway } from '../support/fixtures.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `test:signin:${process.pid}:${randomUUID().slice(0, 8)}:`;
const started: TestGateway[] = [];

afterAll(async () => {
  for (const gw of started) await gw.close();
  const redis = new Redis(REDIS_URL);
  const keys: string[] = [];
  for await (const batch of redis.scanStream({ match: `${PREFIX}*`, count: 500 })) keys.push(...(batch as string[]));
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

async function gateway(patch: (raw: any) => void): Promise<TestGateway> {
  const gw = await startGateway(await testConfig(patch));
  started.push(gw);
  return gw;
}

interface Attempt { status: number; code?: string; retryAfter: string | null; cookie: string | null }

/** One sign-in from `from` (a loopback address), with extra headers (a proxy's). */
function signIn(gw: TestGateway, username: string, password: string, o: { from?: string; headers?: Record<string, string>; origin?: string } = {}): Promise<Attempt> {
  const url = new URL('/console/api/login', gw.url);
  const body = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST', localAddress: o.from ?? '127.0.0.1',
      headers: { 'Content-Type': 'application/json', Origin: o.origin ?? url.origin, 'Content-Length': Buffer.byteLength(body), ...o.headers },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        const cookie = res.headers['set-cookie']?.[0] ?? null;
        resolve({ status: res.statusCode!, code: res.statusCode === 200 ? undefined : JSON.parse(text).code, retryAfter: (res.headers['retry-after'] as string | undefined) ?? null, cookie });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const limits = (l: Record<string, number>) => (raw: any) => { raw.console.signInLimits = { windowSeconds: 300, perUsername: 100, perAddress: 100, total: 1000, ...l }; };
const expectLimited = (a: Attempt) => {
  expect(a.status).toBe(429);
  expect(a.code).toBe('RATE_LIMITED');
  expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
};

describe('console sign-in limits', () => {
  it('refuses one username tried from ten addresses past the per-username limit, the right password included', async () => {
    const gw = await gateway(limits({ perUsername: 5 }));
    for (let i = 0; i < 5; i++) expect((await signIn(gw, 'auditor', 'wrong', { from: `127.0.0.${i + 2}` })).code).toBe('AUTH_INVALID');
    for (let i = 5; i < 10; i++) expectLimited(await signIn(gw, 'auditor', 'wrong', { from: `127.0.0.${i + 2}` }));
    expectLimited(await signIn(gw, 'auditor', CONSOLE_PASSWORD, { from: '127.0.0.42' }));
  });

  it('refuses ten usernames sprayed from one address past the per-address limit', async () => {
    const gw = await gateway(limits({ perAddress: 5 }));
    for (let i = 0; i < 5; i++) expect((await signIn(gw, `user${i}`, 'Password1!', { from: '127.0.0.7' })).code).toBe('AUTH_INVALID');
    for (let i = 5; i < 10; i++) expectLimited(await signIn(gw, `user${i}`, 'Password1!', { from: '127.0.0.7' }));
    // Another address is not held back by that one's failures.
    expect((await signIn(gw, 'auditor', CONSOLE_PASSWORD, { from: '127.0.0.8' })).status).toBe(200);
  });

  it('has a global backstop against a spray from many addresses over many usernames', async () => {
    const gw = await gateway(limits({ total: 6 }));
    for (let i = 0; i < 6; i++) expect((await signIn(gw, `user${i}`, 'x', { from: `127.0.1.${i + 1}` })).code).toBe('AUTH_INVALID');
    expectLimited(await signIn(gw, 'user99', 'x', { from: '127.0.1.99' }));
  });

  it('counts one username across two instances through Redis', async () => {
    const shared = (raw: any) => { limits({ perUsername: 4 })(raw); raw.redis = { url: REDIS_URL, keyPrefix: PREFIX }; };
    const a = await gateway(shared);
    const b = await gateway(shared);
    for (let i = 0; i < 4; i++) expect((await signIn(i % 2 ? a : b, 'auditor', 'wrong', { from: `127.0.2.${i + 1}` })).code).toBe('AUTH_INVALID');
    expectLimited(await signIn(a, 'auditor', CONSOLE_PASSWORD, { from: '127.0.2.50' }));
    expectLimited(await signIn(b, 'auditor', CONSOLE_PASSWORD, { from: '127.0.2.51' }));
  });
});

describe('a trusted reverse proxy (trustProxy)', () => {
  it('makes X-Forwarded-For the client address for the limits; from anyone else the header is ignored', async () => {
    const trusted = await gateway((raw) => { limits({ perAddress: 3 })(raw); raw.trustProxy = ['127.0.0.1']; });
    for (let i = 0; i < 3; i++) await signIn(trusted, `u${i}`, 'x', { headers: { 'X-Forwarded-For': '203.0.113.7' } });
    expectLimited(await signIn(trusted, 'u9', 'x', { headers: { 'X-Forwarded-For': '203.0.113.7' } }));
    expect((await signIn(trusted, 'u9', 'x', { headers: { 'X-Forwarded-For': '203.0.113.8' } })).code).toBe('AUTH_INVALID');

    const untrusted = await gateway(limits({ perAddress: 3 }));
    for (let i = 0; i < 3; i++) await signIn(untrusted, `u${i}`, 'x', { headers: { 'X-Forwarded-For': `203.0.113.${i}` } });
    expectLimited(await signIn(untrusted, 'u9', 'x', { headers: { 'X-Forwarded-For': '203.0.113.200' } }));
  });

  it('sets Secure on the session cookie when a trusted proxy says the client came over TLS, not when anyone else says so', async () => {
    const trusted = await gateway((raw) => { raw.trustProxy = ['127.0.0.1']; });
    const viaTls = await signIn(trusted, 'auditor', CONSOLE_PASSWORD, { headers: { 'X-Forwarded-Proto': 'https' }, origin: new URL(trusted.url).origin.replace('http:', 'https:') });
    expect(viaTls.status).toBe(200);
    expect(viaTls.cookie).toMatch(/;\s*Secure/);
    const plain = await signIn(trusted, 'auditor', CONSOLE_PASSWORD);
    expect(plain.cookie).not.toMatch(/Secure/);

    const untrusted = await gateway(() => {});
    const claimed = await signIn(untrusted, 'auditor', CONSOLE_PASSWORD, { headers: { 'X-Forwarded-Proto': 'https' } });
    expect(claimed.status).toBe(200);
    expect(claimed.cookie).not.toMatch(/Secure/);
  });

  it('sets Secure when the public URL is https', async () => {
    const gw = await gateway((raw) => { raw.publicUrl = 'https://gateway.example.gov.vn'; });
    const res = await signIn(gw, 'auditor', CONSOLE_PASSWORD);
    expect(res.status).toBe(200);
    expect(res.cookie).toMatch(/;\s*Secure/);
  });
});
