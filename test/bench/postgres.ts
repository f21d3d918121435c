/**
 * (h) The shared store under the same load: gateways with the PostgreSQL audit store, first one
 * instance, then two instances appending to one chain (each on its own data directory and
 * signing key, the chain in one schema). Each batch holds the chain head's row lock from reading
 * the head to its COMMIT, and each instance's writer has one batch in flight at a time, so
 * instances take turns at the head and an instance never queues a second commit behind its own.
 */
import pg from 'pg';
import type { PacedResult } from './paced.ts';
import type { Child } from './processes.ts';

export const BENCH_POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PostgresFigures { requestsPerSecond: number; addedP50: number; addedP99: number; batchMean: number }

interface Drivers {
  spawn(schema: string): Promise<Child>;
  /** Closed-loop throughput over these gateways together, in answered requests a second. */
  closedLoop(urls: string[], amount: number): Promise<number>;
  /** A paced run at the fixed rate, spread evenly over these gateways. */
  paced(urls: string[]): Promise<PacedResult>;
  /** The same paced run against the simulator alone. */
  direct(): Promise<PacedResult>;
  requests: number;
}

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Mean entries per commit over these gateways, from their /metrics. */
async function batchMean(urls: string[]): Promise<number> {
  let sum = 0;
  let count = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    sum += Number(/^gateway_audit_batch_size_sum (\S+)$/m.exec(text)?.[1] ?? 0);
    count += Number(/^gateway_audit_batch_size_count (\S+)$/m.exec(text)?.[1] ?? 0);
  }
  return count ? sum / count : NaN;
}

/** Runs (h); null when no PostgreSQL answers at BENCH_POSTGRES_URL. */
export async function postgresRounds(d: Drivers): Promise<{ one: PostgresFigures; two: PostgresFigures } | null> {
  if (!(await reachable())) return null;
  const schema = `bench_audit_${process.pid}_${Date.now()}`;
  const measure = async (gateways: Child[]): Promise<PostgresFigures> => {
    const urls = gateways.map((g) => g.url);
    await d.closedLoop(urls, 2_000); // warm-up
    const requestsPerSecond = await d.closedLoop(urls, d.requests);
    const direct = await d.direct();
    const paced = await d.paced(urls);
    return { requestsPerSecond, addedP50: paced.p50 - direct.p50, addedP99: paced.p99 - direct.p99, batchMean: await batchMean(urls) };
  };
  const gateways: Child[] = [];
  try {
    gateways.push(await d.spawn(schema));
    const one = await measure(gateways);
    gateways.push(await d.spawn(schema));
    const two = await measure(gateways);
    return { one, two };
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
    const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}
