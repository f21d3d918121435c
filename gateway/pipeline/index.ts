import { v7 as timeOrderedUuid } from 'uuid';
import { sha256Hex } from '../audit/index.ts';
import { release, refuse } from './answer.ts';
import { commitEntry } from './audit.ts';
import { authenticate, type Authenticated } from './authenticate.ts';
import { authorize } from './authorize.ts';
import { checkConsent } from './consent.ts';
import { handle } from './handle.ts';
import { requireIdempotencyKey } from './idempotency-key.ts';
import { minimise } from './minimize.ts';
import { parseBody } from './parse-body.ts';
import { rateLimit } from './rate-limit.ts';
import { requireAnchoring } from './require-anchoring.ts';
import { resolveOperation } from './resolve-operation.ts';
import { sign } from './sign.ts';
import { encrypt } from './encrypt.ts';
import type { Exchange, Inbound, Operation, Outbound, PipelineDeps, Step } from './types.ts';
import { validateRequest } from './validate-request.ts';
import { validateResponse } from './validate-response.ts';

export type { Authenticated } from './authenticate.ts';
export type { Authorized, Exchange, Inbound, Operation, OperationResult, Outbound, PipelineDeps, Step, StreamedBody } from './types.ts';

/**
 * The request path, in order: every authenticated request goes through these steps (data
 * services, composites, discovery, the audit and citizen reads, the console's audited reads), one
 * file of this folder each. A step that throws ends the path: the refusal is audited when the
 * caller is known (answer.ts, `refuse`), and nothing is released unless `commitEntry` committed.
 */
export const REQUEST_PATH: readonly Step[] = [
  parseBody, // strict JSON; a malformed body is refused once the caller is known
  authenticate, // client assertion (or console session): a failure is logged, never chained
  resolveOperation, // the service and version asked for
  rateLimit, // per client, across instances
  authorize, // client × service × purpose, case id; the field groups granted
  requireAnchoring, // data only while the log's time-stamps keep up (when a maximum lag is set)
  validateRequest, // the contract's request schema
  checkConsent, // the citizen's consent where the operation needs it
  requireIdempotencyKey, // writes only
  handle, // the adapter call, composite, or read
  validateResponse, // the contract's response schema
  minimise, // who it concerns; granted field groups only
  sign, // detached JWS over the exact bytes, bound to the request's hash
  encrypt, // a compact JWE to the client's key, when its config asks (the signature covers the plaintext)
  commitEntry, // durable, hash-chained, before anything leaves
];

/** Runs REQUEST_PATH for one request; `resolve` names the operation once the caller is known. */
export function createPipeline(deps: PipelineDeps) {
  return async function exchange(inbound: Inbound, resolve: (auth: Authenticated) => Operation | undefined): Promise<Outbound> {
    const x: Exchange = {
      // Time-ordered (UUID version 7): the audit store's unique index on ids grows at its end, so a
      // batch of entries shares its pages instead of touching a random page per entry.
      requestId: timeOrderedUuid(), time: new Date().toISOString(), started: performance.now(), inbound, requestSha256: sha256Hex(inbound.rawBody),
      deps, resolve, granted: new Set(), consent: null, idempotencyKey: null, trace: [],
    };
    try {
      for (const step of REQUEST_PATH) await step(x);
    } catch (e) {
      return refuse(x, e);
    }
    return release(x);
  };
}

export type Pipeline = ReturnType<typeof createPipeline>;
