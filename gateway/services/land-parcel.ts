import type { ParcelQuery, ParcelRecord } from '../../adapters/land/index.ts';
import type { ServiceHandler } from './types.ts';

interface LandParcelResponse extends Record<string, unknown> {
  parcels: ParcelRecord[];
  source: { agency: 'land'; retrievedAt: string; reference?: string };
}

/** land.parcel v1: parcels, certificates and owners from the land registry; an empty list is "no data". */
export const landParcel: ServiceHandler<ParcelQuery, LandParcelResponse> = {
  service: 'land.parcel',
  version: 1,
  async handle({ request, adapters, trace }) {
    const { parcels, reference, retrievedAt } = await adapters.land.findParcels(request, trace);
    return { body: { parcels, source: { agency: 'land', retrievedAt, ...(reference ? { reference } : {}) } } };
  },
  subjects: (request, response) => unique([ownerAsked(request), ...ownersIn(response)]),
  records: (response) => response.parcels as unknown as Record<string, unknown>[],
};

// The pipeline also calls subjects() on a request it has not validated yet, so nothing is assumed about its shape.
function ownerAsked(request: unknown): string | undefined {
  const id = (request as { ownerPersonalId?: unknown } | null)?.ownerPersonalId;
  return typeof id === 'string' ? id : undefined;
}

/** Owners left in the answer (after minimisation, only those actually released). */
function ownersIn(response: LandParcelResponse | null): string[] {
  return (response?.parcels ?? []).flatMap((p) => (p.owners ?? []).map((o) => o.personalId));
}

const unique = (ids: (string | undefined)[]): string[] => [...new Set(ids.filter((id): id is string => typeof id === 'string'))];
