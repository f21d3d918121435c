import crypto, { createHash, createHmac } from 'node:crypto';

export type Outcome = 'released' | 'denied' | 'failed';

/** One upstream call made while serving a request. */
export interface UpstreamCall {
  agency: string;
  operation: string;
  outcome: 'ok' | 'not_found' | 'error';
  errorCode: string | null;
  latencyMs: number;
  /** The upstream's own reference number for what it answered, when it gives one. */
  reference: string | null;
}

/** What a request contributes to the log, before the store gives it a place in the chain. */
export interface PendingEntry {
  id: string;
  time: string;
  client: string;
  userId: string | null;
  purpose: string | null;
  caseId: string | null;
  service: string;
  version: number | null;
  /** HMAC pseudonyms of the personal ids concerned, sorted and unique. */
  subjects: string[];
  /** Released field groups, as `service:group`. */
  fields: string[];
  outcome: Outcome;
  status: number;
  errorCode: string | null;
  upstreams: UpstreamCall[];
  latencyMs: number;
  requestSha256: string;
  responseSha256: string | null;
}

/** A committed entry: DESIGN.md §5's record. */
export interface AuditEntry extends PendingEntry {
  seq: number;
  prevHash: string;
  hash: string;
}

export interface ChainHead { seq: number; hash: string }
export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: '0'.repeat(64) });

/**
 * RFC 8785 (JCS) canonical JSON. Object members are sorted by UTF-16 code units (JavaScript's
 * default string order) and primitives serialised as ECMAScript's JSON.stringify does, which is
 * what RFC 8785 specifies; the audit record holds only strings, integers, booleans, null, arrays
 * and objects.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('non-finite number in canonical JSON');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** One-shot hashing (Node ≥ 20.12) skips a Hash object per call: the verifier hashes millions of entries. */
const oneShot = (crypto as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string }).hash;
export const sha256Hex = oneShot
  ? (data: string | Uint8Array) => oneShot('sha256', data, 'hex')
  : (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
export const sha256B64u = (data: string | Uint8Array) => createHash('sha256').update(data).digest('base64url');

/** The hashed members of an entry (all but `hash`), in RFC 8785 order. */
const ENTRY_KEYS = ['seq', 'id', 'time', 'client', 'userId', 'purpose', 'caseId', 'service', 'version', 'subjects', 'fields', 'outcome', 'status', 'errorCode', 'upstreams', 'latencyMs', 'requestSha256', 'responseSha256', 'prevHash'].sort();
const UPSTREAM_KEYS = ['agency', 'operation', 'outcome', 'errorCode', 'latencyMs', 'reference'].sort();
const NOT_PLAIN = Symbol('not plain');

/** A primitive as JCS writes it; NOT_PLAIN for anything the generic encoder must handle. */
function primitive(v: unknown): string | typeof NOT_PLAIN {
  if (v === null) return 'null';
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return JSON.stringify(v);
  return NOT_PLAIN;
}

/** `JSON.stringify` of an array of strings is already its JCS form. */
function stringArray(v: unknown): string | typeof NOT_PLAIN {
  if (!Array.isArray(v)) return NOT_PLAIN;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return NOT_PLAIN;
  return JSON.stringify(v);
}

/** Members `keys` (already sorted) of a flat object of primitives; NOT_PLAIN if it has any other member. */
function flatObject(o: Record<string, unknown>, keys: readonly string[], except: string | null, special?: (k: string, v: unknown) => string | typeof NOT_PLAIN): string | typeof NOT_PLAIN {
  if (Object.keys(o).length !== keys.length + (except !== null && except in o ? 1 : 0)) return NOT_PLAIN;
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = o[k];
    const text = special?.(k, v) ?? primitive(v);
    if (text === NOT_PLAIN || !Object.hasOwn(o, k)) return NOT_PLAIN;
    out += (i ? ',"' : '"') + k + '":' + text;
  }
  return out + '}';
}

function upstreamArray(v: unknown): string | typeof NOT_PLAIN {
  if (!Array.isArray(v)) return NOT_PLAIN;
  let out = '[';
  for (let i = 0; i < v.length; i++) {
    const u = v[i];
    if (u === null || typeof u !== 'object' || Array.isArray(u)) return NOT_PLAIN;
    const text = flatObject(u as Record<string, unknown>, UPSTREAM_KEYS, null);
    if (text === NOT_PLAIN) return NOT_PLAIN;
    out += (i ? ',' : '') + text;
  }
  return out + ']';
}

const ARRAY_MEMBERS: Record<string, (v: unknown) => string | typeof NOT_PLAIN> = { subjects: stringArray, fields: stringArray, upstreams: upstreamArray };

/**
 * The canonical JSON of an entry without `hash`: a specialised encoder for the record's fixed
 * shape, byte for byte what `canonicalJson` gives (the test suite cross-checks both against an
 * independent RFC 8785 implementation); any other shape goes through `canonicalJson`.
 */
export function entryCanonicalJson(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const fast = flatObject(entry as unknown as Record<string, unknown>, ENTRY_KEYS, 'hash', (k, v) => ARRAY_MEMBERS[k]?.(v));
  if (fast !== NOT_PLAIN) return fast;
  const { hash: _omit, ...rest } = entry;
  return canonicalJson(rest);
}

/** JCS of the upstream calls as stored in a row, so a verifier can splice the column as it is. */
export function upstreamsJson(upstreams: readonly UpstreamCall[]): string {
  const fast = upstreamArray(upstreams);
  return fast === NOT_PLAIN ? canonicalJson(upstreams) : fast;
}

/** The entry's hash: SHA-256 (hex) over the canonical JSON of the entry without `hash`. */
export function entryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  return sha256Hex(entryCanonicalJson(entry));
}

const UNSTORABLE = '[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]|\\u0000';
// Two regexes: a global one keeps state between `test` calls, so testing uses a plain one.
const HAS_UNSTORABLE = new RegExp(UNSTORABLE);
const LONE_SURROGATE_OR_NUL = new RegExp(UNSTORABLE, 'g');

/**
 * Text every store can hold byte for byte: lone surrogates (SQLite writes them as U+FFFD) and NUL
 * (PostgreSQL refuses it) become U+FFFD before hashing, so what is stored is what was hashed.
 */
export const storableText = (s: string): string => (HAS_UNSTORABLE.test(s) ? s.replace(LONE_SURROGATE_OR_NUL, '\uFFFD') : s);

/** `value` with storable text throughout; the same object when nothing needed replacing (the usual case). */
function storable<T>(value: T): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = storable(value[i]);
      if (v !== value[i]) (copy ??= value.slice())[i] = v;
    }
    return (copy ?? value) as T;
  }
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    let copy: Record<string, unknown> | null = null;
    for (const k of Object.keys(o)) {
      const v = storable(o[k]);
      if (v !== o[k]) (copy ??= { ...o })[k] = v;
    }
    return (copy ?? value) as T;
  }
  return value;
}

/** Gives pending entries their seq and links them after `head`. */
export function chainEntries(head: ChainHead, pending: readonly PendingEntry[]): AuditEntry[] {
  let prev = head;
  return pending.map((p) => {
    const entry = { ...storable(p), seq: prev.seq + 1, prevHash: prev.hash } as AuditEntry;
    entry.hash = entryHash(entry);
    prev = entry;
    return entry;
  });
}

/** Pseudonymises subject ids with HMAC-SHA-256 under the configured key, so the store alone does not say who was looked up. */
export function makePseudonymizer(key: string | Buffer): (subjectId: string) => string {
  return (subjectId) => createHmac('sha256', key).update(subjectId.normalize('NFC')).digest('hex');
}
