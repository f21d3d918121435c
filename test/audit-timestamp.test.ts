/**
 * Outside time-stamps on the audit log, against an independent authority: OpenSSL's own TSA
 * (test/support/openssl-tsa.ts). The tokens (tsp.ts), the background stamper with its outage
 * behaviour (anchoring.ts), the stores' table and its migration, and the offline verifier
 * catching an insider who rewrote the log with the gateway's own key.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { entryHash, type AuditEntry, type Checkpoint } from '../gateway/audit/index.ts';
import { createPostgresStore } from '../gateway/audit/postgres-store.ts';
import { createSqliteStore } from '../gateway/audit/sqlite-store.ts';
import type { StampedCheckpoint } from '../gateway/audit/timestamps.ts';
import { parseTsaCertificates, stampedBytes, timeStampRequest, TimestampError, tokenOfResponse, verifyToken, type TsaCertificate } from '../gateway/audit/tsp.ts';
import { ConfigError } from '../gateway/config/errors.ts';
import { createGateway } from '../gateway/server.ts';
import { eventually } from './support/eventually.ts';
import { parseExport } from './support/export.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';
import { startOpensslTsa, type OpensslTsa } from './support/openssl-tsa.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const citizen = world().citizens[0]!;
const auditor = { client: 'auditor' };
const run = promisify(execFile);

/** `gateway <args>` as an auditor runs it; resolves with the exit code and what it printed. */
async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, ['bin/gateway.mjs', ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '' };
  }
}
/** The JSON report `audit verify` prints before its verdict line. */
const reportOf = (stdout: string) => JSON.parse(stdout.slice(0, stdout.lastIndexOf('}') + 1));

/** A sink for the gateway's pino lines. */
function logSink() {
  const lines: Record<string, any>[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  return { lines, sink, said: (msg: RegExp) => lines.filter((l) => msg.test(l.msg)) };
}

/** The config patch that time-stamps checkpoints with `authorities`, retrying fast. */
const stamping = (authorities: { url: string; certificateFile: string }[], extra: Record<string, unknown> = {}) => (raw: any) => {
  raw.logLevel = 'info';
  raw.audit.timestamping = { authorities, retryBaseDelayMs: 50, retryMaxDelayMs: 200, timeoutMs: 5000, ...extra };
};
const authority = (tsa: OpensslTsa, cert: OpensslTsa = tsa) => ({ url: tsa.url, certificateFile: cert.certFile });

const lookUp = (gw: TestGateway) => gw.call('population.identity', { personalId: citizen.personalId });
const listed = async (gw: TestGateway): Promise<StampedCheckpoint[]> => {
  const res = await gw.get('/audit/checkpoints', auditor);
  expect(res.status).toBe(200);
  return (await res.json()).checkpoints;
};
const readyz = async (gw: TestGateway) => {
  const res = await fetch(`${gw.url}/readyz`);
  return { status: res.status, body: await res.json() };
};
/** One metric's value (its samples with `labels` summed) from /metrics. */
async function metric(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

let tsa: OpensslTsa;
let other: OpensslTsa;
let certs: TsaCertificate[];
let work: string;

beforeAll(async () => {
  [tsa, other] = await Promise.all([startOpensslTsa('first'), startOpensslTsa('second')]);
  certs = parseTsaCertificates(readFileSync(tsa.certFile, 'utf8'), tsa.certFile);
  work = mkdtempSync(join(tmpdir(), 'gw-anchoring-'));
});
afterAll(async () => {
  await Promise.all([tsa?.close(), other?.close()]);
  rmSync(work, { recursive: true, force: true });
});

/** A token from the TSA for `data`, as the stamper asks for one. */
async function tokenFor(data: Uint8Array, from = tsa) {
  const query = timeStampRequest(data);
  const res = await fetch(from.url, { method: 'POST', headers: { 'Content-Type': 'application/timestamp-query' }, body: query.der });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/timestamp-reply');
  return { token: tokenOfResponse(new Uint8Array(await res.arrayBuffer())), nonce: query.nonce };
}
const problemOf = (p: Promise<unknown>) => p.then(() => null, (e) => (e instanceof TimestampError ? e.problem : e));

describe('RFC 3161 tokens (tsp.ts) from OpenSSL\'s TSA', () => {
  const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJzZXEiOjF9.c2lnbmF0dXJl';
  const data = stampedBytes(jws);

  it('verifies a token over a checkpoint\'s JWS: imprint, nonce, signature, time; OpenSSL verifies the same token', async () => {
    const before = new Date(Date.now() - 1000);
    const { token, nonce } = await tokenFor(data);
    const checked = await verifyToken(token, { data, certificates: certs, nonce, notBefore: before, toleranceSeconds: 0 });
    expect(checked.nonce).toBe(nonce);
    expect(checked.genTime.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(checked.signer.source).toBe(tsa.certFile);
    expect(await tsa.opensslVerify(token, data)).toMatch(/Verification: OK/);
  });

  it('refuses a token for other data, with another nonce, from another authority, or dated before its checkpoint', async () => {
    const { token, nonce } = await tokenFor(data);
    const want = { data, certificates: certs, nonce, notBefore: new Date(0), toleranceSeconds: 0 };
    expect(await problemOf(verifyToken(token, { ...want, data: stampedBytes(`${jws}x`) }))).toBe('imprint');
    expect(await problemOf(verifyToken(token, { ...want, nonce: '0badc0ffee' }))).toBe('nonce');
    const strangers = parseTsaCertificates(readFileSync(other.certFile, 'utf8'), other.certFile);
    expect(await problemOf(verifyToken(token, { ...want, certificates: strangers }))).toBe('signature');
    // The other authority's own token for the same data is refused under this one's certificate, whatever certificate it carries.
    const foreign = await tokenFor(data, other);
    expect(await problemOf(verifyToken(foreign.token, { ...want, nonce: foreign.nonce }))).toBe('signature');
    expect(await problemOf(verifyToken(token, { ...want, notBefore: new Date(Date.now() + 3_600_000), toleranceSeconds: 60 }))).toBe('time');
    expect(await problemOf(verifyToken(token.subarray(0, 40), want))).toBe('malformed');
  });

  it('reads an authority\'s refusal as such (a SHA-1 query, which this TSA does not take)', async () => {
    writeFileSync(join(work, 'data.bin'), data);
    await run('openssl', ['ts', '-query', '-data', 'data.bin', '-sha1', '-cert', '-out', 'sha1.tsq'], { cwd: work });
    const res = await fetch(tsa.url, { method: 'POST', headers: { 'Content-Type': 'application/timestamp-query' }, body: readFileSync(join(work, 'sha1.tsq')) });
    expect(res.status).toBe(200);
    const reply = new Uint8Array(await res.arrayBuffer());
    expect(() => tokenOfResponse(reply)).toThrow(TimestampError);
    expect(await problemOf(Promise.resolve().then(() => tokenOfResponse(reply)))).toBe('status');
  });

  it('takes only certificates with the timeStamping extended key usage', () => {
    expect(() => parseTsaCertificates(readFileSync(tsa.caFile, 'utf8'), tsa.caFile)).toThrow(/timeStamping/);
    expect(() => parseTsaCertificates('not a certificate', 'x.pem')).toThrow(/no PEM certificate/);
  });
});

describe('a gateway that time-stamps its checkpoints', () => {
  let gw: TestGateway;
  const log = logSink();

  beforeAll(async () => {
    gw = await startGateway(await testConfig(stamping([authority(tsa)])), { logDestination: log.sink });
  });
  afterAll(() => gw?.close());

  it('stamps every signed checkpoint in the background and serves the token with it', async () => {
    expect((await lookUp(gw)).status).toBe(200);
    await gw.gateway.audit.checkpoint();
    expect((await lookUp(gw)).status).toBe(200);
    await gw.gateway.audit.checkpoint();
    const checkpoints = await eventually(async () => {
      const cps = await listed(gw);
      expect(cps.length).toBeGreaterThanOrEqual(2);
      for (const cp of cps) expect(cp.timestamp).not.toBeNull();
      return cps;
    });
    for (const cp of checkpoints) {
      expect(cp.timestamp).toMatchObject({ tsa: tsa.url, token: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/) });
      const token = Buffer.from(cp.timestamp!.token, 'base64');
      const checked = await verifyToken(token, { data: stampedBytes(cp.jws), certificates: certs, notBefore: new Date(cp.time), toleranceSeconds: 1 });
      expect(checked.genTime.toISOString()).toBe(cp.timestamp!.time);
      // What is stamped is the SHA-256 of the checkpoint's compact JWS: OpenSSL checks the same imprint.
      expect(await tsa.opensslVerify(token, stampedBytes(cp.jws))).toMatch(/Verification: OK/);
    }
    await eventually(async () => {
      const ready = await readyz(gw);
      expect(ready.status).toBe(200);
      expect(ready.body.checks.anchoring).toBe('ok');
      expect(ready.body.anchoring).toMatchObject({ state: 'ok', unstamped: 0, lagSeconds: 0, maxLagSeconds: null });
      expect(await metric(gw, 'gateway_audit_unanchored_checkpoints')).toBe(0);
    });
    expect(await metric(gw, 'gateway_audit_timestamp_requests_total', { outcome: 'ok' })).toBe(checkpoints.length);
    expect(log.said(/^audit anchoring on/)).toHaveLength(1);
  });

  it('is checked by /audit/verify: each token of the hot store against the authority, a token moved to another checkpoint refused', async () => {
    const verify = async () => (await gw.get('/audit/verify', { client: 'auditor', purpose: 'AUDIT_REVIEW' })).json();
    const intact = await verify();
    expect(intact).toMatchObject({ ok: true, anchoring: { invalid: null, contradiction: null } });
    expect(intact.anchoring.stamped).toBeGreaterThanOrEqual(2);
    const db = new Database(gw.config.audit.sqliteFile ?? join(gw.config.dataDir, 'audit.sqlite'));
    try {
      const [first, second] = db.prepare('SELECT seq, token FROM audit_checkpoint_timestamps ORDER BY seq').all() as { seq: number; token: Buffer }[];
      db.prepare('UPDATE audit_checkpoint_timestamps SET token = ? WHERE seq = ?').run(first!.token, second!.seq);
      const moved = await verify();
      expect(moved).toMatchObject({ ok: false, problem: 'timestamp_invalid', firstBadSeq: second!.seq });
      db.prepare('UPDATE audit_checkpoint_timestamps SET token = ? WHERE seq = ?').run(second!.token, second!.seq);
    } finally {
      db.close();
    }
    expect(await verify()).toMatchObject({ ok: true });
  });

  it('logs no token', () => {
    const text = JSON.stringify(log.lines);
    expect(text).not.toMatch(/MII[A-Za-z0-9+/]{40}/);
  });
});

describe('npm start without an authority', () => {
  it('runs with anchoring off and says so in one line at start', async () => {
    const log = logSink();
    const gw = await startGateway(await testConfig((raw) => { raw.logLevel = 'info'; }), { logDestination: log.sink });
    try {
      expect(log.said(/^audit anchoring off/)).toHaveLength(1);
      expect((await lookUp(gw)).status).toBe(200);
      await gw.gateway.audit.checkpoint();
      expect((await listed(gw)).map((c) => c.timestamp)).toEqual([null]);
      expect((await readyz(gw)).body).toMatchObject({ status: 'ready', checks: { anchoring: 'off' }, anchoring: { state: 'off' } });
    } finally {
      await gw.close();
    }
  });

  it('refuses a certificate file it cannot read or that is no time-stamping certificate, naming the key', async () => {
    const bad = async (file: string) => {
      const cfg = await testConfig(stamping([{ url: tsa.url, certificateFile: file }]));
      try {
        await createGateway(cfg, { logDestination: logSink().sink });
        return null;
      } catch (e) {
        return e;
      } finally {
        rmSync(cfg.dataDir, { recursive: true, force: true });
      }
    };
    for (const file of [join(work, 'missing.pem'), tsa.caFile]) {
      const e = await bad(file);
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message).toMatch(/^\/audit\/timestamping\/authorities\/0\/certificateFile: /);
    }
  });
});

describe('authorities tried in order', () => {
  it('takes the token of the first that gives a good one: one down, one signing with a key not configured, then the right one', async () => {
    const down = await startOpensslTsa('down');
    await down.stop();
    const gw = await startGateway(await testConfig(stamping([authority(down), authority(tsa, other), authority(other)])), { logDestination: logSink().sink });
    try {
      expect((await lookUp(gw)).status).toBe(200);
      await gw.gateway.audit.checkpoint();
      const [cp] = await eventually(async () => {
        const cps = await listed(gw);
        expect(cps[0]?.timestamp).not.toBeNull();
        return cps;
      });
      expect(cp!.timestamp!.tsa).toBe(other.url);
      expect(await metric(gw, 'gateway_audit_timestamp_requests_total', { tsa: down.url, outcome: 'ECONNREFUSED' })).toBe(1);
      expect(await metric(gw, 'gateway_audit_timestamp_requests_total', { tsa: tsa.url, outcome: 'signature' })).toBe(1);
      expect(await metric(gw, 'gateway_audit_timestamp_requests_total', { tsa: other.url, outcome: 'ok' })).toBe(1);
    } finally {
      await gw.close();
      await down.close();
    }
  });
});

describe('an authority outage', () => {
  let flaky: OpensslTsa;
  beforeAll(async () => { flaky = await startOpensslTsa('flaky'); });
  afterAll(() => flaky?.close());

  it('never stops traffic: the lag is measured and logged once, and every checkpoint is stamped when the authority returns', async () => {
    const log = logSink();
    const gw = await startGateway(await testConfig(stamping([authority(flaky)])), { logDestination: log.sink });
    try {
      await flaky.stop();
      for (let i = 0; i < 3; i++) {
        expect((await lookUp(gw)).status).toBe(200);
        await gw.gateway.audit.checkpoint();
      }
      // Several attempts fail (backing off), the outage is said once, and the gateway stays ready.
      await eventually(async () => expect(await metric(gw, 'gateway_audit_timestamp_requests_total', { outcome: 'ECONNREFUSED' })).toBeGreaterThanOrEqual(4));
      expect(await metric(gw, 'gateway_audit_unanchored_checkpoints')).toBe(3);
      expect(await metric(gw, 'gateway_audit_anchor_lag_seconds')).toBeGreaterThan(0);
      const ready = await readyz(gw);
      expect(ready.status).toBe(200);
      expect(ready.body.anchoring).toMatchObject({ state: 'lagging', unstamped: 3, maxLagSeconds: null });
      expect(ready.body.anchoring.lagSeconds).toBeGreaterThan(0);
      expect((await lookUp(gw)).status).toBe(200);
      expect(log.said(/^time-stamping authorities unavailable/)).toHaveLength(1);
      expect(log.said(/^time-stamping authorities unavailable/)[0]).toMatchObject({ level: 'warn', tsa: flaky.url, problem: 'ECONNREFUSED' });

      await flaky.start();
      const cps = await eventually(async () => {
        const all = await listed(gw);
        expect(all.every((c) => c.timestamp)).toBe(true);
        return all;
      });
      expect(cps).toHaveLength(3);
      for (const cp of cps) await verifyToken(Buffer.from(cp.timestamp!.token, 'base64'), { data: stampedBytes(cp.jws), certificates: parseTsaCertificates(readFileSync(flaky.certFile, 'utf8'), flaky.certFile), notBefore: new Date(cp.time), toleranceSeconds: 1 });
      // The stamper counts a stamp once it is stored: a moment after the list shows it.
      await eventually(async () => {
        expect(await metric(gw, 'gateway_audit_unanchored_checkpoints')).toBe(0);
        expect(await metric(gw, 'gateway_audit_anchor_lag_seconds')).toBe(0);
        expect((await readyz(gw)).body.anchoring).toMatchObject({ state: 'ok', unstamped: 0 });
      });
      expect(log.said(/^time-stamping authorities unavailable/)).toHaveLength(1);
      expect(log.said(/^time-stamping authority answers again/)).toHaveLength(1);
    } finally {
      await flaky.start().catch(() => {});
      await gw.close();
    }
  });

  it('treats an authority answering HTTP errors as down', async () => {
    const gw = await startGateway(await testConfig(stamping([authority(flaky)])), { logDestination: logSink().sink });
    try {
      flaky.failWith(503);
      expect((await lookUp(gw)).status).toBe(200);
      await gw.gateway.audit.checkpoint();
      await eventually(async () => expect(await metric(gw, 'gateway_audit_timestamp_requests_total', { outcome: 'http_503' })).toBeGreaterThanOrEqual(2));
      expect((await readyz(gw)).body.anchoring.state).toBe('lagging');
      flaky.failWith(null);
      await eventually(async () => expect((await listed(gw))[0]!.timestamp).not.toBeNull());
    } finally {
      flaky.failWith(null);
      await gw.close();
    }
  });

  it('with audit.timestamping.maxLagSeconds: data requests refused (AUDIT_ANCHOR_LAG, Retry-After) past it, accepted again once stamped', async () => {
    const log = logSink();
    const gw = await startGateway(await testConfig(stamping([authority(flaky)], { maxLagSeconds: 1 })), { logDestination: log.sink });
    try {
      await flaky.stop();
      expect((await lookUp(gw)).status).toBe(200);
      await gw.gateway.audit.checkpoint();
      const refused = await eventually(async () => {
        const res = await lookUp(gw);
        expect(res.status).toBe(503);
        return res;
      }, { timeoutMs: 10_000, intervalMs: 100 });
      const problem = await refused.json();
      expect(problem.code).toBe('AUDIT_ANCHOR_LAG');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const ready = await readyz(gw);
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 'not_ready', checks: { anchoring: 'over_max_lag' }, anchoring: { state: 'over_max_lag', maxLagSeconds: 1 } });
      // The refusal is audited; the audit endpoints still answer.
      const { entries } = await (await gw.get(`/audit/entries?outcome=failed&limit=1`, auditor)).json();
      expect(entries[0]).toMatchObject({ id: problem.requestId, errorCode: 'AUDIT_ANCHOR_LAG', status: 503 });
      expect((await lookUp(gw)).status).toBe(503);
      expect(log.said(/^audit anchoring lag over/)).toHaveLength(1);

      await flaky.start();
      await eventually(async () => expect((await lookUp(gw)).status).toBe(200), { timeoutMs: 10_000, intervalMs: 100 });
      expect((await readyz(gw)).status).toBe(200);
      expect((await listed(gw)).every((c) => c.timestamp)).toBe(true);
      await eventually(() => expect(log.said(/^audit anchoring caught up/)).toHaveLength(1));
    } finally {
      await flaky.start().catch(() => {});
      await gw.close();
    }
  });

  it('stamps at the next start what was signed while no authority was configured', async () => {
    const first = await startGateway(await testConfig((raw) => { raw.logLevel = 'silent'; }));
    expect((await lookUp(first)).status).toBe(200);
    await first.gateway.audit.checkpoint();
    // Closed without removing its data directory; its shutdown checkpoint has no stamp either.
    await first.gateway.close();
    let unused = '';
    const after = await startGateway(await testConfig((raw) => {
      stamping([authority(tsa)])(raw);
      unused = raw.dataDir;
      raw.dataDir = first.config.dataDir;
    }), { logDestination: logSink().sink });
    rmSync(unused, { recursive: true, force: true });
    try {
      const cps = await eventually(async () => {
        const all = await listed(after);
        expect(all.map((c) => c.seq)).toEqual([1]);
        expect(all[0]!.timestamp).not.toBeNull();
        return all;
      });
      await verifyToken(Buffer.from(cps[0]!.timestamp!.token, 'base64'), { data: stampedBytes(cps[0]!.jws), certificates: certs, notBefore: new Date(cps[0]!.time), toleranceSeconds: 0 });
    } finally {
      await after.close();
    }
  });
});

describe('stores made before time-stamps', () => {
  const entry = (i: number) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, time: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), client: 'portal', userId: null,
    purpose: 'PUBLIC_SERVICE_PREFILL', caseId: null, service: 'population.identity', version: 1, subjects: [], fields: [], outcome: 'released' as const,
    status: 200, errorCode: null, upstreams: [], latencyMs: 1, requestSha256: '0'.repeat(64), responseSha256: null,
  });
  const stamp = { tsa: 'http://127.0.0.1:1/tsa', token: Buffer.from('token bytes').toString('base64'), time: '2026-01-01T00:00:10.000Z' };
  const checkpointOf = (e: AuditEntry): Checkpoint => ({ seq: e.seq, hash: e.hash, time: '2026-01-01T00:00:09.000Z', jws: `jws-${e.seq}` });

  it('SQLite: an audit file without the table gains it at its next open, its checkpoints waiting for a stamp', async () => {
    const file = join(work, 'old.sqlite');
    const old = createSqliteStore(file);
    const [e] = await old.appendBatch([entry(1)]);
    await old.saveCheckpoint(checkpointOf(e!));
    await old.close();
    const raw = new Database(file);
    raw.exec('DROP TABLE audit_checkpoint_timestamps');
    raw.close();
    const reopened = createSqliteStore(file);
    try {
      expect(await reopened.timestamps!.pending(10)).toEqual({ count: 1, checkpoints: [checkpointOf(e!)] });
      await reopened.timestamps!.save(1, stamp);
      expect(await reopened.timestamps!.pending(10)).toEqual({ count: 0, checkpoints: [] });
      expect([...(await reopened.timestamps!.all())]).toEqual([[1, stamp]]);
      expect(await reopened.checkpoints()).toEqual([checkpointOf(e!)]);
    } finally {
      await reopened.close();
    }
  });

  it('PostgreSQL: a schema at migration 2 is migrated at start, its checkpoints kept', async () => {
    const schema = `t_anchoring_${process.pid}_${Date.now()}`;
    const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      const old = await createPostgresStore({ url: POSTGRES_URL, schema });
      const [e] = await old.appendBatch([entry(1)]);
      await old.saveCheckpoint(checkpointOf(e!));
      await old.close();
      // What the gateway left before this migration existed.
      await admin.query(`DROP TABLE "${schema}".audit_checkpoint_timestamps; DELETE FROM "${schema}".schema_migrations WHERE version = 3`);
      const reopened = await createPostgresStore({ url: POSTGRES_URL, schema });
      try {
        const { rows } = await admin.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
        expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5]);
        expect(await reopened.timestamps!.pending(10)).toEqual({ count: 1, checkpoints: [checkpointOf(e!)] });
        await reopened.timestamps!.save(1, stamp);
        await reopened.timestamps!.save(1, { ...stamp, tsa: 'http://127.0.0.1:2/tsa' });
        expect([...(await reopened.timestamps!.all())]).toEqual([[1, stamp]]);
        expect(await reopened.timestamps!.pending(10)).toEqual({ count: 0, checkpoints: [] });
      } finally {
        await reopened.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });
});

describe('the insider is caught: a log rewritten with the gateway\'s own key', () => {
  let gw: TestGateway;
  const file = (name: string, content: string) => { const f = join(work, name); writeFileSync(f, content); return f; };
  const ndjson = (entries: AuditEntry[], head: Checkpoint) => `${entries.map((e) => JSON.stringify(e)).join('\n')}\n${JSON.stringify({ head })}\n`;
  let original: { entries: AuditEntry[]; head: Checkpoint; checkpoints: StampedCheckpoint[] };
  let files: Record<string, string>;
  /** The entry rewritten, and the stamped checkpoints either side of it. */
  const REWRITTEN = 4;
  const BELOW = 3;
  const ABOVE = 6;

  beforeAll(async () => {
    gw = await startGateway(await testConfig(stamping([authority(tsa)])), { logDestination: logSink().sink });
    // Checkpoints after entries 3, 6, 9 and 10.
    for (let seq = 1; seq <= 10; seq++) {
      expect((await lookUp(gw)).status).toBe(200);
      if (seq % 3 === 0 || seq === 10) await gw.gateway.audit.checkpoint();
    }
    const checkpoints = await eventually(async () => {
      const cps = await listed(gw);
      expect(cps.map((c) => c.seq)).toEqual([3, 6, 9, 10]);
      expect(cps.every((c) => c.timestamp)).toBe(true);
      return cps;
    });
    const { entries, head } = parseExport(await (await gw.get('/audit/export', auditor)).text());
    original = { entries, head, checkpoints };

    // The insider: entry 4 said another client; every hash after it is recomputed, every checkpoint from it on signed again with the gateway's key.
    const signer = gw.gateway.signer;
    let prevHash = entries[REWRITTEN - 2]!.hash;
    const rewritten = entries.map((e) => {
      if (e.seq < REWRITTEN) return e;
      const changed = { ...e, ...(e.seq === REWRITTEN ? { client: 'land-office' } : {}), prevHash };
      changed.hash = entryHash(changed);
      prevHash = changed.hash;
      return changed;
    });
    const resign = async <C extends Checkpoint>(cp: C): Promise<C> => {
      if (cp.seq < REWRITTEN) return cp;
      const hash = rewritten[cp.seq - 1]!.hash;
      return { ...cp, hash, jws: await signer.signCheckpoint({ seq: cp.seq, hash, time: cp.time }) };
    };
    const resigned = await Promise.all(checkpoints.map(resign));
    const newHead = await resign(head);
    files = {
      export: file('audit.ndjson', ndjson(entries, head)),
      checkpoints: file('checkpoints.json', JSON.stringify({ checkpoints })),
      rewritten: file('rewritten.ndjson', ndjson(rewritten, newHead)),
      // The re-signed checkpoints keep the tokens of the ones they replace…
      resignedWithTokens: file('resigned-tokens.json', JSON.stringify({ checkpoints: resigned })),
      // …or lose them.
      resignedWithout: file('resigned-bare.json', JSON.stringify({ checkpoints: resigned.map((c) => (c.seq < REWRITTEN ? c : { ...c, timestamp: null })) })),
      allBare: file('all-bare.json', JSON.stringify({ checkpoints: resigned.map((c) => ({ ...c, timestamp: null })) })),
      jwks: file('jwks.json', await (await fetch(`${gw.url}/.well-known/jwks.json`)).text()),
    };
  });
  afterAll(() => gw?.close());

  const verify = (exportFile: string, checkpointsFile: string, cert = tsa.certFile) =>
    cli(['audit', 'verify', '--export', exportFile, '--checkpoints', checkpointsFile, '--jwks', files.jwks!, '--tsa-cert', cert]);

  it('an intact stamped log verifies, anchored up to its last checkpoint', async () => {
    const r = await verify(files.export!, files.checkpoints!);
    expect(r.stdout).toContain(`chain intact: ${original.head.seq} entries`);
    expect(r.stdout).toContain(`anchored up to seq 10 (time-stamped by ${tsa.url} at ${original.checkpoints.at(-1)!.timestamp!.time})`);
    expect(r.code).toBe(0);
    expect(reportOf(r.stdout).anchoring).toMatchObject({ stamped: 4, unstamped: 0, anchoredUpTo: 10, invalid: null, contradiction: null });
  });

  it('the gateway\'s signatures alone do not catch it', async () => {
    const r = await cli(['audit', 'verify', '--export', files.rewritten!, '--checkpoints', files.resignedWithout!, '--jwks', files.jwks!]);
    expect(r.stdout).toContain('chain intact');
    expect(r.code).toBe(0);
  });

  it('a time-stamped checkpoint kept from before contradicts the rewritten chain: the verifier names the entry', async () => {
    const r = await verify(files.rewritten!, files.checkpoints!);
    expect(r.code).toBe(2);
    const rewrittenHash = parseExport(readFileSync(files.rewritten!, 'utf8')).entries[ABOVE - 1]!.hash;
    expect(r.stdout).toContain(`CHAIN CONTRADICTS A TIME-STAMPED CHECKPOINT at seq ${ABOVE}: the chain's entry ${ABOVE} hashes to ${rewrittenHash}`);
    expect(r.stdout).toContain(`anchored up to seq ${BELOW}`);
    expect(r.stdout).toContain(`an entry from seq ${BELOW + 1} to ${ABOVE} was changed after it was stamped`);
    expect(reportOf(r.stdout)).toMatchObject({
      ok: false, problem: 'timestamp_contradiction', firstBadSeq: ABOVE, verifiedUpTo: BELOW,
      anchoring: { anchoredUpTo: BELOW, contradiction: { seq: ABOVE, stampedHash: original.entries[ABOVE - 1]!.hash, chainHash: rewrittenHash, tsa: tsa.url } },
    });
  });

  it('re-signed checkpoints carrying the old tokens: the tokens stamp other checkpoints', async () => {
    const r = await verify(files.rewritten!, files.resignedWithTokens!);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`TIME-STAMP INVALID at checkpoint seq ${ABOVE}: imprint`);
    expect(reportOf(r.stdout)).toMatchObject({ ok: false, problem: 'timestamp_invalid', firstBadSeq: ABOVE, anchoring: { anchoredUpTo: BELOW, invalid: { seq: ABOVE, problem: 'imprint' } } });
  });

  it('re-signed checkpoints without tokens: anchored only below the change, and not at all once every token is gone', async () => {
    const some = await verify(files.rewritten!, files.resignedWithout!);
    expect(some.stdout).toContain(`anchored up to seq ${BELOW} (`);
    expect(some.stdout).toContain('3 checkpoints without a time-stamp');
    expect(reportOf(some.stdout).anchoring).toMatchObject({ anchoredUpTo: BELOW, stamped: 1, unstamped: 3 });
    expect(BELOW).toBeLessThan(REWRITTEN);
    const none = await verify(files.rewritten!, files.allBare!);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('NOT ANCHORED: no checkpoint carries a valid time-stamp (4 without one)');
  });

  it('takes no token from an authority other than the one named by --tsa-cert', async () => {
    const r = await verify(files.export!, files.checkpoints!, other.certFile);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`TIME-STAMP INVALID at checkpoint seq ${BELOW}: signature`);
  });
});
