import type { AuditEntry } from './entry.ts';

/**
 * The audit record, member by member: the one definition that the stores' columns and rows, the
 * exports' columns, the SQLite chain check and the OpenAPI schema derive from. Members are in the
 * order exports write them; `hash` is the SHA-256 of the RFC 8785 JSON of all the others.
 * PostgreSQL's first migration spells the same table out by hand, as shipped migrations must
 * never change; the store conformance suite checks that both stores give back these members.
 */
export interface RecordMember {
  name: keyof AuditEntry;
  column: string;
  /** How the column holds it: text, an integer, or the member's RFC 8785 JSON text (arrays). */
  kind: 'text' | 'integer' | 'json';
  nullable: boolean;
  /** JSON Schema of the member (OpenAPI). */
  schema: Record<string, unknown>;
  /**
   * Absent from the entry (not null) when it has no value: a member added after entries were
   * written, so older entries, which never had it, keep their canonical JSON and their hash.
   */
  optional?: boolean;
}

const str = { type: 'string' };
const nullableStr = { type: ['string', 'null'] };
type Definition = [column: string, kind: RecordMember['kind'], nullable: boolean, schema: Record<string, unknown>, optional?: 'optional'];

/** Every member of AuditEntry, none missing (the compiler checks), in export order. */
const DEFINITION = {
  seq: ['seq', 'integer', false, { type: 'integer', minimum: 1 }],
  id: ['id', 'text', false, { type: 'string', format: 'uuid' }],
  time: ['time', 'text', false, { type: 'string', format: 'date-time' }],
  client: ['client', 'text', false, str],
  actingFor: ['acting_for', 'text', true, { type: 'string', description: 'The agency a federated gateway (`client`) called for; absent on direct calls.' }, 'optional'],
  userId: ['user_id', 'text', true, nullableStr],
  purpose: ['purpose', 'text', true, nullableStr],
  caseId: ['case_id', 'text', true, nullableStr],
  service: ['service', 'text', false, str],
  version: ['version', 'integer', true, { type: ['integer', 'null'] }],
  subjects: ['subjects', 'json', false, { type: 'array', items: str, description: 'HMAC-SHA-256 pseudonyms of the personal ids concerned, sorted.' }],
  fields: ['fields', 'json', false, { type: 'array', items: str, description: 'Released field groups, as `service:group`.' }],
  outcome: ['outcome', 'text', false, { enum: ['released', 'denied', 'failed'] }],
  status: ['status', 'integer', false, { type: 'integer' }],
  errorCode: ['error_code', 'text', true, nullableStr],
  upstreams: ['upstreams', 'json', false, { type: 'array', items: { $ref: '#/components/schemas/UpstreamCall' } }],
  latencyMs: ['latency_ms', 'integer', false, { type: 'integer' }],
  requestSha256: ['request_sha256', 'text', false, str],
  responseSha256: ['response_sha256', 'text', true, nullableStr],
  prevHash: ['prev_hash', 'text', false, str],
  hash: ['hash', 'text', false, str],
} satisfies Record<keyof AuditEntry, Definition>;

export const RECORD_MEMBERS: readonly RecordMember[] = Object.entries(DEFINITION as Record<keyof AuditEntry, Definition>)
  .map(([name, [column, kind, nullable, schema, optional]]) => ({ name: name as keyof AuditEntry, column, kind, nullable, schema, ...(optional ? { optional: true } : {}) }));

/** The members' names, in export order. */
export const RECORD_NAMES = RECORD_MEMBERS.map((m) => m.name);
/** The stores' column names, in the same order. */
export const RECORD_COLUMNS = RECORD_MEMBERS.map((m) => m.column);

/** The SQLite table of entries. */
export const SQLITE_ENTRIES_TABLE = `CREATE TABLE IF NOT EXISTS audit_entries (\n  ${RECORD_MEMBERS.map((m) =>
  m.name === 'seq' ? 'seq INTEGER PRIMARY KEY' : `${m.column} ${m.kind === 'integer' ? 'INTEGER' : 'TEXT'}${m.nullable ? '' : ' NOT NULL'}${m.name === 'id' ? ' UNIQUE' : ''}`).join(',\n  ')}\n);`;

/** PostgreSQL's array type of each column, for inserting a batch with UNNEST. */
export const postgresType = (m: RecordMember): string => (m.name === 'seq' ? 'bigint' : m.kind === 'integer' ? 'integer' : 'text');

/** The OpenAPI schema of one record. */
export const recordSchema = (description: string) => ({
  type: 'object', description,
  // Every record has every member but the optional ones; the nullable ones may be null.
  required: RECORD_MEMBERS.filter((m) => !m.optional).map((m) => m.name),
  properties: Object.fromEntries(RECORD_MEMBERS.map((m) => [m.name, m.schema])),
});
