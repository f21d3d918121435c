import type { Registration, RegistrationQuery } from '../../adapters/justice/index.ts';
import type { ServiceHandler } from './types.ts';

type SecuredTransactionsResponse = {
  registrations?: Registration[];
  source: { agency: 'justice'; retrievedAt: string; reference: string };
} & Record<string, unknown>;

/** justice.secured-transactions v1: mortgages registered on a certificate, a parcel or by a grantor. */
export const justiceSecuredTransactions: ServiceHandler<RegistrationQuery, SecuredTransactionsResponse> = {
  service: 'justice.secured-transactions',
  version: 1,
  async handle({ request, adapters, trace }) {
    const { registrations, reference, retrievedAt } = await adapters.justice.findRegistrations(request, trace);
    return { body: { registrations, source: { agency: 'justice', retrievedAt, reference } } };
  },
  // Grantors asked about and those the answer released (a withheld list names nobody).
  subjects: (request, response) => {
    const ids = 'grantorPersonalId' in request ? [request.grantorPersonalId] : [];
    for (const r of response?.registrations ?? []) ids.push(r.grantor.personalId);
    return [...new Set(ids)];
  },
  // The whole answer is one record whose only field group is the list.
  records: (response) => [response],
};
