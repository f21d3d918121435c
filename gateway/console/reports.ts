import type { AuditEntry, AuditFilter, Outcome } from '../audit/index.ts';
import { contractKey, type Contract } from '../contracts.ts';
import { csvLine } from '../audit-api.ts';

/** Days and months are counted in Viet Nam's time (UTC+7), where the agencies work. */
const VIETNAM_OFFSET_MS = 7 * 3_600_000;
const DAY_MS = 86_400_000;
export const localDay = (time: string | number) => new Date(new Date(time).getTime() + VIETNAM_OFFSET_MS).toISOString().slice(0, 10);

export const PREFILL_SERVICE = 'portal.prefill';
export const VERIFICATION_SERVICE = 'land.title-verification';

export interface UsageRow {
  month: string;
  client: string;
  agency: string;
  service: string;
  kind: 'prefill' | 'verification' | 'lookup';
  calls: number;
  /** Paper documents one answer replaces (the contract's `documentsReplaced`). */
  documentsPerCall: string[];
  documentsReplaced: number;
}

export interface UsageReport {
  rows: UsageRow[];
  totals: { prefills: number; verifications: number; calls: number; documentsReplaced: number };
}

const kindOf = (service: string): UsageRow['kind'] =>
  service === PREFILL_SERVICE ? 'prefill' : service === VERIFICATION_SERVICE ? 'verification' : 'lookup';

/**
 * Released data-service calls per month, agency and service, and the paper documents they spared
 * citizens. Only services with a contract count: audit reads and discovery replace no document.
 */
export async function usageReport(entries: AsyncIterable<AuditEntry>, contracts: Map<string, Contract>, nameOf: (client: string) => string): Promise<UsageReport> {
  const rows = new Map<string, UsageRow>();
  for await (const e of entries) {
    if (e.outcome !== 'released') continue;
    const contract = contracts.get(contractKey(e.service, e.version ?? 1));
    if (!contract) continue;
    const month = localDay(e.time).slice(0, 7);
    const key = `${month}\u0000${e.client}\u0000${e.service}`;
    let row = rows.get(key);
    if (!row) {
      const documentsPerCall = contract.meta.documentsReplaced ?? [];
      row = { month, client: e.client, agency: nameOf(e.client), service: e.service, kind: kindOf(e.service), calls: 0, documentsPerCall, documentsReplaced: 0 };
      rows.set(key, row);
    }
    row.calls++;
    row.documentsReplaced += row.documentsPerCall.length;
  }
  const sorted = [...rows.values()].sort((a, b) => b.month.localeCompare(a.month) || a.agency.localeCompare(b.agency) || a.service.localeCompare(b.service));
  const sum = (f: (r: UsageRow) => number) => sorted.reduce((n, r) => n + f(r), 0);
  return {
    rows: sorted,
    totals: {
      prefills: sum((r) => (r.kind === 'prefill' ? r.calls : 0)),
      verifications: sum((r) => (r.kind === 'verification' ? r.calls : 0)),
      calls: sum((r) => r.calls),
      documentsReplaced: sum((r) => r.documentsReplaced),
    },
  };
}

export const USAGE_CSV_COLUMNS = ['month', 'client', 'agency', 'service', 'kind', 'calls', 'documentsPerCall', 'documentsReplaced'] as const;

/** The usage report as CSV; the replaced documents of one call as a JSON array in their cell. */
export function usageCsv(report: UsageReport): string {
  return csvLine(USAGE_CSV_COLUMNS) + report.rows.map((r) => csvLine(USAGE_CSV_COLUMNS.map((c) => r[c]))).join('');
}

export interface ActivityReport {
  timeZone: '+07:00';
  days: string[];
  byClient: { client: string; name: string; counts: number[] }[];
  byOutcome: { outcome: Outcome; counts: number[] }[];
}

/** The time filter covering the last `days` local days up to `now`. */
export function activityWindow(days: number, now: number): AuditFilter {
  const first = localDay(now - (days - 1) * DAY_MS);
  return { from: new Date(Date.parse(`${first}T00:00:00Z`) - VIETNAM_OFFSET_MS).toISOString() };
}

/** Accesses per local day, by agency and by outcome, over the last `days` days. */
export async function activityReport(entries: AsyncIterable<AuditEntry>, days: number, now: number, nameOf: (client: string) => string): Promise<ActivityReport> {
  const dayList = Array.from({ length: days }, (_, i) => localDay(now - (days - 1 - i) * DAY_MS));
  const index = new Map(dayList.map((d, i) => [d, i]));
  const byClient = new Map<string, number[]>();
  const byOutcome = new Map<Outcome, number[]>((['released', 'denied', 'failed'] as const).map((o) => [o, dayList.map(() => 0)]));
  for await (const e of entries) {
    const i = index.get(localDay(e.time));
    if (i === undefined) continue;
    if (!byClient.has(e.client)) byClient.set(e.client, dayList.map(() => 0));
    byClient.get(e.client)![i]!++;
    byOutcome.get(e.outcome)![i]!++;
  }
  return {
    timeZone: '+07:00',
    days: dayList,
    byClient: [...byClient].map(([client, counts]) => ({ client, name: nameOf(client), counts })).sort((a, b) => a.name.localeCompare(b.name)),
    byOutcome: [...byOutcome].map(([outcome, counts]) => ({ outcome, counts })),
  };
}
