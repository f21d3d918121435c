import type { Anchoring } from '../audit/anchoring.ts';
import type { AuditEntry, AuditLog, UpstreamCall } from '../audit/index.ts';
import type { Contract } from '../contracts.ts';
import type { GatewayError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimiter } from '../shared-state.ts';
import type { Signer } from '../signing.ts';
import type { Authenticated, Authenticator } from './authenticate.ts';
import type { Authorization, Authorizer } from './authorize.ts';
import type { Consent, ConsentVerifier } from './consent.ts';

/** A request as the pipeline sees it: the exact body bytes and the few headers that matter. */
export interface Inbound {
  rawBody: Uint8Array;
  authorization?: string;
  consent?: string;
  idempotencyKey?: string;
  acceptLanguage?: string;
  /** The console's session cookie (console reads authenticate with it instead of an assertion). */
  session?: string;
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

/** What an operation answers: plain data. */
export interface OperationResult {
  /** The answer, sent as JSON; or, with `contentType`, a string sent as it is (a CSV report). */
  body: unknown;
  contentType?: string;
  /** Extra headers of the answer (a download's Content-Disposition). */
  headers?: Record<string, string>;
  /** Personal ids concerned (pseudonymised before they are stored). */
  subjects?: string[];
  /** Subjects already in pseudonym form (an audit entry looked at). */
  pseudonyms?: string[];
  /** Released field groups, as `service:group`; a contract's field groups are filled in by minimisation. */
  fields?: string[];
  /** Set instead of `body` for a streamed answer. */
  stream?: StreamedBody;
}

/** What a step of the request path reads and writes: one per request. */
export interface Exchange {
  readonly requestId: string;
  readonly time: string;
  readonly started: number;
  readonly inbound: Inbound;
  readonly requestSha256: string;
  readonly deps: PipelineDeps;
  /** Finds the operation once the caller is known (routes decide which operations a path serves). */
  readonly resolve: (auth: Authenticated) => Operation | undefined;
  /** The parsed JSON body (undefined for none), or why it could not be parsed. */
  body?: unknown;
  bodyError?: GatewayError;
  auth?: Authenticated;
  op?: Operation;
  authz?: Authorization;
  /** Field groups the caller may receive from this operation. */
  granted: ReadonlySet<string>;
  consent: Consent | null;
  idempotencyKey: string | null;
  /** Upstream calls made, for the audit record. */
  trace: UpstreamCall[];
  result?: OperationResult;
  /** The answer's bytes, fixed once minimised; what is signed, hashed into the entry and sent. */
  responseBody?: Buffer;
  signature?: string;
  /** The answer encrypted to the client (encrypt.ts): what is sent instead of `responseBody` when the client asks for it. */
  encryptedBody?: Buffer;
  /** The committed entry of a released answer. */
  entry?: AuditEntry;
  /** Set when the audit store refused the entry: nothing more may be recorded or released. */
  auditFailed?: boolean;
}

/** The exchange as an operation runs it: the caller known, authorised, the operation resolved. */
export type Authorized = Exchange & Required<Pick<Exchange, 'auth' | 'authz' | 'op'>>;

/** One step of the request path: reads and extends the exchange, or throws a catalogue error. */
export type Step = (x: Exchange) => void | Promise<void>;

/** What the pipeline can run once the caller is authenticated: a data service, discovery, an audit or console read. */
export interface Operation {
  service: string;
  version: number | null;
  /** The grant it needs (`audit` for the audit endpoints, ANY_CLIENT for discovery). */
  grant: string;
  /** Data services need a purpose; discovery, audit and console reads do not. */
  purposeRequired: boolean;
  /** Request and answer are validated against it, its field groups minimised. */
  contract?: Contract;
  /** X-Citizen-Consent is verified before the operation runs. */
  consent?: boolean;
  /** A write: Idempotency-Key required. */
  write?: boolean;
  /** Fields its entry names whether it answers or is refused (a console read names its action). */
  attempted?: string[];
  /** Request checks a JSON Schema cannot express (after consent); throw REQUEST_INVALID. */
  checkRequest?(body: unknown, consent: Consent | null): void;
  run(x: Authorized): Promise<OperationResult>;
  /** Subjects known from the request alone, for refusals before the operation answered. */
  requestSubjects?(body: unknown): string[];
  /** Everyone the request and its answer concern, read before minimisation removes members. */
  answerSubjects?(body: unknown, answer: unknown): string[];
  /** The records whose members the contract's field groups name (minimised in place). */
  records?(answer: unknown): Record<string, unknown>[];
}

export interface PipelineDeps {
  authenticate: (inbound: Inbound) => Promise<Authenticated>;
  authorizer: Authorizer;
  rateLimiter: RateLimiter;
  verifyConsent: ConsentVerifier;
  audit: AuditLog;
  signer: Signer;
  logger: Logger;
  metrics: Metrics;
  /** The checkpoints' time-stamping: past its maximum lag, data requests are refused. */
  anchoring?: Pick<Anchoring, 'admit'>;
}

export type { Authenticated, Authenticator };
