import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { GatewayError } from './errors.ts';
import { isPersonalId, UNPRINTABLE_CLASS } from './domain/index.ts';
import type { AuditFilter, AuditLog } from './audit/index.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020, formats?: string[]) => Ajv2020;

/**
 * The one definition of the query parameters of the audit endpoints (`/audit/*`, the citizen's
 * access log, the console's reads): what each endpoint takes, and the form of each value as the
 * string it arrives as. The parser below and the OpenAPI document both read this table, so what
 * is documented is what is checked. A value outside its rule is refused, never dropped: a dropped
 * filter would answer an auditor with unfiltered entries as if they were filtered.
 */

/** One query parameter: its value's form as a string (JSON Schema for ajv), and how it reads. */
export interface ParamSpec {
  description: string;
  /** What a refusal says the value must be. */
  must: string;
  /** The value as the string it arrives as. */
  schema: { type: 'string' } & Record<string, unknown>;
  /** A whole number: its range, checked once the string form passed. */
  range?: { minimum: number; maximum: number };
  /** The allowed values of an enumerated parameter. */
  values?: readonly string[];
  /** Taken when the parameter is absent. */
  default?: string | number;
}

/** What the gateway accepts in `purpose`/`case_id` claims, so what the log can hold. */
const PRINTABLE = `^[^${UNPRINTABLE_CLASS}]+$`;

function text(description: string, maxLength: number): ParamSpec {
  return { description, must: `printable text of at most ${maxLength} characters`, schema: { type: 'string', maxLength, pattern: PRINTABLE } };
}

function oneOf<const V extends readonly string[]>(description: string, values: V): ParamSpec & { values: V };
function oneOf<const V extends readonly string[]>(description: string, values: V, fallback: V[number]): ParamSpec & { values: V; default: V[number] };
function oneOf(description: string, values: readonly string[], fallback?: string): ParamSpec {
  const spec = { description, must: `one of ${values.join(', ')}`, values, schema: { type: 'string' as const, enum: [...values] } };
  return fallback === undefined ? spec : { ...spec, default: fallback };
}

/** A count from 1 to `maximum`, in plain digits only: `0x10`, ` 5`, `1e2` or `05` are not counts. */
function count(description: string, fallback: number, maximum: number): ParamSpec & { range: object; default: number } {
  return {
    description, must: `a whole number from 1 to ${maximum}, in digits`, range: { minimum: 1, maximum }, default: fallback,
    schema: { type: 'string', pattern: '^[1-9][0-9]*$', maxLength: String(maximum).length },
  };
}

const isoTime = (description: string): ParamSpec => ({
  description, must: 'an RFC 3339 date-time with seconds and an offset, e.g. 2026-03-01T00:00:00+07:00',
  // The pattern keeps out what `new Date` reads loosely (`2026`, `2026-03-01`, a local time without offset, a space for T).
  schema: { type: 'string', format: 'date-time', maxLength: 40, pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$' },
});

/** The filters, shared by every endpoint that searches the log. */
const FILTERS = {
  subject: {
    description: 'A citizen\'s 12-digit personal id; pseudonymised the way the log stores it before the search.',
    must: 'a valid 12-digit personal id', schema: { type: 'string', pattern: '^[0-9]{12}$', format: 'vn-personal-id' },
  },
  client: {
    // Entries are written only for authenticated callers: a configured client id, or the console's `console:<username>` (a sign-in takes a username of at most 200 characters).
    description: 'The calling client\'s id, or `console:<username>` for the auditor console\'s own reads.',
    must: 'a client id (a-z, 0-9, ".", "_", "-", at most 64) or console:<username>',
    schema: { type: 'string', maxLength: 208, pattern: `^(?:[a-z0-9][a-z0-9._-]{0,63}|console:[^${UNPRINTABLE_CLASS}]{1,200})$` },
  },
  // The log stores the id of an unknown service as it was requested (up to 100 characters), so a search for a probe must be able to name it.
  service: text('The service id, e.g. `population.identity`, or the id an unknown-service request named.', 100),
  // Stored as the caller's `purpose` claim, registered or not: a refused unregistered purpose is exactly what an auditor looks for.
  purpose: text('The purpose code of the caller\'s assertion, e.g. `LAND_TRANSFER_REGISTRATION`.', 128),
  caseId: text('The case id (`case_id` claim) of the caller\'s assertion.', 128),
  outcome: oneOf('The entry\'s outcome.', ['released', 'denied', 'failed']),
  from: isoTime('Inclusive lower bound of the entry time.'),
  to: isoTime('Exclusive upper bound of the entry time.'),
} satisfies Record<string, ParamSpec>;

const cursor: ParamSpec = {
  description: 'The `nextCursor` of the previous page.', must: 'a cursor from a previous page (base64url, at most 64 characters)',
  schema: { type: 'string', maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' },
};

/** Every endpoint's parameters; an endpoint takes these and nothing else. */
export const AUDIT_QUERIES = {
  /** GET /audit/entries and the console's /api/entries. */
  entries: { ...FILTERS, limit: count('Entries per page.', 50, 500), cursor },
  /** GET /audit/export and the console's /api/export. */
  export: { ...FILTERS, format: oneOf('NDJSON lines (each the stored record) or CSV rows.', ['ndjson', 'csv'], 'ndjson') },
  checkpoints: { limit: count('How many of the newest checkpoints.', 1000, 10_000) },
  accessLog: { limit: count('Accesses per page.', 20, 100), cursor },
  /** The console's one entry (/api/entries/:id) and chain status (/api/chain). */
  none: {},
  activity: { days: count('Days back from today, in Viet Nam time.', 30, 366) },
  usage: { from: FILTERS.from, to: FILTERS.to, format: oneOf('A JSON report or a CSV download.', ['json', 'csv'], 'json') },
} satisfies Record<string, Record<string, ParamSpec>>;

export type QueryEndpoint = keyof typeof AUDIT_QUERIES;
export const FILTER_NAMES = Object.keys(FILTERS) as (keyof typeof FILTERS)[];

type Value<P> = P extends { range: object } ? number : P extends { values: readonly (infer V)[] } ? V : string;
type Params<E extends QueryEndpoint> = (typeof AUDIT_QUERIES)[E];
/** The parsed values: numbers for counts, defaults filled in (those members are always present). */
export type QueryValues<E extends QueryEndpoint> =
  { [K in keyof Params<E> as Params<E>[K] extends { default: unknown } ? K : never]: Value<Params<E>[K]> } &
  { [K in keyof Params<E> as Params<E>[K] extends { default: unknown } ? never : K]?: Value<Params<E>[K]> };

const ajv = addFormats(new Ajv2020({ allErrors: false }), ['date-time']);
ajv.addFormat('vn-personal-id', { type: 'string', validate: isPersonalId });

/** Every parameter's check, compiled once at load. */
const CHECKS = Object.fromEntries(Object.entries(AUDIT_QUERIES).map(([endpoint, params]) => [
  endpoint, Object.fromEntries(Object.entries(params as Record<string, ParamSpec>).map(([name, spec]) => [name, ajv.compile(spec.schema)])),
])) as Record<QueryEndpoint, Record<string, ValidateFunction>>;

/** A refused query parameter: REQUEST_INVALID on the wire, the parameter's name kept for code and logs. */
export class QueryParameterError extends GatewayError {
  readonly parameter: string;
  constructor(parameter: string, detail: string) {
    super('REQUEST_INVALID', detail);
    this.parameter = parameter;
  }
}

/** A name the caller made up is echoed in the refusal, but short and quoted. */
const quoted = (name: string) => JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);

/** The refusal of a value outside its rule. */
export function invalidParameter(endpoint: QueryEndpoint, name: string): QueryParameterError {
  const spec = (AUDIT_QUERIES[endpoint] as Record<string, ParamSpec>)[name];
  return new QueryParameterError(name, `${name} must be ${spec?.must ?? 'valid'}`);
}

function readValue(endpoint: QueryEndpoint, name: string, spec: ParamSpec, raw: unknown): string | number | undefined {
  if (raw === undefined) return spec.default;
  if (Array.isArray(raw)) throw new QueryParameterError(name, `${name} given ${raw.length} times; give one value`);
  // A value always arrives as a string with express's simple query parser; anything else is refused, not guessed at.
  if (typeof raw !== 'string') throw invalidParameter(endpoint, name);
  // An empty value would mean "no filter" to a lax reader; the console never sends one, so it is refused rather than guessed at.
  if (raw === '') throw new QueryParameterError(name, `${name} is empty; leave the parameter out instead`);
  if (!CHECKS[endpoint][name]!(raw)) throw invalidParameter(endpoint, name);
  if (!spec.range) return raw;
  const n = Number(raw);
  if (n < spec.range.minimum || n > spec.range.maximum) throw invalidParameter(endpoint, name);
  return n;
}

/**
 * The query of `endpoint`, every value checked against its rule: an unknown parameter (`client[]`
 * among them), a repeated key, an empty value or a value outside its rule is REQUEST_INVALID
 * naming the parameter.
 */
export function parseAuditQuery<E extends QueryEndpoint>(query: unknown, endpoint: E): QueryValues<E> {
  const params = AUDIT_QUERIES[endpoint] as Record<string, ParamSpec>;
  const q = (query ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(q)) {
    if (Object.hasOwn(params, name)) continue;
    const allowed = Object.keys(params);
    throw new QueryParameterError(name, `unknown query parameter ${quoted(name)}; ${allowed.length ? `this endpoint takes ${allowed.join(', ')}` : 'this endpoint takes none'}`);
  }
  const values: Record<string, string | number> = {};
  for (const [name, spec] of Object.entries(params)) {
    const v = readValue(endpoint, name, spec, Object.hasOwn(q, name) ? q[name] : undefined);
    if (v !== undefined) values[name] = v;
  }
  return values as QueryValues<E>;
}

/** Normalised to UTC so it compares with the stored times as text. */
function utc(endpoint: QueryEndpoint, name: 'from' | 'to', value: string): string {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw invalidParameter(endpoint, name);
  return d.toISOString();
}

type FilterValues = Partial<Record<keyof typeof FILTERS, string>>;

/** The store's filter from parsed values; a personal id is pseudonymised the way the log stores it. */
export function auditFilter(values: FilterValues, endpoint: QueryEndpoint, audit: Pick<AuditLog, 'pseudonymize'>): { filter: AuditFilter; personalId?: string } {
  const filter: AuditFilter = {};
  const { subject, from, to, outcome } = values;
  if (subject !== undefined) filter.subject = audit.pseudonymize(subject);
  for (const k of ['client', 'service', 'purpose', 'caseId'] as const) if (values[k] !== undefined) filter[k] = values[k];
  if (outcome !== undefined) filter.outcome = outcome as AuditFilter['outcome'];
  if (from !== undefined) filter.from = utc(endpoint, 'from', from);
  if (to !== undefined) filter.to = utc(endpoint, 'to', to);
  return subject === undefined ? { filter } : { filter, personalId: subject };
}
