import type { AuditEntry, Checkpoint } from '../../gateway/audit/index.ts';

/** An NDJSON audit export: its entries, and the signed head its last line must be. */
export function parseExport(text: string): { entries: AuditEntry[]; head: Checkpoint } {
  const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = lines.pop() as { head?: Checkpoint } | undefined;
  if (!last?.head || typeof last.head.jws !== 'string') throw new Error('the export does not end with its signed head');
  return { entries: lines as unknown as AuditEntry[], head: last.head };
}
