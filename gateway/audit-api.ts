import type { Request } from 'express';
import { GatewayError } from './errors.ts';
import { isPersonalId } from './domain/index.ts';
import type { AuditFilter, AuditLog } from './audit/index.ts';
import type { Operation } from './pipeline/index.ts';

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

/** GET /audit/entries: filtered, newest first, cursor paging. */
export function entriesOperation(req: Request, audit: AuditLog): Operation {
  let parsed: ReturnType<typeof filterFromQuery> | GatewayError;
  try {
    parsed = filterFromQuery(req.query, audit);
  } catch (e) {
    parsed = e as GatewayError;
  }
  const subjects = parsed instanceof GatewayError || !parsed.personalId ? [] : [parsed.personalId];
  return auditOperation('audit.entries', subjects, async () => {
    if (parsed instanceof GatewayError) throw parsed;
    const q = req.query as Record<string, unknown>;
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new GatewayError('REQUEST_INVALID', 'limit must be 1 to 500');
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
