import type { ObligationsAnswer, ObligationsQuery } from '../../adapters/tax/index.ts';
import { isPersonalId } from '../domain/index.ts';
import type { ServiceHandler } from './types.ts';

type ObligationsResponse = ObligationsAnswer & Record<string, unknown>;

/** tax.obligations v1: land financial obligations by taxpayer and/or parcel; an empty list is "no data". */
export const taxObligations: ServiceHandler<ObligationsQuery, ObligationsResponse> = {
  service: 'tax.obligations',
  version: 1,
  async handle({ request, adapters, trace }) {
    return { body: (await adapters.tax.getObligations(request, trace)) as ObligationsResponse };
  },
  // Only individuals are data subjects: an enterprise's 10/13-digit tax code is not a personal id.
  subjects: (request, response) => personalIds([(request as { taxCode?: unknown } | null)?.taxCode, ...(response?.obligations ?? []).map((o) => o.taxCode)]),
  records: (response) => [response],
};

// The pipeline also calls subjects() on a request it has not validated yet, so nothing is assumed about its shape.
const personalIds = (values: unknown[]): string[] =>
  [...new Set(values.filter((v): v is string => typeof v === 'string' && isPersonalId(v)))];
