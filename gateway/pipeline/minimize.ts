import type { Step } from './types.ts';

export type FieldGroupStatus = 'released' | 'withheld' | 'unavailable';

/**
 * Data minimisation: on every record, keeps only the members of granted field groups and says
 * per group whether it was released, withheld (not granted) or unavailable (the source has none).
 * Members outside every group (identifiers, source) are the envelope and always kept.
 */
export function minimize(
  records: Record<string, unknown>[],
  fieldGroups: Readonly<Record<string, readonly string[]>>,
  granted: ReadonlySet<string>,
): Record<string, FieldGroupStatus> {
  const status: Record<string, FieldGroupStatus> = {};
  for (const [group, members] of Object.entries(fieldGroups)) {
    if (!granted.has(group)) {
      for (const r of records) for (const m of members) delete r[m];
      status[group] = 'withheld';
    } else {
      status[group] = records.some((r) => members.some((m) => r[m] !== undefined && r[m] !== null)) ? 'released' : 'unavailable';
    }
  }
  return status;
}

/**
 * Who the answer concerns (read before members are removed), then data minimisation of a
 * contract's records: only granted field groups stay, and the answer says of each group whether
 * it was released, withheld or unavailable.
 */
export const minimise: Step = (x) => {
  const op = x.op!;
  const result = x.result!;
  result.subjects ??= op.answerSubjects?.(x.body, result.body);
  if (!op.records || !op.contract) return;
  const { service, fieldGroups } = op.contract.meta;
  const status = minimize(op.records(result.body), fieldGroups, x.granted);
  (result.body as Record<string, unknown>).fieldGroups = status;
  result.fields = Object.keys(status).filter((g) => status[g] === 'released').map((g) => `${service}:${g}`);
};
