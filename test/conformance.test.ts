/**
 * The conformance suite every adapter passes, through the gateway's pipeline with nock standing
 * in for the agency system (replaying payloads recorded from its simulator): success, no data,
 * timeout, 5xx, malformed body, contract-breaking answer, breaker opening and recovering; each
 * with its catalogue code and an audit entry with the right outcome.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import nock from 'nock';
import { fixtures, adaptersAt } from './conformance/fixtures.ts';
import { recordExchanges, type Recorded } from './conformance/record.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const upstreamHost = (agency: string) => `http://${agency}.conformance.test`;
const TIMEOUT_MS = 250;

describe.each(fixtures)('conformance: $agency adapter ($service)', (f) => {
  let success: Recorded[];
  let noData: Recorded[];
  let gw: TestGateway;
  let fragile: TestGateway;

  beforeAll(async () => {
    const recordingCfg = await testConfig();
    success = await recordExchanges(f.agency, (url) => f.call(adaptersAt(recordingCfg, f.agency, url), f.request));
    noData = await recordExchanges(f.agency, (url) => f.call(adaptersAt(recordingCfg, f.agency, url), f.noData.request));
    nock.disableNetConnect();
    nock.enableNetConnect(/^(127\.0\.0\.1|localhost)(:\d+)?$/);
    const at = (threshold: number) => testConfig((raw) => {
      raw.upstreams[f.agency] = { url: upstreamHost(f.agency), resilience: { timeoutMs: TIMEOUT_MS, retries: 0, breakerThreshold: threshold, breakerHalfOpenAfterMs: 150 } };
    });
    gw = await startGateway(await at(1000));
    fragile = await startGateway(await at(2));
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => { await gw.close(); await fragile.close(); });

  /** Replays the recorded exchanges; the last one (the operation itself) is answered by `last` when given. */
  function replay(recorded: Recorded[], last?: (i: nock.Interceptor, rec: Recorded) => nock.Scope) {
    const scope = nock(upstreamHost(f.agency));
    recorded.forEach((rec, n) => {
      const interceptor = scope.intercept((p) => p === rec.path, rec.method);
      if (n === recorded.length - 1 && last) last(interceptor, rec);
      else interceptor.reply(rec.status, rec.response as nock.Body, rec.headers);
    });
    return scope;
  }
  const bodyText = (rec: Recorded) => (typeof rec.response === 'string' ? rec.response : JSON.stringify(rec.response));
  async function callAndAudit(g: TestGateway, request = f.request) {
    const res = await g.call(f.service, request, { client: 'land-office' });
    const body = await res.json();
    const entry = await g.gateway.audit.store.get(res.headers.get('x-request-id')!);
    return { status: res.status, body, entry };
  }

  it('records a genuine exchange with the simulator', () => {
    expect(success.length).toBeGreaterThan(0);
    expect(success.at(-1)!.status).toBe(200);
  });

  it('success: 200 with a released audit entry naming the upstream', async () => {
    replay(success);
    const before = new Date().toISOString();
    const { status, body, entry } = await callAndAudit(gw);
    const after = new Date().toISOString();
    expect(status).toBe(200);
    expect(entry).toMatchObject({ outcome: 'released', status: 200 });
    expect(entry!.upstreams.at(-1)).toMatchObject({ agency: f.agency, outcome: 'ok' });
    // The source envelope of every contract (contracts/_common: source): who answered, when (this
    // call, not a cached time), and the source's own reference: every fixture's source gives one,
    // and it is the very reference the audit entry records for the upstream call.
    const { source } = body;
    expect(source).toEqual({ agency: f.agency, retrievedAt: expect.any(String), reference: expect.any(String) });
    expect(new Date(source.retrievedAt).toISOString()).toBe(source.retrievedAt);
    expect(source.retrievedAt >= before && source.retrievedAt <= after, `retrievedAt ${source.retrievedAt} within ${before}..${after}`).toBe(true);
    expect(source.reference).toBe(entry!.upstreams.at(-1)!.reference);
  });

  it('no data: the catalogue answer for it', async () => {
    replay(noData);
    const { status, body, entry } = await callAndAudit(gw, f.noData.request);
    expect(status).toBe(f.noData.expect.status);
    if (f.noData.expect.status === 404) {
      expect(body.code).toBe(f.noData.expect.code);
      expect(entry).toMatchObject({ outcome: 'failed', errorCode: 'SUBJECT_NOT_FOUND' });
    } else {
      expect(f.noData.expect.empty(body)).toBe(true);
      expect(entry).toMatchObject({ outcome: 'released' });
    }
  });

  it('timeout: 504 UPSTREAM_TIMEOUT, audited as failed', async () => {
    replay(success, (i, rec) => i.delay(TIMEOUT_MS + 200).reply(rec.status, rec.response as nock.Body, rec.headers));
    const { status, body, entry } = await callAndAudit(gw);
    expect([status, body.code]).toEqual([504, 'UPSTREAM_TIMEOUT']);
    expect(entry).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_TIMEOUT' });
  });

  it('5xx: 503 UPSTREAM_UNAVAILABLE, audited as failed', async () => {
    replay(success, (i) => i.reply(500, '<html><body>Internal Server Error at 10.20.30.40</body></html>', { 'Content-Type': 'text/html' }));
    const { status, body, entry } = await callAndAudit(gw);
    expect([status, body.code]).toEqual([503, 'UPSTREAM_UNAVAILABLE']);
    expect(JSON.stringify(body)).not.toContain('10.20.30.40');
    expect(entry).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_UNAVAILABLE' });
  });

  it('malformed body: 502 UPSTREAM_BAD_RESPONSE, audited as failed', async () => {
    replay(success, (i) => i.reply(200, f.malformed.body, { 'Content-Type': f.malformed.contentType }));
    const { status, body, entry } = await callAndAudit(gw);
    expect([status, body.code]).toEqual([502, 'UPSTREAM_BAD_RESPONSE']);
    expect(entry).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_BAD_RESPONSE' });
  });

  it('contract-breaking answer: never passed on, 502 UPSTREAM_BAD_RESPONSE', async () => {
    const broken = f.breakContract(bodyText(success.at(-1)!));
    expect(broken).not.toBe(bodyText(success.at(-1)!));
    replay(success, (i, rec) => i.reply(200, broken, rec.headers));
    const { status, body, entry } = await callAndAudit(gw);
    expect([status, body.code]).toEqual([502, 'UPSTREAM_BAD_RESPONSE']);
    expect(JSON.stringify(body)).not.toContain('999000000000');
    expect(entry).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_BAD_RESPONSE' });
  });

  it('breaker: opens after consecutive failures, refuses without calling, half-opens and recovers', async () => {
    // The breaker times its pause (breakerHalfOpenAfterMs: 150) with Date.now(): only Date is
    // faked, so sockets and timeouts keep real timers while the pause is stepped through exactly.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      replay(success, (i) => i.times(2).reply(503, 'down'));
      for (let n = 0; n < 2; n++) expect((await callAndAudit(fragile)).body.code).toBe('UPSTREAM_UNAVAILABLE');
      const untouched = nock(upstreamHost(f.agency)).post(() => true).reply(200, '').get(() => true).reply(200, '');
      const refused = await callAndAudit(fragile);
      expect([refused.status, refused.body.code]).toEqual([503, 'UPSTREAM_UNAVAILABLE']);
      expect(refused.entry).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_UNAVAILABLE' });
      expect(untouched.pendingMocks()).toHaveLength(2); // the open breaker called nothing
      vi.advanceTimersByTime(149);
      const early = await callAndAudit(fragile);
      expect([early.status, early.body.code]).toEqual([503, 'UPSTREAM_UNAVAILABLE']);
      expect(untouched.pendingMocks()).toHaveLength(2); // still open 1 ms before the pause ends
      nock.cleanAll();
      vi.advanceTimersByTime(1);
      replay(success);
      const recovered = await callAndAudit(fragile);
      expect(recovered.status).toBe(200);
      expect(recovered.entry).toMatchObject({ outcome: 'released' });
    } finally {
      vi.useRealTimers();
    }
  });
});
