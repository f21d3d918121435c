import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { UpstreamObserver, BreakerState } from '../adapters/shared/upstream-client.ts';

/** Prometheus metrics of one gateway instance (prom-client, its own registry). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'gateway_requests_total', help: 'Requests by service, client, outcome and code', labelNames: ['service', 'client', 'outcome', 'code'], registers: [registry] });
  const latency = new Histogram({ name: 'gateway_request_duration_seconds', help: 'Request latency inside the gateway', labelNames: ['service', 'outcome'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  const authFailures = new Counter({ name: 'gateway_auth_failures_total', help: 'Failed authentications (logged and counted, not chained)', labelNames: ['code'], registers: [registry] });
  const upstreamLatency = new Histogram({ name: 'gateway_upstream_duration_seconds', help: 'Upstream call latency', labelNames: ['agency', 'operation', 'outcome'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  const breaker = new Gauge({ name: 'gateway_upstream_breaker_state', help: 'Circuit breaker state per agency: 0 closed, 1 half-open, 2 open', labelNames: ['agency'], registers: [registry] });
  const auditCommit = new Histogram({ name: 'gateway_audit_commit_duration_seconds', help: 'Audit batch commit latency', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  const auditBatch = new Histogram({ name: 'gateway_audit_batch_size', help: 'Entries per audit commit', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [registry] });
  const auditFailures = new Counter({ name: 'gateway_audit_commit_failures_total', help: 'Audit batches that failed to commit', registers: [registry] });
  const clientJwksFetches = new Counter({ name: 'gateway_client_jwks_fetches_total', help: "Fetches of clients' JWKS URLs, by client and outcome (ok, error)", labelNames: ['client', 'outcome'], registers: [registry] });
  const configGeneration = new Gauge({ name: 'gateway_config_generation', help: 'The config generation serving new requests: 1 at start, one more per reload applied', registers: [registry] });
  const configReloads = new Counter({ name: 'gateway_config_reloads_total', help: 'Config reloads by outcome (applied, refused)', labelNames: ['outcome'], registers: [registry] });

  const breakerValue: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };
  const upstreamObserver: UpstreamObserver = {
    onCall: (c) => upstreamLatency.observe({ agency: c.agency, operation: c.operation, outcome: c.outcome }, c.latencyMs / 1000),
    onBreakerState: (agency, state) => breaker.set({ agency }, breakerValue[state]),
  };
  return {
    registry, requests, latency, authFailures, upstreamLatency, breaker, auditCommit, auditBatch, auditFailures, clientJwksFetches, configGeneration, configReloads, upstreamObserver,
    initAgencies(agencies: readonly string[]) { for (const a of agencies) breaker.set({ agency: a }, 0); },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
