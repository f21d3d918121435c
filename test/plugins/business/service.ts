/** business.enterprise v1: an enterprise from the business registry, by tax code; the legal representative is a subject. */
import { fileURLToPath } from 'node:url';
import type { ServiceHandler } from '../../../gateway/services/index.ts';
import type { BusinessAdapter, Enterprise } from './agency.ts';

export const CONTRACTS_DIR = fileURLToPath(new URL('./contracts/', import.meta.url));

export const businessEnterprise: ServiceHandler<{ taxCode: string }, Enterprise & Record<string, unknown>> = {
  service: 'business.enterprise',
  version: 1,
  async handle({ request, adapters, trace }) {
    return { body: (await (adapters.business as BusinessAdapter).findEnterprise(request.taxCode, trace)) as Enterprise & Record<string, unknown> };
  },
  subjects: (_request, response) => (response?.legalRepresentative ? [response.legalRepresentative.personalId] : []),
  records: (response) => [response],
};
