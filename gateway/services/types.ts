import type { UpstreamCall } from '../audit/entry.ts';
import type { ClientConfig, FormConfig, PurposeConfig } from '../config/types.ts';
import type { ClientClaims } from '../pipeline/authenticate.ts';
import type { Consent } from '../pipeline/consent.ts';
import type { Adapters } from '../../adapters/index.ts';
import type { Contract } from '../contracts.ts';
import type { IdempotencyStore } from '../idempotency.ts';

/** What a handler gets: the validated request and everything policy decided about it. */
export interface ServiceContext<Req = any> {
  request: Req;
  requestId: string;
  client: ClientConfig;
  claims: ClientClaims;
  purpose: PurposeConfig | null;
  consent: Consent | null;
  /** Field groups granted to this client for this service (and consented, where consent applies). */
  grantedGroups: ReadonlySet<string>;
  /** Upstream calls made, for the audit record. */
  trace: UpstreamCall[];
  adapters: Adapters;
  idempotencyKey: string | null;
  /** Where writes keep their Idempotency-Key outcomes (replays, uncertain writes). */
  idempotency: IdempotencyStore;
  forms: readonly FormConfig[];
  contract: Contract;
  /** Contracts of other services (composites validate what they gather). */
  contractOf(service: string, version?: number): Contract | undefined;
}

/**
 * A handler's answer: the body; for a composite (no `records`) the fields it released, as
 * `service:group`; and whom it concerns when the request alone does not say (else `subjects()`).
 */
export interface HandlerAnswer<Res> { body: Res; fields?: string[]; subjects?: string[] }

/** A service is a contract plus one of these; the pipeline does everything else. */
export interface ServiceHandler<Req = any, Res extends Record<string, unknown> = Record<string, unknown>> {
  service: string;
  version: number;
  handle(ctx: ServiceContext<Req>): Promise<HandlerAnswer<Res>>;
  /** Personal ids of everyone the request and its answer concern (pseudonymised in the audit log). */
  subjects(request: Req, response: Res | null): string[];
  /** Where field groups apply; the pipeline minimises them. Omitted by composites, which minimise per field themselves. */
  records?(response: Res): Record<string, unknown>[];
  /** Request checks a JSON Schema cannot express; throw REQUEST_INVALID. */
  checkRequest?(request: Req, ctx: { consent: Consent | null }): void;
}
