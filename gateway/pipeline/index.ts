import { randomUUID } from 'node:crypto';
import { asGatewayError, GatewayError, problemLanguage, toProblem } from '../errors.ts';
import { sha256Hex, type AuditLog, type Outcome, type PendingEntry, type UpstreamCall } from '../audit/index.ts';
import type { Signer } from '../signing.ts';
import { escapeUnprintable } from '../domain/index.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimiter } from '../shared-state.ts';
import type { Authenticated, Authenticator } from './authenticate.ts';
import type { Authorization, Authorizer } from './authorize.ts';

/** A request as the pipeline sees it: the exact body bytes and the few headers that matter. */
export interface Inbound {
  rawBody: Uint8Array;
  authorization?: string;
  consent?: string;
  idempotencyKey?: string;
  acceptLanguage?: string;
  /** What the client asked for, for the audit record when it names no known operation. */
  requestedService: string;
  requestedVersion: number | null;
}

export interface Outbound {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** A streamed body (audit exports), sent chunk by chunk in place of `body`. */
  stream?: AsyncIterable<string | Uint8Array>;
}

/**
 * A body too large to hold in memory. It is opened only after the request's audit entry is
 * committed, and goes out unsigned: a detached signature needs the whole body first.
 */
export interface StreamedBody {
  contentType: string;
  open(): Promise<{ headers?: Record<string, string>; chunks: AsyncIterable<string | Uint8Array> }>;
}

export interface OperationContext {
  requestId: string;
  inbound: Inbound;
  body: unknown;
  auth: Authenticated;
  authz: Authorization;
  trace: UpstreamCall[];
}

export interface OperationResult {
  body: unknown;
  /** Personal ids concerned (pseudonymised before they are stored). */
  subjects: string[];
  /** Released field groups, as `service:group`. */
  fields: string[];
  /** Set instead of `body` for a streamed answer. */
  stream?: StreamedBody;
}

/** Something the pipeline can run once the caller is authenticated: a data service, discovery, an audit query. */
export interface Operation {
  service: string;
  version: number | null;
  /** The grant it needs (`audit` for the audit endpoints). */
  grant: string;
  /** Data services need a purpose; discovery and audit endpoints do not. */
  purposeRequired: boolean;
  run(ctx: OperationContext): Promise<OperationResult>;
  /** Subjects known from the request alone, for refusals before the operation answered. */
  requestSubjects?(body: unknown): string[];
}

export interface PipelineDeps {
  authenticate: Authenticator;
  authorizer: Authorizer;
  rateLimiter: RateLimiter;
  audit: AuditLog;
  signer: Signer;
  logger: Logger;
  metrics: Metrics;
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };

/** 4xx refusals by policy are `denied`; upstream and gateway failures, and subjects a source does not know, are `failed`. */
const outcomeOf = (e: GatewayError): Outcome => (e.status < 500 && e.code !== 'SUBJECT_NOT_FOUND' ? 'denied' : 'failed');

/** Parses JSON strictly; an empty body is `{}`-less `undefined`, left to the contract to refuse. */
function parseBody(raw: Uint8Array): { value?: unknown; error?: GatewayError } {
  if (raw.length === 0) return { value: undefined };
  try {
    return { value: JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')) };
  } catch {
    return { error: new GatewayError('REQUEST_INVALID', 'body is not valid JSON') };
  }
}

/**
 * The one request pipeline (DESIGN.md §2):
 * parse → authenticate → resolve → rate-limit → authorize → run the operation (validate, handle,
 * validate, minimise) → audit (durable) → sign. An authenticated caller's every request, released,
 * denied or failed, is one audit entry; a failed authentication is logged and counted only.
 */
export function createPipeline(deps: PipelineDeps) {
  const { audit, signer, logger, metrics } = deps;

  function problem(e: GatewayError, requestId: string, inbound: Inbound): Outbound {
    const body = Buffer.from(JSON.stringify(toProblem(e, requestId, problemLanguage(inbound.acceptLanguage))));
    return { status: e.status, headers: { 'Content-Type': 'application/problem+json; charset=utf-8', 'X-Request-Id': requestId, 'Cache-Control': 'no-store', ...e.headers }, body };
  }

  function logFailure(e: GatewayError, requestId: string, extra: Record<string, unknown>) {
    const level = e.status >= 500 ? 'error' : 'info';
    const cause = e.cause instanceof Error ? { causeName: e.cause.name, causeCode: (e.cause as { code?: string }).code } : {};
    logger[level]({ requestId, code: e.code, status: e.status, reason: e.status >= 500 ? e.message : undefined, ...cause, ...extra }, 'request refused');
  }

  return async function exchange(inbound: Inbound, resolve: (auth: Authenticated) => Operation | undefined): Promise<Outbound> {
    const started = performance.now();
    const requestId = randomUUID();
    const time = new Date().toISOString();
    const requestSha256 = sha256Hex(inbound.rawBody);
    const parsed = parseBody(inbound.rawBody);

    let auth: Authenticated;
    try {
      auth = await deps.authenticate(inbound.authorization, inbound.rawBody);
    } catch (e) {
      // Malformed JSON is reported before authentication, as any JSON API does.
      const err = parsed.error ?? asGatewayError(e);
      metrics.authFailures.inc({ code: err.code });
      logFailure(err, requestId, { service: inbound.requestedService, authenticated: false });
      return problem(err, requestId, inbound);
    }

    const { client, claims } = auth;
    const op = resolve(auth);
    const trace: UpstreamCall[] = [];
    const pending = (outcome: Outcome, status: number, errorCode: string | null, subjects: string[], fields: string[], responseBody: Buffer): PendingEntry => ({
      id: requestId, time, client: client.id, userId: claims.user_id ?? null, purpose: claims.purpose ?? null, caseId: claims.case_id ?? null,
      service: op?.service ?? escapeUnprintable(inbound.requestedService, 100), version: op ? op.version : inbound.requestedVersion,
      subjects: [...new Set(subjects.map(audit.pseudonymize))].sort(), fields, outcome, status, errorCode, upstreams: trace,
      latencyMs: Math.round(performance.now() - started), requestSha256, responseSha256: sha256Hex(responseBody),
    });
    const count = (outcome: Outcome, code: string) => {
      const service = op?.service ?? 'unknown';
      metrics.requests.inc({ service, client: client.id, outcome, code });
      metrics.latency.observe({ service, outcome }, (performance.now() - started) / 1000);
    };

    const released = () => {
      count('released', 'OK');
      logger.info({ requestId, client: client.id, service: op!.service, status: 200, latencyMs: Math.round(performance.now() - started) }, 'released');
    };
    /** The entry could not be committed: nothing is released. */
    const unaudited = (cause: unknown) => {
      count('failed', 'AUDIT_UNAVAILABLE');
      return auditUnavailable(cause, requestId, inbound);
    };

    let result: OperationResult;
    try {
      if (parsed.error) throw parsed.error;
      if (!op) throw new GatewayError('SERVICE_UNKNOWN', `no service ${inbound.requestedService} v${inbound.requestedVersion ?? '?'}`);
      const limit = await deps.rateLimiter.hit(client.id, client.rateLimitPerMinute);
      if (!limit.allowed) throw new GatewayError('RATE_LIMITED', `over ${client.rateLimitPerMinute} requests a minute`, { headers: { 'Retry-After': String(limit.retryAfterSeconds) } });
      const authz = deps.authorizer.authorize(client.id, op.grant, claims, op.purposeRequired);
      result = await op.run({ requestId, inbound, body: parsed.value, auth, authz, trace });
    } catch (e) {
      const err = asGatewayError(e);
      const out = problem(err, requestId, inbound);
      const subjects = safeSubjects(op, parsed.value);
      try {
        await audit.record(pending(outcomeOf(err), err.status, err.code, subjects, [], out.body));
      } catch (auditError) {
        return unaudited(auditError);
      }
      logFailure(err, requestId, { client: client.id, service: op?.service ?? 'unknown' });
      count(outcomeOf(err), err.code);
      return out;
    }

    if (result.stream) {
      // No response hash can be known before a stream is sent: the entry records none.
      try {
        await audit.record({ ...pending('released', 200, null, result.subjects, result.fields, Buffer.alloc(0)), responseSha256: null });
      } catch (auditError) {
        return unaudited(auditError);
      }
      const opened = await result.stream.open();
      released();
      return { status: 200, headers: { 'Content-Type': result.stream.contentType, 'Cache-Control': 'no-store', ...opened.headers, 'X-Request-Id': requestId }, body: Buffer.alloc(0), stream: opened.chunks };
    }

    const body = Buffer.from(JSON.stringify(result.body));
    try {
      // Signing runs while the entry commits; nothing is released before the commit.
      const [signature] = await Promise.all([
        signer.signResponse(body, { requestId, requestSha256: Buffer.from(requestSha256, 'hex').toString('base64url') }),
        audit.record(pending('released', 200, null, result.subjects, result.fields, body)),
      ]);
      released();
      return { status: 200, headers: { ...JSON_HEADERS, 'X-Request-Id': requestId, 'X-Gateway-Signature': signature }, body };
    } catch (auditError) {
      return unaudited(auditError);
    }
  };

  function safeSubjects(op: Operation | undefined, body: unknown): string[] {
    try {
      return op?.requestSubjects?.(body) ?? [];
    } catch {
      return [];
    }
  }

  function auditUnavailable(cause: unknown, requestId: string, inbound: Inbound): Outbound {
    const err = new GatewayError('AUDIT_UNAVAILABLE', 'audit commit failed', { cause });
    metrics.auditFailures.inc();
    logFailure(err, requestId, {});
    return problem(err, requestId, inbound);
  }
}

export type Pipeline = ReturnType<typeof createPipeline>;
