import crypto, { createHash, createHmac } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { RECORD_MEMBERS } from './record.ts';

// A CommonJS module whose export is the function itself; its typings say `default`.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

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
  /**
   * A hop to another gateway (federation): its gateway id, the id it gave the request (its audit
   * entry's id, from its signed answer) and the SHA-256 (hex) of the exact answer bytes it signed,
   * which is that entry's `responseSha256`. Absent for an agency system.
   */
  gateway?: string;
  remoteRequestId?: string;
  answerSha256?: string;
}

/** What a request contributes to the log, before the store gives it a place in the chain. */
export interface PendingEntry {
  id: string;
  time: string;
  client: string;
  /**
   * The agency a federated gateway (`client`) called for: the `sub` of its assertion's RFC 8693
   * delegation. Absent, not null, on every direct call, so entries without it hash exactly as
   * they did before the member existed.
   */
  actingFor?: string;
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

/** A committed entry: the audit record (docs/architecture.md, the audit record). */
export interface AuditEntry extends PendingEntry {
  seq: number;
  prevHash: string;
  hash: string;
}

export interface ChainHead { seq: number; hash: string }
export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: '0'.repeat(64) });

/**
 * RFC 8785 (JCS) canonical JSON, by the `canonicalize` library: the one encoder behind every
 * hash of the log, so an auditor can re-check an export with any RFC 8785 implementation.
 */
export function canonicalJson(value: unknown): string {
  const text = fastCanonical(value) ?? canonicalize(value);
  if (text === undefined) throw new TypeError('value has no canonical JSON form');
  return text;
}

/** One-shot hashing (Node ≥ 20.12) skips a Hash object per call: the verifier hashes millions of entries. */
const oneShot = (crypto as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string }).hash;
export const sha256Hex = oneShot
  ? (data: string | Uint8Array) => oneShot('sha256', data, 'hex')
  : (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
export const sha256B64u = (data: string | Uint8Array) => createHash('sha256').update(data).digest('base64url');

/**
 * RFC 8785 text for the log's own shapes, written member by member in a fixed order instead of
 * sorting keys on every call: an array of strings (subjects, released fields), an upstream call,
 * an entry without `hash`. Each gives up (undefined) on anything else (a member it does not know,
 * a value that is not a string, a safe integer or null), which then goes to the library whole, so
 * both always give the same text (the audit tests check it on generated entries). RFC 8785 writes
 * strings and integers as ECMAScript's JSON.stringify does, arrays in order, and members sorted by
 * UTF-16 code units (the names here are ASCII, so a plain sort).
 */
function fixedMembers(names: readonly string[], optional: ReadonlySet<string>, writeMember: (name: string) => ((v: unknown) => string | undefined)) {
  const members = [...names].sort().map((name) => ({ name, optional: optional.has(name), prefix: `${JSON.stringify(name)}:`, write: writeMember(name) }));
  const known: ReadonlySet<string> = new Set(names);
  return (o: Record<string, unknown>, skip?: string): string | undefined => {
    for (const k in o) if (k !== skip && !known.has(k)) return undefined;
    let text = '{';
    for (const m of members) {
      const value = o[m.name];
      // An optional member that is absent is left out, as RFC 8785 leaves out what is undefined; any other absence gives up.
      if (value === undefined && m.optional) continue;
      const v = m.write(value);
      if (v === undefined) return undefined;
      text += `${text.length > 1 ? ',' : ''}${m.prefix}${v}`;
    }
    return `${text}}`;
  };
}
const scalar = (v: unknown) => (v === null || typeof v === 'string' || Number.isSafeInteger(v) ? JSON.stringify(v) : undefined);
const stringArray = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? JSON.stringify(v) : undefined);
const UPSTREAM_CALL_MEMBERS = ['agency', 'operation', 'outcome', 'errorCode', 'latencyMs', 'reference', 'gateway', 'remoteRequestId', 'answerSha256'] satisfies (keyof UpstreamCall)[];
const upstreamCallText = fixedMembers(UPSTREAM_CALL_MEMBERS, new Set(['gateway', 'remoteRequestId', 'answerSha256']), () => scalar);
function upstreamCallsText(v: unknown): string | undefined {
  if (!Array.isArray(v)) return undefined;
  const parts: string[] = [];
  for (const call of v) {
    const text = call && typeof call === 'object' ? upstreamCallText(call as Record<string, unknown>) : undefined;
    if (text === undefined) return undefined;
    parts.push(text);
  }
  return `[${parts.join(',')}]`;
}
const entryText = fixedMembers(RECORD_MEMBERS.filter((m) => m.name !== 'hash').map((m) => m.name), new Set(RECORD_MEMBERS.filter((m) => m.optional).map((m) => m.name)), (name) =>
  name === 'upstreams' ? upstreamCallsText : RECORD_MEMBERS.find((m) => m.name === name)!.kind === 'json' ? stringArray : scalar);
function fastCanonical(value: unknown): string | undefined {
  return Array.isArray(value) ? stringArray(value) ?? upstreamCallsText(value) : undefined;
}

/** The canonical JSON of an entry without `hash`: what its hash covers. */
export function entryCanonicalJson(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const text = entryText(entry as unknown as Record<string, unknown>, 'hash');
  if (text !== undefined) return text;
  const { hash: _omit, ...rest } = entry;
  return canonicalJson(rest);
}

/** JCS of the upstream calls as stored in a row, so a verifier can splice the column as it is. */
export const upstreamsJson = (upstreams: readonly UpstreamCall[]): string => canonicalJson(upstreams);

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
