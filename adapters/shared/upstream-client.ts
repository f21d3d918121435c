import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosRequestConfig, type AxiosResponse } from 'axios';
import {
  BrokenCircuitError, BulkheadRejectedError, circuitBreaker, CircuitState, ConsecutiveBreaker, ExponentialBackoff,
  handleWhen, IsolatedCircuitError, retry, TaskCancelledError, timeout, TimeoutStrategy, wrap, bulkhead,
} from 'cockatiel';
import { GatewayError, type ErrorCode } from '../../gateway/errors.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';
import { nodeHttpTransport } from './http-transport.ts';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Receives every upstream call's outcome and breaker changes (metrics). */
export interface UpstreamObserver {
  onCall?(call: UpstreamCall): void;
  onBreakerState?(agency: string, state: BreakerState): void;
}

export interface UpstreamClientOptions {
  agency: string;
  baseUrl: string;
  resilience: ResilienceConfig;
  observer?: UpstreamObserver;
  /** Extra axios defaults (headers). Redirects and status handling are fixed. */
  headers?: Record<string, string>;
}

export interface CallOptions<T> {
  operation: string;
  /** Only idempotent reads are retried; a write is never retried blindly. */
  idempotent: boolean;
  request: AxiosRequestConfig;
  /** Turns the upstream's answer into a result, or throws a catalogue error (SUBJECT_NOT_FOUND, UPSTREAM_BAD_RESPONSE). */
  interpret: (response: AxiosResponse) => T;
  /** The upstream's reference number for this answer, for the audit record. */
  referenceOf?: (result: T) => string | null;
  /** Where the call is recorded for the audit entry. */
  trace?: UpstreamCall[];
  /** Statuses `interpret` reads itself instead of the shared 3xx/5xx mapping (SOAP 1.1 sends faults with HTTP 500). */
  acceptStatus?: (status: number) => boolean;
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE']);
const BREAKER_FAILURES: ReadonlySet<ErrorCode> = new Set(['UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_BAD_RESPONSE']);

/** Maps transport failures to the catalogue; the detail goes to the log only (5xx never exposes it). */
export function mapTransportError(agency: string, e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  if (e instanceof TaskCancelledError) return new GatewayError('UPSTREAM_TIMEOUT', `${agency}: timed out`, { cause: e });
  if (e instanceof BrokenCircuitError || e instanceof IsolatedCircuitError) return new GatewayError('UPSTREAM_UNAVAILABLE', `${agency}: circuit open`, { cause: e });
  if (e instanceof BulkheadRejectedError) return new GatewayError('UPSTREAM_UNAVAILABLE', `${agency}: too many concurrent calls`, { cause: e });
  if (axios.isAxiosError(e)) {
    if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT' || e.code === 'ERR_CANCELED') return new GatewayError('UPSTREAM_TIMEOUT', `${agency}: timed out`, { cause: e });
    if (e.code === 'ERR_FR_TOO_MANY_REDIRECTS' || e.code === 'ERR_BAD_RESPONSE') return new GatewayError('UPSTREAM_BAD_RESPONSE', `${agency}: ${e.code}`, { cause: e });
    return new GatewayError('UPSTREAM_UNAVAILABLE', `${agency}: ${e.code ?? 'network error'}`, { cause: e });
  }
  return new GatewayError('UPSTREAM_BAD_RESPONSE', `${agency}: ${(e as Error)?.message ?? 'bad answer'}`, { cause: e });
}

/** Status classes every upstream shares: 5xx unavailable, 3xx a refused redirect. Callers handle 2xx/4xx. */
export function assertNotServerError(agency: string, response: AxiosResponse): void {
  if (response.status >= 500) throw new GatewayError('UPSTREAM_UNAVAILABLE', `${agency}: HTTP ${response.status}`);
  if (response.status >= 300 && response.status < 400) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `${agency}: redirect refused (HTTP ${response.status})`);
}

/**
 * One defensive HTTP client per upstream: keep-alive agent, no redirects, a timeout per attempt,
 * retries with decorrelated-jitter backoff for idempotent reads only, a consecutive-failure
 * circuit breaker that half-opens after a pause, and a concurrency bulkhead (all cockatiel).
 */
export function createUpstreamClient(options: UpstreamClientOptions) {
  const { agency, resilience: r, observer } = options;
  const agentOptions = { keepAlive: true, maxSockets: r.maxConcurrent };
  const http$ = axios.create({
    baseURL: options.baseUrl,
    maxRedirects: 0,
    // An upstream cannot make the gateway buffer without bound.
    maxContentLength: r.maxResponseBytes ?? 8 * 1024 * 1024,
    timeout: r.timeoutMs,
    validateStatus: () => true,
    headers: options.headers,
    httpAgent: new http.Agent(agentOptions),
    httpsAgent: new https.Agent(agentOptions),
    transitional: { clarifyTimeoutError: true },
    proxy: false,
    adapter: nodeHttpTransport,
  });

  const breaker = circuitBreaker(handleWhen((e) => e instanceof GatewayError && BREAKER_FAILURES.has(e.code)), {
    halfOpenAfter: r.breakerHalfOpenAfterMs,
    breaker: new ConsecutiveBreaker(r.breakerThreshold),
  });
  const stateName = (s: CircuitState): BreakerState => (s === CircuitState.Closed ? 'closed' : s === CircuitState.HalfOpen ? 'half_open' : 'open');
  breaker.onStateChange((s) => observer?.onBreakerState?.(agency, stateName(s)));
  const retryPolicy = retry(handleWhen((e) => e instanceof GatewayError && RETRYABLE.has(e.code)), {
    maxAttempts: r.retries,
    backoff: new ExponentialBackoff({ initialDelay: r.retryBaseDelayMs, maxDelay: r.retryMaxDelayMs }),
  });
  // abortOnReturn would abort every finished call's signal, building a DOMException (with a stack) per call; a timeout still aborts.
  const attemptTimeout = timeout(r.timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
  const isolation = bulkhead(r.maxConcurrent, r.maxQueued);
  const readPolicy = wrap(isolation, retryPolicy, breaker, attemptTimeout);
  const writePolicy = wrap(isolation, breaker, attemptTimeout);

  const attempt = async <T>(call: CallOptions<T>, signal: AbortSignal): Promise<T> => {
    let response: AxiosResponse;
    try {
      response = await http$.request({ ...call.request, signal });
    } catch (e) {
      throw mapTransportError(agency, e);
    }
    if (!call.acceptStatus?.(response.status)) assertNotServerError(agency, response);
    try {
      return call.interpret(response);
    } catch (e) {
      throw mapTransportError(agency, e);
    }
  };

  return {
    agency,
    /** Runs one upstream operation under the policies and records it in `trace`. */
    async call<T>(call: CallOptions<T>): Promise<T> {
      const started = performance.now();
      const record = (outcome: UpstreamCall['outcome'], errorCode: string | null, reference: string | null) => {
        const entry: UpstreamCall = { agency, operation: call.operation, outcome, errorCode, latencyMs: Math.round(performance.now() - started), reference };
        call.trace?.push(entry);
        observer?.onCall?.(entry);
      };
      try {
        const policy = call.idempotent ? readPolicy : writePolicy;
        // A signal of its own per call: cockatiel would otherwise hang every call's listener on one shared signal.
        const result = await policy.execute(({ signal }) => attempt(call, signal), new AbortController().signal);
        record('ok', null, call.referenceOf?.(result) ?? null);
        return result;
      } catch (e) {
        const err = mapTransportError(agency, e);
        record(err.code === 'SUBJECT_NOT_FOUND' ? 'not_found' : 'error', err.code, null);
        throw err;
      }
    },
    breakerState: (): BreakerState => stateName(breaker.state),
    /** A light probe of the upstream outside the breaker (for /readyz and health). */
    async probe(path: string): Promise<boolean> {
      try {
        const res = await http$.get(path, { timeout: Math.min(r.timeoutMs, 1000) });
        return res.status < 500;
      } catch {
        return false;
      }
    },
    http: http$,
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;
