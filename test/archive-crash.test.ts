/**
 * `gateway audit archive` killed with SIGKILL mid-archive, at each point of the sealing order
 * (GATEWAY_ARCHIVE_TEST_PAUSE stops it there; the test then kills it), and once at whatever moment
 * the first file appears; every next run resumes. At the end nothing is lost and nothing is
 * duplicated: every seq is in exactly one place, archives or hot store, each entry as it was
 * committed, and `gateway audit verify` finds the one chain intact.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type AuditEntry, type PendingEntry } from '../gateway/audit/entry.ts';
import { createSqliteStore } from '../gateway/audit/sqlite-store.ts';
import { keyPairFromJwk, loadOrCreatePrivateJwk } from '../gateway/keys.ts';
import { createSigner } from '../gateway/signing.ts';
import { until } from './support/launch.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const N = 4000;
const EVERY = 500;

let dataDir: string;
let archive: string;
let configFile: string;
let committed: AuditEntry[];
let signer: ReturnType<typeof createSigner>;
let entry: (i: number, time: number) => PendingEntry;

/** Runs `gateway audit <args>`; `pauseAt` stops it at that point, and it is then killed with SIGKILL. */
function cli(args: string[], pauseAt?: string, killWhen?: () => boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const child = spawn(process.execPath, ['bin/gateway.mjs', 'audit', ...args], {
    cwd: ROOT, env: { ...process.env, ...(pauseAt ? { GATEWAY_ARCHIVE_TEST_PAUSE: pauseAt } : {}) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d; });
  child.stderr.on('data', (d: Buffer) => { stdout += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const marker = pauseAt ? join(archive, `.paused-${pauseAt}`) : null;
  const kill = marker ?? killWhen ? (async () => {
    await until(`the archiver to reach ${pauseAt ?? 'its first file'}`, () => ((marker ? existsSync(marker) : killWhen!()) || child.exitCode !== null ? true : undefined), 60_000);
    child.kill('SIGKILL');
  })() : Promise.resolve();
  return Promise.all([exit, kill]).then(([e]) => {
    if (marker) rmSync(marker, { force: true });
    return { ...e, stdout };
  });
}

const files = () => readdirSync(archive).filter((f) => !f.startsWith('.')).sort();
const hotSeqs = () => {
  const store = createSqliteStore(join(dataDir, 'audit.sqlite'), { writerThread: false });
  return (async () => {
    const seqs: number[] = [];
    for await (const e of store.scan(1)) seqs.push(e.seq);
    const segments = await store.archive!.segments();
    await store.close();
    return { seqs, segments };
  })();
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gw-archive-crash-'));
  archive = join(dataDir, 'archive');
  signer = createSigner(await keyPairFromJwk(await loadOrCreatePrivateJwk(join(dataDir, 'keys', 'gateway.private.jwk.json'), 'ES256')));
  const store = createSqliteStore(join(dataDir, 'audit.sqlite'));
  const old = Date.parse('2025-03-01T00:00:00Z');
  committed = [];
  entry = (i: number, time: number): PendingEntry => ({
    id: randomUUID(), time: new Date(time).toISOString(), client: 'portal', userId: null, purpose: 'PUBLIC_SERVICE_PREFILL', caseId: null,
    service: 'population.identity', version: 1, subjects: [sha256Hex(`citizen ${i % 40}`)], fields: ['population.identity:core'], outcome: 'released',
    status: 200, errorCode: null, upstreams: [], latencyMs: 3, requestSha256: sha256Hex(`request ${i}`), responseSha256: sha256Hex(`response ${i}`),
  });
  for (let b = 0; b < N / EVERY; b++) {
    committed.push(...(await store.appendBatch(Array.from({ length: EVERY }, (_, i) => entry(b * EVERY + i, old + (b * EVERY + i) * 1000)))));
    const last = committed.at(-1)!;
    const time = new Date(old + (b + 1) * EVERY * 1000).toISOString();
    await store.saveCheckpoint({ seq: last.seq, hash: last.hash, time, jws: await signer.signCheckpoint({ seq: last.seq, hash: last.hash, time }) });
  }
  committed.push(...(await store.appendBatch([entry(N, Date.now())])));
  await store.close();
  configFile = join(dataDir, 'gateway.json');
  writeFileSync(configFile, JSON.stringify({
    gatewayId: 'urn:test:gateway', mode: 'demo', dataDir, logLevel: 'silent',
    audit: { store: 'sqlite', pseudonymKey: 'test-pseudonym-key-0123456789abcdef', retention: { hotDays: 30 }, archive: { maxSegmentEntries: 1000 } },
  }));
}, 120_000);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('gateway audit archive, killed with SIGKILL mid-archive', () => {
  it('killed while the first data file is half written: a .tmp is left, the hot store untouched', async () => {
    const r = await cli(['archive', '--config', configFile], 'data-partly-written');
    expect(r.signal).toBe('SIGKILL');
    expect(files()).toEqual(['000000000001-000000001000.ndjson.gz.tmp']);
    expect((await hotSeqs()).seqs).toHaveLength(N + 1);
  }, 90_000);

  it('killed after the data file is durable, before its manifest: the .tmp was cleared, the data file stands alone', async () => {
    const r = await cli(['archive', '--config', configFile], 'data-written');
    expect(r.signal).toBe('SIGKILL');
    expect(files()).toEqual(['000000000001-000000001000.ndjson.gz']);
    expect((await hotSeqs()).seqs).toHaveLength(N + 1);
  }, 90_000);

  it('killed after the manifest is durable, before the hot store dropped the range: sealed on disk, still hot', async () => {
    const r = await cli(['archive', '--config', configFile], 'manifest-written');
    expect(r.signal).toBe('SIGKILL');
    expect(files()).toEqual(['000000000001-000000001000.manifest.json', '000000000001-000000001000.ndjson.gz']);
    expect(await hotSeqs()).toMatchObject({ segments: [], seqs: expect.arrayContaining([1, 1000]) });
  }, 90_000);

  it('resumes: finishes the drop the manifest was sealed for, seals the rest, leaves the head hot', async () => {
    const r = await cli(['archive', '--config', configFile]);
    expect(r.code, r.stdout).toBe(0);
    const report = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1));
    expect(report.recovered.map((s: { firstSeq: number }) => s.firstSeq)).toEqual([1]);
    expect(report.sealed.map((s: { firstSeq: number; lastSeq: number }) => [s.firstSeq, s.lastSeq])).toEqual([[1001, 2000], [2001, 3000], [3001, 4000]]);
    expect(r.stdout).toContain('3 segments sealed (3000 entries), 1 finished from an interrupted pass; hot store from seq 4001');
    const again = await cli(['archive', '--config', configFile]);
    expect(again.stdout).toContain('0 segments sealed (0 entries); hot store from seq 4001');
  }, 90_000);

  it('killed at whatever moment the next pass writes its first file, then resumed', async () => {
    // Two more ranges old enough (their checkpoints signed long ago), then a head that stays hot.
    const store = createSqliteStore(join(dataDir, 'audit.sqlite'));
    const old = Date.parse('2025-04-01T00:00:00Z');
    for (let b = 0; b < 2; b++) {
      const batch = await store.appendBatch(Array.from({ length: 1000 }, (_, i) => entry(N + 1 + b * 1000 + i, old + i * 1000)));
      committed.push(...batch);
      const last = batch.at(-1)!;
      const time = new Date(old + (b + 1) * 1_000_000).toISOString();
      await store.saveCheckpoint({ seq: last.seq, hash: last.hash, time, jws: await signer.signCheckpoint({ seq: last.seq, hash: last.hash, time }) });
    }
    committed.push(...(await store.appendBatch([entry(N + 2001, Date.now())])));
    await store.close();
    const before = files();
    const r = await cli(['archive', '--config', configFile], undefined, () => files().some((f) => !before.includes(f)));
    expect(r.signal).toBe('SIGKILL');
    const resumed = await cli(['archive', '--config', configFile]);
    expect(resumed.code, resumed.stdout).toBe(0);
    expect(resumed.stdout).toContain('hot store from seq 6002');
  }, 90_000);

  it('nothing lost, nothing duplicated: every seq once across archives and hot store, as committed; the chain verifies', async () => {
    const { seqs: hot, segments } = await hotSeqs();
    const archived: AuditEntry[] = [];
    for (const f of files().filter((x) => x.endsWith('.ndjson.gz'))) {
      for (const line of gunzipSync(readFileSync(join(archive, f))).toString('utf8').trimEnd().split('\n')) archived.push(JSON.parse(line));
    }
    expect(segments.map((s) => s.file)).toEqual(files().filter((x) => x.endsWith('.ndjson.gz')));
    const everySeq = [...archived.map((e) => e.seq), ...hot].sort((a, b) => a - b);
    expect(everySeq).toEqual(committed.map((e) => e.seq));
    expect(archived).toStrictEqual(committed.slice(0, archived.length));
    const verify = await cli(['verify', '--config', configFile]);
    expect(verify.stdout).toContain(`chain intact: ${committed.length} entries, head seq ${committed.length}`);
    expect(verify.code).toBe(0);
  }, 90_000);
});
