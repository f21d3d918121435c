import type { Request } from 'express';
import { GatewayError } from './errors.ts';
import { escapeUnprintable, jsonPrintable } from './domain/index.ts';
import type { AuditEntry, AuditFilter, AuditLog, Checkpoint } from './audit/index.ts';
import type { AuditPage } from './audit/store.ts';
import { auditFilter, invalidParameter, parseAuditQuery, type QueryEndpoint, type QueryValues } from './audit-query.ts';
import type { Operation, StreamedBody } from './pipeline/index.ts';
import { RECORD_NAMES } from './audit/record.ts';
import { stampedCheckpoints } from './audit/timestamps.ts';
import type { Logger } from './logger.ts';

/** A page of entries; a cursor the store cannot read is the caller's mistake, named as such. */
export async function queryPage(audit: AuditLog, endpoint: QueryEndpoint, filter: AuditFilter, limit: number, cursor: string | null): Promise<AuditPage> {
  try {
    // With archived segments, a search by personal id goes on into them (archive-search.ts).
    return await (audit.archive ? audit.archive.page(filter, limit, cursor) : audit.store.query(filter, limit, cursor));
  } catch (e) {
    if (e instanceof RangeError) throw invalidParameter(endpoint, 'cursor');
    throw e;
  }
}

/** An audit-role operation: needs the `audit` grant, no purpose; its own entry names the subject searched for. */
export function auditOperation(service: string, subjects: string[], run: () => Promise<unknown>): Operation {
  return {
    service, version: null, grant: 'audit', purposeRequired: false,
    requestSubjects: () => subjects,
    async run() {
      return { body: await run(), subjects, fields: [] };
    },
  };
}

type Searched<E extends 'entries' | 'export'> = { values: QueryValues<E>; filter: AuditFilter; personalId?: string };

/** The endpoint's query and filter, or the refusal to throw once the caller is authenticated (refusals are audited). */
function parseSearch<E extends 'entries' | 'export'>(req: Request, endpoint: E, audit: AuditLog): { parsed: Searched<E> | GatewayError; subjects: string[] } {
  let parsed: Searched<E> | GatewayError;
  try {
    const values = parseAuditQuery(req.query, endpoint);
    parsed = { values, ...auditFilter(values, endpoint, audit) };
  } catch (e) {
    parsed = e as GatewayError;
  }
  return { parsed, subjects: parsed instanceof GatewayError || !parsed.personalId ? [] : [parsed.personalId] };
}

/** GET /audit/entries: filtered, newest first, cursor paging. */
export function entriesOperation(req: Request, audit: AuditLog): Operation {
  const { parsed, subjects } = parseSearch(req, 'entries', audit);
  return auditOperation('audit.entries', subjects, async () => {
    if (parsed instanceof GatewayError) throw parsed;
    return queryPage(audit, 'entries', parsed.filter, parsed.values.limit, parsed.values.cursor ?? null);
  });
}

/** GET /audit/verify: the chain's state. */
export const verifyOperation = (audit: AuditLog): Operation => auditOperation('audit.verify', [], () => audit.verify());

/** GET /audit/checkpoints: the signed checkpoints with their time-stamps, oldest first (the newest `limit`, default 1000). */
export const checkpointsOperation = (req: Request, audit: AuditLog): Operation => auditOperation('audit.checkpoints', [], async () => {
  const { limit } = parseAuditQuery(req.query, 'checkpoints');
  const all = await stampedCheckpoints(audit.store);
  return { checkpoints: all.slice(-limit), total: all.length };
});

/**
 * The sealed archive segments and where the hot store starts: for GET /audit/archives and the
 * console. Each segment with its range, entries, file and hash, when it was sealed, and whether its
 * checkpoint is time-stamped; `hotDays` null while retention is off.
 */
export async function archivesReport(audit: AuditLog, hotDays: number | null) {
  const oldest = (await audit.store.archive?.oldestHot()) ?? null;
  return {
    retention: { hotDays },
    segments: (await audit.archive?.list()) ?? [],
    hot: { firstSeq: oldest?.seq ?? null, oldestTime: oldest?.time ?? null },
  };
}

/** GET /audit/archives: the archive segments (see archivesReport). */
export const archivesOperation = (req: Request, audit: AuditLog, hotDays: number | null): Operation => auditOperation('audit.archives', [], async () => {
  parseAuditQuery(req.query, 'none');
  return archivesReport(audit, hotDays);
});

export type ExportFormat = QueryValues<'export'>['format'];

/** The audit record's members, in the order exports write them. */
export const EXPORT_COLUMNS = RECORD_NAMES;

/**
 * RFC 4180 cell: arrays and objects as JSON text, null as empty, quoted when needed. No raw control,
 * bidi or zero-width character ever reaches the file: in text they are written `\u{hex}` (see
 * escapeUnprintable), in JSON as `\uXXXX` escapes (the same JSON value). The NDJSON export, not
 * this, is the exact record a verifier re-hashes.
 */
function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'object' ? jsonPrintable(JSON.stringify(value)) : escapeUnprintable(String(value));
  // A spreadsheet runs a cell starting with = + - @ as a formula (CSV injection); an apostrophe keeps it text.
  if (typeof value === 'string' && /^[=+\-@]/.test(s)) s = `'${s}`;
  return /[",]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV record, CRLF-terminated as RFC 4180 says. */
export const csvLine = (cells: readonly unknown[]) => `${cells.map(csvCell).join(',')}\r\n`;

/**
 * Entries as NDJSON lines (each exactly the stored record, so the chain can be re-checked) or CSV
 * rows, stopping at `headSeq`, gathered into chunks of about 64 KiB.
 */
export async function* exportChunks(entries: AsyncIterable<AuditEntry>, format: ExportFormat, head: Checkpoint): AsyncGenerator<string> {
  const headSeq = head.seq;
  let chunk = format === 'csv' ? csvLine(EXPORT_COLUMNS) : '';
  for await (const e of entries) {
    if (e.seq > headSeq) break;
    chunk += format === 'csv' ? csvLine(EXPORT_COLUMNS.map((c) => e[c])) : `${JSON.stringify(e)}\n`;
    if (chunk.length >= 65_536) {
      yield chunk;
      chunk = '';
    }
  }
  // An NDJSON export ends with the chain's signed head at export time: a tail cut off (the head line with it, or not) is caught offline.
  if (format === 'ndjson') chunk += `${JSON.stringify({ head })}\n`;
  if (chunk) yield chunk;
}

/**
 * An export read from `store.scan()` page by page, never whole in memory. It stops at the head
 * seen when it opens (after the request's own entry committed), named in `X-Audit-Head-Seq`: an
 * unfiltered NDJSON export whose last line has a lower seq was cut short.
 */
export function exportStream(audit: AuditLog, filter: AuditFilter, format: ExportFormat, logger?: Pick<Logger, 'error'>): StreamedBody {
  return {
    contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
    async open() {
      const head = await audit.signedHead();
      return {
        headers: { 'X-Audit-Head-Seq': String(head.seq), 'X-Audit-Head': head.jws, 'Content-Disposition': `attachment; filename="audit-export-${head.seq}.${format}"` },
        chunks: logFailure(exportChunks(audit.store.scan(1, filter), format, head), head.seq, logger),
      };
    },
  };
}

/** The client only sees a cut connection when a store read fails mid-export; the operator sees why. */
async function* logFailure(chunks: AsyncIterable<string>, headSeq: number, logger?: Pick<Logger, 'error'>) {
  try {
    yield* chunks;
  } catch (e) {
    logger?.error({ err: e, headSeq }, 'audit export failed mid-stream');
    throw e;
  }
}

/** GET /audit/export?format=ndjson|csv&<the filters of /audit/entries>: streamed, unsigned. */
export function exportOperation(req: Request, audit: AuditLog, logger?: Pick<Logger, 'error'>): Operation {
  const { parsed, subjects } = parseSearch(req, 'export', audit);
  return {
    service: 'audit.export', version: null, grant: 'audit', purposeRequired: false,
    requestSubjects: () => subjects,
    async run() {
      if (parsed instanceof GatewayError) throw parsed;
      return { body: null, subjects, fields: [], stream: exportStream(audit, parsed.filter, parsed.values.format, logger) };
    },
  };
}
