import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world } from '../adapters/world/index.ts';
import { createPopulationSimulator, listenOnLoopback } from '../adapters/index.ts';
import { agencyNames } from '../adapters/index.ts';

const AGENCIES = agencyNames();
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the Prometheus text exposition format (comments skipped; label values without escapes). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(gw: TestGateway): Promise<Sample[]> {
  const res = await fetch(`${gw.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseMetrics(await res.text());
}

/** Sum of the samples named `name` whose labels include `labels`. */
const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) => samples
  .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  .reduce((sum, s) => sum + s.value, 0);

const delta = (before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);

const citizen = world().citizens[0]!;

describe('metrics of a working gateway', () => {
  let gw: TestGateway;
  let before: Sample[];
  let after: Sample[];

  beforeAll(async () => {
    gw = await startGateway();
    before = await scrape(gw);
    const released = await gw.call('population.identity', { personalId: citizen.personalId }, { client: 'land-office' });
    expect(released.status).toBe(200);
    // edclient holds a grant for population.identity only.
    const denied = await gw.call('land.parcel', { ownerPersonalId: citizen.personalId }, { client: 'edclient' });
    expect((await denied.json()).code).toBe('FORBIDDEN_SERVICE');
    const badToken = await gw.call('population.identity', { personalId: citizen.personalId }, { token: 'not.a.jwt' });
    expect((await badToken.json()).code).toBe('AUTH_INVALID');
    const noToken = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect((await noToken.json()).code).toBe('AUTH_MISSING');
    after = await scrape(gw);
  });
  afterAll(async () => { await gw.close(); });

  it('counts requests by service, client, outcome and code', () => {
    expect(delta(before, after, 'gateway_requests_total', { service: 'population.identity', client: 'land-office', outcome: 'released', code: 'OK' })).toBe(1);
    expect(delta(before, after, 'gateway_requests_total', { service: 'land.parcel', client: 'edclient', outcome: 'denied', code: 'FORBIDDEN_SERVICE' })).toBe(1);
    // A failed authentication names no client: it is counted apart, not as a request.
    expect(delta(before, after, 'gateway_requests_total')).toBe(2);
  });

  it('observes request latency per service and outcome', () => {
    expect(delta(before, after, 'gateway_request_duration_seconds_count', { service: 'population.identity', outcome: 'released' })).toBe(1);
    expect(delta(before, after, 'gateway_request_duration_seconds_count', { service: 'land.parcel', outcome: 'denied' })).toBe(1);
    expect(delta(before, after, 'gateway_request_duration_seconds_bucket', { service: 'population.identity', outcome: 'released', le: '+Inf' })).toBe(1);
  });

  it('observes upstream calls per agency', () => {
    expect(delta(before, after, 'gateway_upstream_duration_seconds_count', { agency: 'population', outcome: 'ok' })).toBe(1);
    expect(delta(before, after, 'gateway_upstream_duration_seconds_count', { agency: 'land' })).toBe(0);
  });

  it('shows every agency breaker, closed', () => {
    for (const agency of AGENCIES) {
      const breaker = after.filter((s) => s.name === 'gateway_upstream_breaker_state' && s.labels.agency === agency);
      expect(breaker.map((s) => s.value), agency).toEqual([0]);
    }
  });

  it('observes audit commits and batch sizes: two entries, the failed authentications not chained', () => {
    expect(delta(before, after, 'gateway_audit_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(delta(before, after, 'gateway_audit_batch_size_count')).toBe(delta(before, after, 'gateway_audit_commit_duration_seconds_count'));
    expect(delta(before, after, 'gateway_audit_batch_size_sum')).toBe(2);
    expect(delta(before, after, 'gateway_audit_commit_failures_total')).toBe(0);
  });

  it('counts failed authentications by code', () => {
    expect(delta(before, after, 'gateway_auth_failures_total', { code: 'AUTH_INVALID' })).toBe(1);
    expect(delta(before, after, 'gateway_auth_failures_total', { code: 'AUTH_MISSING' })).toBe(1);
  });

  it('includes the process metrics', () => {
    expect(total(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });
});

describe('metrics of a failing upstream', () => {
  let gw: TestGateway;
  let down: Awaited<ReturnType<typeof listenOnLoopback>>;
  let after: Sample[];
  const CALLS = 5;

  beforeAll(async () => {
    // The population database answers every lookup with its own 503.
    down = await listenOnLoopback(createPopulationSimulator({ failureRate: 1 }));
    gw = await startGateway(await testConfig((raw) => { raw.upstreams.population.url = down.url; }));
    for (let i = 0; i < CALLS; i++) {
      const res = await gw.call('population.identity', { personalId: citizen.personalId }, { client: 'land-office' });
      expect(res.status).toBe(503);
      expect((await res.json()).code).toBe('UPSTREAM_UNAVAILABLE');
    }
    after = await scrape(gw);
  });
  afterAll(async () => {
    await gw.close();
    await down.close();
  });

  it('counts the requests as failed with the catalogue code', () => {
    expect(total(after, 'gateway_requests_total', { service: 'population.identity', outcome: 'failed', code: 'UPSTREAM_UNAVAILABLE' })).toBe(CALLS);
    expect(total(after, 'gateway_request_duration_seconds_count', { service: 'population.identity', outcome: 'failed' })).toBe(CALLS);
  });

  it('observes each failed upstream call', () => {
    expect(total(after, 'gateway_upstream_duration_seconds_count', { agency: 'population', outcome: 'error' })).toBe(CALLS);
    expect(total(after, 'gateway_upstream_duration_seconds_count', { agency: 'population', outcome: 'ok' })).toBe(0);
  });

  it('shows the population breaker open and the others closed', () => {
    // At least CALLS consecutive failures reached the breaker (threshold 5 in the test config).
    expect(total(after, 'gateway_upstream_breaker_state', { agency: 'population' })).toBe(2);
    for (const agency of AGENCIES.filter((a) => a !== 'population')) expect(total(after, 'gateway_upstream_breaker_state', { agency })).toBe(0);
  });

  it('still audits the failures', () => {
    expect(total(after, 'gateway_audit_batch_size_sum')).toBe(CALLS);
  });
});
