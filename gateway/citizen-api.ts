import type { Request } from 'express';
import type { AuditEntry, AuditLog } from './audit/index.ts';
import type { GatewayConfig } from './config/types.ts';
import type { ConsentVerifier } from './pipeline/consent.ts';
import type { Operation } from './pipeline/index.ts';
import { queryPage } from './audit-api.ts';
import { parseAuditQuery } from './audit-query.ts';
import { actingPartyName } from './federation/acting.ts';

export const ACCESS_LOG_SERVICE = 'citizen.access-log';

const DAY_MS = 86_400_000;
/** Pages of the store read for one page of the citizen's log, so hidden entries cannot make a request scan without end. */
const MAX_ROUNDS = 20;

/** One access as the citizen sees it. */
export interface CitizenAccess {
  /** The audit entry's id: what a citizen quotes in a complaint. */
  reference: string;
  time: string;
  /** The agency that asked: for a request another gateway made on an agency's behalf, that agency. */
  agency: { id: string; name: string };
  /** The gateway that made the request on the agency's behalf (federation); absent for a direct call. */
  via?: { id: string; name: string };
  service: string;
  purpose: { code: string; legalBasis: string | null } | null;
  caseId: string | null;
  fields: string[];
  outcome: AuditEntry['outcome'];
}

export interface CitizenApiDeps {
  cfg: GatewayConfig;
  audit: AuditLog;
  verifyConsent: ConsentVerifier;
  now: () => number;
}

/** The agency's name from config; console reads are named as such. */
export function clientName(cfg: GatewayConfig, clientId: string): string {
  const client = cfg.clients.find((c) => c.id === clientId);
  if (client) return client.name;
  if (clientId.startsWith('console:')) return 'Kiểm tra nhật ký (auditor console)';
  return clientId;
}

/**
 * Whether the citizen may see an entry now: not their own look at this log, and not an access
 * whose purpose is kept confidential (e.g. an investigation) until `time + confidentialDays`.
 */
function visibleAt(cfg: GatewayConfig, e: AuditEntry, now: number): boolean {
  if (e.service === ACCESS_LOG_SERVICE) return false;
  const days = cfg.purposes.find((p) => p.code === e.purpose)?.confidentialDays ?? 0;
  return days === 0 || Date.parse(e.time) + days * DAY_MS <= now;
}

function toCitizenAccess(cfg: GatewayConfig, e: AuditEntry): CitizenAccess {
  const purpose = e.purpose ? cfg.purposes.find((p) => p.code === e.purpose) : undefined;
  const caller = { id: e.client, name: clientName(cfg, e.client) };
  const agency = e.actingFor === undefined ? { agency: caller }
    : { agency: { id: e.actingFor, name: actingPartyName(cfg.clients.find((c) => c.id === e.client), e.actingFor) }, via: caller };
  return {
    reference: e.id, time: e.time, ...agency, service: e.service,
    purpose: e.purpose ? { code: e.purpose, legalBasis: purpose?.legalBasis ?? null } : null,
    caseId: e.caseId, fields: e.fields, outcome: e.outcome,
  };
}

/**
 * GET /citizen/access-log: who accessed the consenting citizen's data (`sub` of
 * X-Citizen-Consent), newest first, paged. The caller is a client granted `citizen.access-log`
 * (the portal); the citizen is found by the pseudonym of `sub`, as the log stores subjects.
 */
export function accessLogOperation(req: Request, d: CitizenApiDeps): Operation {
  return {
    service: ACCESS_LOG_SERVICE, version: null, grant: ACCESS_LOG_SERVICE, purposeRequired: false, consent: true,
    async run({ consent }) {
      if (!consent) throw new Error('the access log runs only after its consent was verified');
      const { limit, cursor: first } = parseAuditQuery(req.query, 'accessLog');
      const filter = { subject: d.audit.pseudonymize(consent.sub) };
      const now = d.now();
      const entries: CitizenAccess[] = [];
      let cursor = first ?? null;
      for (let round = 0; round < MAX_ROUNDS && entries.length < limit; round++) {
        // Asking only for what is still missing means a page never overshoots, so the store's cursor stays exact.
        const page = await queryPage(d.audit, 'accessLog', filter, limit - entries.length, cursor);
        for (const e of page.entries) if (visibleAt(d.cfg, e, now)) entries.push(toCitizenAccess(d.cfg, e));
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      return { body: { entries, nextCursor: cursor }, subjects: [consent.sub], fields: [] };
    },
  };
}
