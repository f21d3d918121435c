import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { createMemoryStore, entryHash, makePseudonymizer, type AuditEntry, type AuditStore } from '../gateway/audit/index.ts';
import { EXPORT_COLUMNS } from '../gateway/audit-api.ts';
import { verifyCheckpointJws } from '../gateway/signing.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';
import { parseExport } from './support/export.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PSEUDONYM_KEY = 'test-pseudonym-key-0123456789abcdef';
const pseudonym = makePseudonymizer(PSEUDONYM_KEY);
const [an, binh, cuong] = world().citizens;
const TRICKY_CASE = 'HS-2026, "A" =1+1';

/** Runs `gateway <args>` as a child process, as an operator would; resolves with the exit code. */
function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/gateway.mjs', ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** RFC 4180 parser, enough to read back what the export writes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\r' && text[i + 1] === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; i++; }
    else cell += c;
  }
  return rows;
}

const ndjson = (text: string) => parseExport(text).entries;

let gw: TestGateway;
let work: string;
const auditor = { client: 'auditor' };
const entries = async (query: string) => {
  const res = await gw.get(`/audit/entries?${query}`, auditor);
  expect(res.status).toBe(200);
  return (await res.json()) as { entries: AuditEntry[]; nextCursor: string | null };
};

beforeAll(async () => {
  gw = await startGateway();
  work = mkdtempSync(join(tmpdir(), 'audit-api-'));
  const ok = async (r: Promise<Response>, status: number) => expect((await r).status).toBe(status);
  await ok(gw.call('population.identity', { personalId: an!.personalId }, { client: 'land-office', caseId: 'HS-AN-1', userId: 'officer-7' }), 200);
  await ok(gw.call('population.identity', { personalId: binh!.personalId }, { client: 'portal' }), 200);
  await ok(gw.call('population.identity', { personalId: an!.personalId }, { client: 'portal' }), 200);
  await ok(gw.call('population.identity', { personalId: cuong!.personalId }, { client: 'land-office', caseId: TRICKY_CASE }), 200);
  await ok(gw.call('population.identity', { personalId: '001099000001' }, { client: 'land-office', caseId: 'HS-MISSING' }), 404);
  await ok(gw.call('population.identity', { personalId: an!.personalId }, { client: 'portal', purpose: 'LAND_TRANSFER_REGISTRATION' }), 403);
});
afterAll(async () => {
  await gw.close();
  rmSync(work, { recursive: true, force: true });
});

describe('GET /audit/entries filters', () => {
  it('finds a citizen by personal id through the pseudonym', async () => {
    const { entries: found } = await entries(`subject=${an!.personalId}`);
    expect(found.map((e) => e.client).sort()).toEqual(['land-office', 'portal', 'portal']);
    for (const e of found) expect(e.subjects).toContain(pseudonym(an!.personalId));
  });

  it('filters by client, service, purpose, case id and outcome', async () => {
    expect((await entries('client=portal')).entries.every((e) => e.client === 'portal')).toBe(true);
    expect((await entries('client=portal')).entries).toHaveLength(3);
    expect((await entries('service=population.identity')).entries).toHaveLength(6);
    const byPurpose = (await entries('purpose=LAND_TRANSFER_REGISTRATION')).entries;
    expect(byPurpose.map((e) => e.caseId).sort()).toEqual(['HS-AN-1', 'HS-MISSING', TRICKY_CASE, null].sort());
    const byCase = (await entries('caseId=HS-AN-1')).entries;
    expect(byCase).toHaveLength(1);
    expect(byCase[0]).toMatchObject({ userId: 'officer-7', outcome: 'released', fields: expect.arrayContaining(['population.identity:core']) });
    expect((await entries('outcome=failed&service=population.identity')).entries.map((e) => e.errorCode)).toEqual(['SUBJECT_NOT_FOUND']);
    expect((await entries('outcome=denied&service=population.identity')).entries.map((e) => e.errorCode)).toEqual(['FORBIDDEN_PURPOSE']);
  });

  it('filters by a time range, from inclusive and to exclusive', async () => {
    const all = (await entries('service=population.identity')).entries.reverse();
    const from = all[1]!.time;
    const to = all[4]!.time;
    const ranged = (await entries(`service=population.identity&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`)).entries;
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.map((e) => e.seq)).toEqual(all.filter((e) => e.time >= from && e.time < to).map((e) => e.seq).reverse());
  });

  it('refuses a malformed personal id, outcome, time or limit with REQUEST_INVALID', async () => {
    for (const q of ['subject=12345', 'outcome=maybe', 'from=yesterday', 'limit=0', 'limit=501', 'cursor=bm9wZQ']) {
      const res = await gw.get(`/audit/entries?${q}`, auditor);
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });

  it('pages newest first with a stable cursor, even while new entries arrive', async () => {
    const whole = (await entries('client=land-office&limit=500')).entries.map((e) => e.seq);
    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { entries: AuditEntry[]; nextCursor: string | null } = await entries(`client=land-office&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.entries.length).toBeLessThanOrEqual(2);
      paged.push(...page.entries.map((e) => e.seq));
      cursor = page.nextCursor;
      // A new entry at the head must not shift the pages already being read.
      await gw.call('population.identity', { personalId: binh!.personalId }, { client: 'land-office', caseId: 'HS-LATER' });
    } while (cursor);
    expect(paged).toEqual(whole);
    expect(new Set(paged).size).toBe(paged.length);
  });

  it('is refused to a client without the audit grant', async () => {
    for (const path of ['/audit/entries', '/audit/export', '/audit/checkpoints', '/audit/verify']) {
      const res = await gw.get(path, { client: 'portal' });
      expect(res.status).toBe(403);
      expect((await res.json()).code).toBe('FORBIDDEN_SERVICE');
    }
  });
});

describe('GET /audit/export', () => {
  it('streams NDJSON of the whole chain up to X-Audit-Head-Seq, its own entry included', async () => {
    const res = await gw.get('/audit/export?format=ndjson', auditor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('x-gateway-signature')).toBeNull();
    const head = Number(res.headers.get('x-audit-head-seq'));
    const requestId = res.headers.get('x-request-id');
    const exported = parseExport(await res.text());
    const lines = exported.entries;
    expect(lines.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    for (const e of lines) expect(entryHash(e)).toBe(e.hash);
    // It ends with the chain's head at export time, signed by the gateway's key, also sent as X-Audit-Head.
    expect(exported.head).toMatchObject({ seq: head, hash: lines.at(-1)!.hash });
    expect(res.headers.get('x-audit-head')).toBe(exported.head.jws);
    const jwks = await (await fetch(`${gw.url}/.well-known/jwks.json`)).json();
    expect(await verifyCheckpointJws(exported.head.jws, jwks)).toEqual({ seq: head, hash: lines.at(-1)!.hash, time: exported.head.time });
    // Committed before the first byte: the export lists itself, with no response hash.
    expect(lines.find((e) => e.id === requestId)).toMatchObject({ service: 'audit.export', client: 'auditor', outcome: 'released', responseSha256: null });
  });

  it('applies the entries filters', async () => {
    const res = await gw.get(`/audit/export?format=ndjson&subject=${an!.personalId}&client=land-office`, auditor);
    const lines = ndjson(await res.text());
    expect(lines.map((e) => e.caseId)).toEqual(['HS-AN-1']);
  });

  it('writes CSV with a header row, RFC 4180 quoting, JSON arrays in cells and no formula cells', async () => {
    const res = await gw.get('/audit/export?format=csv&service=population.identity', auditor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toMatch(/attachment; filename="audit-export-\d+\.csv"/);
    const text = await res.text();
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual([...EXPORT_COLUMNS]);
    const col = (name: (typeof EXPORT_COLUMNS)[number]) => EXPORT_COLUMNS.indexOf(name);
    const tricky = rows.find((r) => r[col('caseId')]!.includes('HS-2026'))!;
    expect(tricky[col('caseId')]).toBe(TRICKY_CASE);
    expect(JSON.parse(tricky[col('subjects')]!)).toEqual([pseudonym(cuong!.personalId)]);
    expect(JSON.parse(tricky[col('upstreams')]!)[0]).toMatchObject({ agency: 'population' });
    expect(rows.every((r) => r.length === EXPORT_COLUMNS.length)).toBe(true);
    expect(rows.find((r) => r[col('errorCode')] === 'SUBJECT_NOT_FOUND')![col('responseSha256')]).toMatch(/^[0-9a-f]{64}$/);
    // Null cells are empty; a value that a spreadsheet would run as a formula is kept as text.
    expect(rows.find((r) => r[col('client')] === 'portal')![col('caseId')]).toBe('');
    const formula = await gw.call('population.identity', { personalId: binh!.personalId }, { client: 'land-office', caseId: '=HYPERLINK("x")' });
    expect(formula.status).toBe(200);
    const again = parseCsv(await (await gw.get('/audit/export?format=csv&caseId=%3DHYPERLINK(%22x%22)', auditor)).text());
    expect(again[1]![col('caseId')]).toBe(`'=HYPERLINK("x")`);
  });

  it('refuses an unknown format', async () => {
    const res = await gw.get('/audit/export?format=xml', auditor);
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe('REQUEST_INVALID');
  });
});

describe('checkpoints and offline verification', () => {
  let exportFile: string;
  let checkpointsFile: string;
  let jwsFile: string;
  let jwksFile: string;
  let checkpointSeq: number;
  let headSeq: number;

  beforeAll(async () => {
    await gw.gateway.audit.checkpoint();
    const cps = await gw.get('/audit/checkpoints', auditor);
    expect(cps.status).toBe(200);
    const listed = await cps.json();
    expect(listed.total).toBeGreaterThan(0);
    const last = listed.checkpoints.at(-1);
    checkpointSeq = last.seq;
    const exp = await gw.get('/audit/export', auditor);
    headSeq = Number(exp.headers.get('x-audit-head-seq'));
    exportFile = join(work, 'audit.ndjson');
    writeFileSync(exportFile, await exp.text());
    checkpointsFile = join(work, 'checkpoints.json');
    writeFileSync(checkpointsFile, JSON.stringify(listed));
    jwsFile = join(work, 'checkpoint.jws');
    writeFileSync(jwsFile, `${last.jws}\n`);
    jwksFile = join(work, 'jwks.json');
    writeFileSync(jwksFile, await (await fetch(`${gw.url}/.well-known/jwks.json`)).text());
  });

  it('lists signed checkpoints of {seq, hash, time}', async () => {
    const { checkpoints } = await (await gw.get('/audit/checkpoints?limit=1', auditor)).json();
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]).toMatchObject({ seq: checkpointSeq, hash: expect.stringMatching(/^[0-9a-f]{64}$/), jws: expect.any(String) });
    const payload = JSON.parse(Buffer.from(checkpoints[0].jws.split('.')[1], 'base64url').toString());
    expect(payload).toEqual({ seq: checkpointSeq, hash: checkpoints[0].hash, time: checkpoints[0].time });
  });

  it('reports an intact export with either checkpoint file', async () => {
    const a = await runCli(['audit', 'verify', '--export', exportFile, '--checkpoints', checkpointsFile, '--jwks', jwksFile, '--head-seq', String(headSeq)]);
    // The export's own signed head is the last checkpoint the verifier holds.
    expect(a.stdout).toContain(`chain intact: ${headSeq} entries, head seq ${headSeq}, last checkpoint seq ${headSeq}`);
    expect(a.code).toBe(0);
    expect(headSeq).toBeGreaterThan(checkpointSeq);
    const alone = await runCli(['audit', 'verify', '--export', exportFile, '--jwks', jwksFile]);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toContain(`chain intact: ${headSeq} entries`);
    const b = await runCli(['audit', 'verify', '--export', exportFile, '--checkpoint', jwsFile, '--jwks', jwksFile]);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain('chain intact');
  });

  it('names the first altered seq and exits non-zero', async () => {
    const lines = readFileSync(exportFile, 'utf8').split('\n');
    const victim = JSON.parse(lines[2]!) as AuditEntry;
    lines[2] = JSON.stringify({ ...victim, client: 'someone-else' });
    const tampered = join(work, 'tampered.ndjson');
    writeFileSync(tampered, lines.join('\n'));
    const r = await runCli(['audit', 'verify', '--export', tampered, '--checkpoint', jwsFile, '--jwks', jwksFile]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`CHAIN BROKEN at seq ${victim.seq}: hash_mismatch`);
    expect(JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1))).toMatchObject({ ok: false, firstBadSeq: 3, problem: 'hash_mismatch' });
  });

  it('detects a cut tail from the export alone: entries gone with the head line, or short of it', async () => {
    const lines = readFileSync(exportFile, 'utf8').split('\n').filter(Boolean);
    expect(JSON.parse(lines.at(-1)!)).toHaveProperty('head.seq', headSeq);
    const write = (name: string, kept: string[]) => { const f = join(work, name); writeFileSync(f, kept.join('\n') + '\n'); return f; };
    // The last three entries and the head line deleted: no flag, no checkpoint file needed.
    const tail = await runCli(['audit', 'verify', '--export', write('tail.ndjson', lines.slice(0, -4)), '--jwks', jwksFile]);
    expect(tail.code).toBe(2);
    expect(tail.stdout).toContain(`CHAIN TRUNCATED after seq ${headSeq - 3}`);
    // Entries deleted, the head line kept: the head names a seq the export does not reach.
    const short = await runCli(['audit', 'verify', '--export', write('short.ndjson', [...lines.slice(0, -3), lines.at(-1)!]), '--jwks', jwksFile]);
    expect(short.code).toBe(2);
    expect(short.stdout).toContain(`CHAIN TRUNCATED after seq ${headSeq - 2}`);
    // Cut below a stored checkpoint.
    const cut = await runCli(['audit', 'verify', '--export', write('cut.ndjson', lines.slice(0, checkpointSeq - 2)), '--checkpoints', checkpointsFile, '--jwks', jwksFile]);
    expect(cut.code).toBe(2);
    expect(cut.stdout).toContain(`CHAIN TRUNCATED after seq ${checkpointSeq - 2}`);
    // A head re-signed by another key, or entries after it, are not taken.
    const after = await runCli(['audit', 'verify', '--export', write('after.ndjson', [...lines, lines[0]!]), '--jwks', jwksFile]);
    expect(after.code).toBe(2);
    expect(after.stdout).toMatch(/follows the export's signed head/);
  });

  it('refuses a checkpoint signed by another key', async () => {
    const other = await testConfig();
    const stranger = await startGateway(other);
    try {
      const strangerJwks = join(work, 'stranger-jwks.json');
      writeFileSync(strangerJwks, await (await fetch(`${stranger.url}/.well-known/jwks.json`)).text());
      const r = await runCli(['audit', 'verify', '--export', exportFile, '--checkpoint', jwsFile, '--jwks', strangerJwks]);
      expect(r.code).toBe(2);
      expect(r.stdout).toContain('checkpoint_signature');
    } finally {
      await stranger.close();
    }
  });

  it('reports a line that is not JSON', async () => {
    const lines = readFileSync(exportFile, 'utf8').split('\n');
    lines[4] = '{"seq": 5, broken';
    const bad = join(work, 'bad.ndjson');
    writeFileSync(bad, lines.join('\n'));
    const r = await runCli(['audit', 'verify', '--export', bad, '--checkpoint', jwsFile, '--jwks', jwksFile]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('CHAIN BROKEN at seq 5: line 5 is not a JSON audit entry');
  });
});

describe('export durability and size', () => {
  it('releases nothing when its own entry cannot be committed', async () => {
    const failing: AuditStore = { ...createMemoryStore(), appendBatch: async () => { throw new Error('disk full'); } };
    const broken = await startGateway(undefined, { auditStore: failing });
    try {
      const res = await broken.get('/audit/export', auditor);
      expect(res.status).toBe(503);
      expect((await res.json()).code).toBe('AUDIT_UNAVAILABLE');
    } finally {
      await broken.close();
    }
  });

  it('cuts the connection, never ending cleanly, when the store fails mid-export', async () => {
    const memory = createMemoryStore();
    const store: AuditStore = {
      ...memory,
      async *scan(fromSeq, filter) {
        for await (const e of memory.scan(fromSeq, filter)) {
          yield e;
          throw new Error('disk gone');
        }
      },
    };
    const broken = await startGateway(undefined, { auditStore: store });
    try {
      await broken.call('population.identity', { personalId: an!.personalId }, { client: 'portal' });
      await expect(broken.get('/audit/export', auditor).then((r) => r.text())).rejects.toThrow();
    } finally {
      await broken.close();
    }
  });

  it('streams an export larger than one store page, in order', async () => {
    const big = await startGateway();
    try {
      const base = { time: new Date().toISOString(), client: 'land-office', userId: null, purpose: 'LAND_TRANSFER_REGISTRATION', caseId: 'HS-BULK', service: 'population.identity', version: 1, subjects: [], fields: [], outcome: 'released' as const, status: 200, errorCode: null, upstreams: [], latencyMs: 1, requestSha256: '0'.repeat(64), responseSha256: null };
      await Promise.all(Array.from({ length: 5200 }, (_, i) => big.gateway.audit.record({ ...base, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` })));
      const res = await big.get('/audit/export', auditor);
      const lines = ndjson(await res.text());
      expect(lines).toHaveLength(5201);
      expect(lines.every((e, i) => e.seq === i + 1)).toBe(true);
      expect(Number(res.headers.get('x-audit-head-seq'))).toBe(5201);
    } finally {
      await big.close();
    }
  });
});
