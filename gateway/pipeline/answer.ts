import { asGatewayError, problemResponse, type GatewayError } from '../errors.ts';
import { commitRefusal, outcomeOf } from './audit.ts';
import type { Exchange, Outbound } from './types.ts';

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };
/** An answer encrypted to the client (RFC 7516 compact serialization). */
const JOSE_HEADERS = { 'Content-Type': 'application/jose', 'Cache-Control': 'no-store' };

function count(x: Exchange, outcome: string, code: string) {
  const service = x.op?.service ?? 'unknown';
  x.deps.metrics.requests.inc({ service, client: x.auth!.client.id, outcome, code });
  x.deps.metrics.latency.observe({ service, outcome }, (performance.now() - x.started) / 1000);
}

/** The answer of a request whose every step passed, its entry committed. */
export async function release(x: Exchange): Promise<Outbound> {
  const result = x.result!;
  const base = { ...result.headers, 'X-Request-Id': x.requestId };
  let out: Outbound;
  if (result.stream) {
    const opened = await result.stream.open();
    out = { status: 200, headers: { 'Content-Type': result.stream.contentType, 'Cache-Control': 'no-store', ...opened.headers, ...base }, body: Buffer.alloc(0), stream: opened.chunks };
  } else {
    const type = x.encryptedBody ? JOSE_HEADERS : result.contentType ? { 'Content-Type': result.contentType, 'Cache-Control': 'no-store' } : JSON_HEADERS;
    out = { status: 200, headers: { ...type, ...base, 'X-Gateway-Signature': x.signature! }, body: x.encryptedBody ?? x.responseBody! };
  }
  count(x, 'released', 'OK');
  x.deps.logger.info({ requestId: x.requestId, client: x.auth!.client.id, service: x.op!.service, status: 200, latencyMs: Math.round(performance.now() - x.started) }, 'released');
  return out;
}

function logRefusal(x: Exchange, err: GatewayError) {
  const fields = { requestId: x.requestId, service: x.op?.service ?? x.inbound.requestedService.slice(0, 100), client: x.auth?.client.id, code: err.code, status: err.status };
  if (err.status >= 500) x.deps.logger.error({ ...fields, err }, 'request refused');
  else x.deps.logger.info(fields, 'request refused');
}

/**
 * The one exit of a refused request. An unauthenticated caller is logged and counted only; an
 * authenticated caller's refusal is committed to the log first, and if the log cannot take it
 * (or could not take the released answer's entry) the answer is AUDIT_UNAVAILABLE, nothing else.
 */
export async function refuse(x: Exchange, thrown: unknown): Promise<Outbound> {
  let err = asGatewayError(thrown);
  const { metrics } = x.deps;
  if (!x.auth) {
    // Malformed JSON is reported before authentication, as any JSON API does.
    err = x.bodyError ?? err;
    metrics.authFailures.inc({ code: err.code });
    logRefusal(x, err);
    return problemResponse(err, x.requestId, x.inbound.acceptLanguage);
  }
  let out = problemResponse(err, x.requestId, x.inbound.acceptLanguage);
  if (!x.auditFailed) {
    try {
      await commitRefusal(x, err, out.body);
    } catch (auditError) {
      err = asGatewayError(auditError);
      out = problemResponse(err, x.requestId, x.inbound.acceptLanguage);
    }
  }
  if (x.auditFailed) metrics.auditFailures.inc();
  logRefusal(x, err);
  count(x, x.auditFailed ? 'failed' : outcomeOf(err), err.code);
  return out;
}
