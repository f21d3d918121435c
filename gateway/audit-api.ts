import type { Request } from 'express';
import { GatewayError } from './errors.ts';
import { isPersonalId } from './domain/index.ts';
import type { AuditEntry, AuditFilter, AuditLog } from './audit/index.ts';
import type { Operation, StreamedBody } from './pipeline/index.ts';
import type { Logger } from './logger.ts';

const OUTCOMES = new Set(['released', 'denied', 'failed']);
const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined);
const isoTime = (v: unknown, name: string) => {
  const s = str(v);
  if (s === undefined) return undefined;
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new GatewayError('REQUEST_INVALID', `${name} must be an ISO 8601 time`);
  return d.toISOString();
};

/** Reads the audit filter from a query string; a personal id is pseudonymised the way the log stores it. */
export function filterFromQuery(query: Request['query'], audit: AuditLog): { filter: AuditFilter; personalId?: string } {
  const q = query as Record<string, unknown>;
  const filter: AuditFilter = {};
  const personalId = str(q.subject);
  if (personalId !== undefined) {
    if (!isPersonalId(personalId)) throw new GatewayError('REQUEST_INVALID', 'subject must be a personal id');
    filter.subject = audit.pseudonymize(personalId);
  }
  for (const k of ['client', 'service', 'purpose', 'caseId'] as const) {
    const v = str(q[k]);
    if (v !== undefined) filter[k] = v;
  }
  const outcome = str(q.outcome);
  if (outcome !== undefined) {
    if (!OUTCOMES.has(outcome)) throw new GatewayError('REQUEST_INVALID', 'outcome must be released, denied or failed');
    filter.outcome = outcome as AuditFilter['outcome'];
  }
  filter.from = isoTime(q.from, 'from');
  filter.to = isoTime(q.to, 'to');
  if (!filter.from) delete filter.from;
  if (!filter.to) delete filter.to;
  return { filter, personalId };
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

/** The filter, or the refusal to throw once the caller is authenticated (refusals are audited). */
function parseFilter(req: Request, audit: AuditLog): { parsed: ReturnType<typeof filterFromQuery> | GatewayError; subjects: string[] } {
  let parsed: ReturnType<typeof filterFromQuery> | GatewayError;
  try {
    parsed = filterFromQuery(req.query, audit);
  } catch (e) {
    parsed = e as GatewayError;
  }
  return { parsed, subjects: parsed instanceof GatewayError || !parsed.personalId ? [] : [parsed.personalId] };
}

/** An integer query parameter within bounds, else REQUEST_INVALID. */
export function intParam(value: unknown, name: string, fallback: number, max: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new GatewayError('REQUEST_INVALID', `${name} must be 1 to ${max}`);
  return n;
}

/** GET /audit/entries: filtered, newest first, cursor paging. */
export function entriesOperation(req: Request, audit: AuditLog): Operation {
  const { parsed, subjects } = parseFilter(req, audit);
  return auditOperation('audit.entries', subjects, async () => {
    if (parsed instanceof GatewayError) throw parsed;
    const q = req.query as Record<string, unknown>;
    const limit = intParam(q.limit, 'limit', 50, 500);
    try {
      return await audit.store.query(parsed.filter, limit, str(q.cursor) ?? null);
    } catch (e) {
      if (e instanceof RangeError) throw new GatewayError('REQUEST_INVALID', 'cursor invalid');
      throw e;
    }
  });
}

/** GET /audit/verify: the chain's state. */
export const verifyOperation = (audit: AuditLog): Operation => auditOperation('audit.verify', [], () => audit.verify());

/** GET /audit/checkpoints: the signed checkpoints, oldest first (the newest `limit`, default 1000). */
export const checkpointsOperation = (req: Request, audit: AuditLog): Operation => auditOperation('audit.checkpoints', [], async () => {
  const limit = intParam((req.query as Record<string, unknown>).limit, 'limit', 1000, 10_000);
  const all = await audit.store.checkpoints();
  return { checkpoints: all.slice(-limit), total: all.length };
});

export type ExportFormat = 'ndjson' | 'csv';

/** The audit record's members (DESIGN.md §5), in the order exports write them. */
export const EXPORT_COLUMNS = [
  'seq', 'id', 'time', 'client', 'userId', 'purpose', 'caseId', 'service', 'version', 'subjects', 'fields', 'outcome',
  'status', 'errorCode', 'upstreams', 'latencyMs', 'requestSha256', 'responseSha256', 'prevHash', 'hash',
] as const satisfies readonly (keyof AuditEntry)[];

/** RFC 4180 cell: arrays and objects as JSON text, null as empty, quoted when needed. */
function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'object' ? JSON.stringify(value) : String(value);
  // A spreadsheet runs a cell starting with = + - @ as a formula (CSV injection); an apostrophe keeps it text.
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV record, CRLF-terminated as RFC 4180 says. */
export const csvLine = (cells: readonly unknown[]) => `${cells.map(csvCell).join(',')}\r\n`;

export function exportFormat(value: unknown): ExportFormat {
  const format = value ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') throw new GatewayError('REQUEST_INVALID', 'format must be ndjson or csv');
  return format;
}

/**
 * Entries as NDJSON lines (each exactly the stored record, so the chain can be re-checked) or CSV
 * rows, stopping at `headSeq`, gathered into chunks of about 64 KiB.
 */
export async function* exportChunks(entries: AsyncIterable<AuditEntry>, format: ExportFormat, headSeq: number): AsyncGenerator<string> {
  let chunk = format === 'csv' ? csvLine(EXPORT_COLUMNS) : '';
  for await (const e of entries) {
    if (e.seq > headSeq) break;
    chunk += format === 'csv' ? csvLine(EXPORT_COLUMNS.map((c) => e[c])) : `${JSON.stringify(e)}\n`;
    if (chunk.length >= 65_536) {
      yield chunk;
      chunk = '';
    }
  }
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
      const head = await audit.store.head();
      return {
        headers: { 'X-Audit-Head-Seq': String(head.seq), 'Content-Disposition': `attachment; filename="audit-export-${head.seq}.${format}"` },
        chunks: logFailure(exportChunks(audit.store.scan(1, filter), format, head.seq), head.seq, logger),
      };
    },
  };
}

/** The client only sees a cut connection when a store read fails mid-export; the operator sees why. */
async function* logFailure(chunks: AsyncIterable<string>, headSeq: number, logger?: Pick<Logger, 'error'>) {
  try {
    yield* chunks;
  } catch (e) {
    logger?.error({ errName: (e as Error)?.name, headSeq }, 'audit export failed mid-stream');
    throw e;
  }
}

/** GET /audit/export?format=ndjson|csv&<the filters of /audit/entries>: streamed, unsigned. */
export function exportOperation(req: Request, audit: AuditLog, logger?: Pick<Logger, 'error'>): Operation {
  const { parsed, subjects } = parseFilter(req, audit);
  return {
    service: 'audit.export', version: null, grant: 'audit', purposeRequired: false,
    requestSubjects: () => subjects,
    async run() {
      if (parsed instanceof GatewayError) throw parsed;
      const format = exportFormat((req.query as Record<string, unknown>).format);
      return { body: null, subjects, fields: [], stream: exportStream(audit, parsed.filter, format, logger) };
    },
  };
}
