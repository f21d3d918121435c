import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryIdempotencyStore, createSqliteIdempotencyStore, type IdempotencyOptions, type IdempotencyStore } from '../gateway/idempotency.ts';

const dir = mkdtempSync(join(tmpdir(), 'gw-idem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e) => e.code as string);

const kinds: [string, (o?: IdempotencyOptions) => IdempotencyStore][] = [
  ['memory', (o) => createMemoryIdempotencyStore(o)],
  ['sqlite', (o) => createSqliteIdempotencyStore(join(dir, `k${++files}.sqlite`), o)],
];

describe.each(kinds)('%s idempotency store', (_kind, open) => {
  it('replays a completed key with the same request', async () => {
    const s = open();
    expect(await s.begin('land-office', 'key-00000001', 'h1')).toBe('new');
    await s.complete('land-office', 'key-00000001', { noticeNumber: 'TB-1' });
    expect(await s.begin('land-office', 'key-00000001', 'h1')).toEqual({ replay: { noticeNumber: 'TB-1' } });
    await s.close();
  });

  it('refuses a key used with another request, and a key still in progress', async () => {
    const s = open();
    await s.begin('land-office', 'key-00000002', 'h1');
    expect(await codeOf(s.begin('land-office', 'key-00000002', 'h1'))).toBe('IDEMPOTENCY_IN_PROGRESS');
    expect(await codeOf(s.begin('land-office', 'key-00000002', 'h2'))).toBe('IDEMPOTENCY_KEY_REUSED');
    await s.close();
  });

  it('keeps keys per client', async () => {
    const s = open();
    await s.begin('land-office', 'key-00000003', 'h1');
    expect(await s.begin('portal', 'key-00000003', 'h2')).toBe('new');
    await s.close();
  });

  it('hands an uncertain key to the next attempt once, as uncertain', async () => {
    const s = open();
    await s.begin('land-office', 'key-00000004', 'h1');
    await s.markUncertain('land-office', 'key-00000004');
    expect(await s.begin('land-office', 'key-00000004', 'h1')).toBe('uncertain');
    expect(await codeOf(s.begin('land-office', 'key-00000004', 'h1'))).toBe('IDEMPOTENCY_IN_PROGRESS');
    await s.close();
  });

  it('frees a released key for any request', async () => {
    const s = open();
    await s.begin('land-office', 'key-00000005', 'h1');
    await s.release('land-office', 'key-00000005');
    expect(await s.begin('land-office', 'key-00000005', 'h2')).toBe('new');
    await s.close();
  });

  it('treats a key held past its lease as uncertain, and forgets keys past their lifetime', async () => {
    let t = 1_000_000;
    const s = open({ now: () => t, leaseMs: 1000, ttlSeconds: 60 });
    await s.begin('land-office', 'key-00000006', 'h1');
    t += 1001;
    expect(await s.begin('land-office', 'key-00000006', 'h1')).toBe('uncertain');
    await s.complete('land-office', 'key-00000006', { n: 1 });
    t += 60_000;
    expect(await s.begin('land-office', 'key-00000006', 'h2')).toBe('new');
    await s.close();
  });
});

describe('sqlite idempotency store', () => {
  it('keeps completed keys across a reopen', async () => {
    const file = join(dir, 'reopen.sqlite');
    const first = createSqliteIdempotencyStore(file);
    await first.begin('land-office', 'key-00000007', 'h1');
    await first.complete('land-office', 'key-00000007', { noticeNumber: 'TB-7' });
    await first.close();
    const second = createSqliteIdempotencyStore(file);
    expect(await second.begin('land-office', 'key-00000007', 'h1')).toEqual({ replay: { noticeNumber: 'TB-7' } });
    await second.close();
  });
});
