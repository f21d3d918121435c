/**
 * The PostgreSQL audit store behind a relay that the test breaks: connections cut under load (a
 * failover, a proxy restart), and a server that accepts connections but never answers. The
 * gateway must stay up, release nothing it could not log, answer every request in bounded time,
 * say so on /readyz, and recover by itself.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig, type TestGateway } from '../support/fixtures.ts';
import { dropSchemas, POSTGRES_URL } from '../support/postgres.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { eventually, lookUp, readiness, underLoad, wait } from './support.ts';

const POSTGRES = new URL(POSTGRES_URL);
const schemas: string[] = [];
let proxy: FaultProxy;
let gw: TestGateway;

async function gatewayThroughProxy(): Promise<TestGateway> {
  proxy = await startFaultProxy({ host: POSTGRES.hostname, port: Number(POSTGRES.port || 5432) });
  const via = new URL(POSTGRES);
  via.host = `127.0.0.1:${proxy.port}`;
  const schema = `t_faults_${process.pid}_${randomUUID().slice(0, 8)}`;
  schemas.push(schema);
  return startGateway(await testConfig((raw) => {
    raw.audit = { ...raw.audit, store: 'postgres', postgresUrl: via.href, postgresSchema: schema, postgresConnectTimeoutMs: 1000, postgresQueryTimeoutMs: 1000 };
  }));
}

beforeAll(async () => {
  gw = await gatewayThroughProxy();
});

afterEach(() => proxy.resume());

afterAll(async () => {
  await gw?.close();
  await proxy?.close();
  await dropSchemas(schemas);
});

/** Every released answer is in the chain, and the chain verifies. */
async function expectReleasedInChain(released: string[]) {
  for (const id of released) expect(await gw.gateway.audit.store.get(id), `entry ${id}`).not.toBeNull();
  const report = await gw.gateway.audit.verify();
  expect(report.ok).toBe(true);
}

describe('PostgreSQL connections cut under load', () => {
  it('keeps the process up: in-flight requests get AUDIT_UNAVAILABLE, later ones succeed, the chain holds every released answer', async () => {
    let stop = false;
    const load = underLoad(gw, 8, () => stop);
    let cut = 0;
    for (let i = 0; i < 6; i++) {
      await wait(250);
      cut += proxy.drop(i % 2 === 0 ? 'reset' : 'close');
    }
    await wait(500);
    stop = true;
    const answers = await load;

    expect(cut).toBeGreaterThan(0);
    // Only two answers are possible: released, or refused because the entry could not be committed.
    const kinds = new Set(answers.map((a) => `${a.status} ${a.code ?? ''}`.trim()));
    expect([...kinds].every((k) => k === '200' || k === '503 AUDIT_UNAVAILABLE'), [...kinds].join(', ')).toBe(true);
    expect(answers.some((a) => a.code === 'AUDIT_UNAVAILABLE')).toBe(true);

    // Once the connections are back, every request succeeds again.
    for (let i = 0; i < 10; i++) expect((await lookUp(gw, i)).status).toBe(200);
    await expectReleasedInChain(answers.filter((a) => a.status === 200).map((a) => a.requestId!));
    expect((await readiness(gw)).status).toBe(200);
  });
});

describe('PostgreSQL accepting connections but not answering', () => {
  it('answers every request within a bounded time with a 503, reports not ready, and recovers when the server answers again', async () => {
    expect((await lookUp(gw)).status).toBe(200);
    proxy.stall();
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => lookUp(gw, i)));
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.code).toBe('AUDIT_UNAVAILABLE');
      // Connection and statement timeouts are 1 s here: a request waits for at most a few of them, never for the outage.
      expect(a.ms).toBeLessThan(8000);
    }
    await eventually(async () => (await readiness(gw)).status === 503, 5000, '/readyz turns 503 while PostgreSQL stalls');
    expect((await readiness(gw)).body.checks.audit).toBe('unavailable');

    proxy.resume();
    await eventually(async () => (await readiness(gw)).status === 200, 10_000, '/readyz turns 200 once PostgreSQL answers');
    await eventually(async () => (await lookUp(gw)).status === 200, 10_000, 'requests succeed again');
    await expectReleasedInChain([]);
  });

  it('turns /readyz 503 when PostgreSQL is down and back when it returns', async () => {
    proxy.refuse();
    await eventually(async () => (await readiness(gw)).status === 503, 5000, 'not ready while PostgreSQL is unreachable');
    proxy.resume();
    await eventually(async () => (await readiness(gw)).status === 200, 10_000, 'ready again');
  });
});
