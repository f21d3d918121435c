import http from 'node:http';
import https from 'node:https';
import axios, { AxiosHeaders, type AxiosInstance, type AxiosRequestConfig, type AxiosResponse, type AxiosResponseTransformer, type AxiosRequestTransformer, type InternalAxiosRequestConfig } from 'axios';
import {
  BrokenCircuitError, BulkheadRejectedError, circuitBreaker, CircuitState, ConsecutiveBreaker, ExponentialBackoff,
  handleWhen, IsolatedCircuitError, retry, wrap, bulkhead,
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
  /** Completes the request afresh for every attempt (a single-use assertion per attempt, say). */
  prepare?: (request: AxiosRequestConfig) => Promise<AxiosRequestConfig>;
  /** Turns the upstream's answer into a result, or throws a catalogue error (SUBJECT_NOT_FOUND, UPSTREAM_BAD_RESPONSE). */
  interpret: (response: AxiosResponse) => T | Promise<T>;
  /** The upstream's reference number for this answer, for the audit record. */
  referenceOf?: (result: T) => string | null;
  /** A hop to another gateway: what the audit record keeps of it (its id; with an answer, its request id and answer hash). */
  custodyOf?: (result: T | null) => Pick<UpstreamCall, 'gateway' | 'remoteRequestId' | 'answerSha256'>;
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

const HEADER_BUCKETS = new Set(['common', 'delete', 'get', 'head', 'post', 'put', 'patch', 'options', 'purge', 'link', 'unlink', 'query']);
const WITH_BODY = new Set(['post', 'put', 'patch']);

type Transform = AxiosRequestTransformer | AxiosResponseTransformer;
function transform(config: InternalAxiosRequestConfig, fns: Transform | Transform[] | undefined, data: unknown, headers: AxiosHeaders, status?: number): unknown {
  for (const fn of fns === undefined ? [] : Array.isArray(fns) ? fns : [fns]) data = (fn as AxiosResponseTransformer).call(config, data, headers, status);
  return data;
}

/**
 * An axios instance's requests, driven the way axios drives them (its defaults, its header
 * flattening, its request and response transforms, its adapter interface and errors) without
 * its per-call machinery: the defaults are flattened once per method instead of deep-merged into
 * every call, and there is no interceptor chain (none is registered on an upstream client). On the
 * hot path that merge cost more CPU than the HTTP exchange it prepared.
 */
function directRequester(instance: AxiosInstance, adapter: (config: InternalAxiosRequestConfig) => Promise<AxiosResponse>) {
  const { headers: bucketed, ...defaults } = instance.defaults;
  const buckets = bucketed as unknown as Record<string, Record<string, string> | string | undefined>;
  const own = Object.fromEntries(Object.entries(buckets).filter(([k]) => !HEADER_BUCKETS.has(k)));
  const perMethod = new Map<string, AxiosHeaders>();
  const headersFor = (method: string) => {
    let h = perMethod.get(method);
    if (!h) perMethod.set(method, (h = AxiosHeaders.concat(buckets.common as never, buckets[method] as never, own as never)));
    return h;
  };
  return async (request: AxiosRequestConfig): Promise<AxiosResponse> => {
    const method = (request.method ?? 'get').toLowerCase();
    const headers = AxiosHeaders.concat(headersFor(method), request.headers as never);
    // The defaults are the config's prototype: read through, not copied (they hold some thirty members).
    const config = Object.assign(Object.create(defaults) as object, request, { method, headers }) as InternalAxiosRequestConfig;
    config.data = transform(config, config.transformRequest, request.data, headers);
    if (WITH_BODY.has(method)) headers.setContentType('application/x-www-form-urlencoded', false);
    let response: AxiosResponse;
    try {
      response = await adapter(config);
    } catch (e) {
      if (axios.isAxiosError(e) && e.response) e.response.data = transform(config, config.transformResponse, e.response.data, e.response.headers as AxiosHeaders, e.response.status);
      throw e;
    }
    response.data = transform(config, config.transformResponse, response.data, response.headers as AxiosHeaders, response.status);
    return response;
  };
}

/**
 * One defensive HTTP client per upstream: keep-alive agent, no redirects, a deadline per attempt
 * (the transport's: from the request's start to the answer's last byte), retries with
 * decorrelated-jitter backoff for idempotent reads only, a consecutive-failure circuit breaker
 * that half-opens after a pause, and a concurrency bulkhead (cockatiel).
 *
 * The deadline is the transport's own timer rather than cockatiel's timeout policy: that policy
 * derives an AbortController per attempt and listens on its caller's signal, and abort signals
 * outlive their call until the next full collection (node keeps them weakly referenced): they were
 * the larger part of what a request left in the old generation (15.0 KB a request outlived a young
 * collection with them, 6.6 KB without; the README's performance section).
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
  const isolation = bulkhead(r.maxConcurrent, r.maxQueued);
  const readPolicy = wrap(isolation, retryPolicy, breaker);
  const writePolicy = wrap(isolation, breaker);

  const send = directRequester(http$, nodeHttpTransport);
  const attempt = async <T>(call: CallOptions<T>): Promise<T> => {
    let response: AxiosResponse;
    try {
      response = await send(call.prepare ? await call.prepare(call.request) : call.request);
    } catch (e) {
      throw mapTransportError(agency, e);
    }
    if (!call.acceptStatus?.(response.status)) assertNotServerError(agency, response);
    try {
      return await call.interpret(response);
    } catch (e) {
      throw mapTransportError(agency, e);
    }
  };

  return {
    agency,
    /** Runs one upstream operation under the policies and records it in `trace`. */
    async call<T>(call: CallOptions<T>): Promise<T> {
      const started = performance.now();
      const record = (outcome: UpstreamCall['outcome'], errorCode: string | null, reference: string | null, result: T | null = null) => {
        const entry: UpstreamCall = { agency, operation: call.operation, outcome, errorCode, latencyMs: Math.round(performance.now() - started), reference, ...call.custodyOf?.(result) };
        call.trace?.push(entry);
        observer?.onCall?.(entry);
      };
      try {
        const policy = call.idempotent ? readPolicy : writePolicy;
        const result = await policy.execute(() => attempt(call));
        record('ok', null, call.referenceOf?.(result) ?? null, result);
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
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;
