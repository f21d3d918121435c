import type { IdentityRecord } from '../../adapters/population/index.ts';
import type { ServiceHandler } from './types.ts';

/** population.identity v1: one citizen from the National Population Database. */
export const populationIdentity: ServiceHandler<{ personalId: string }, IdentityRecord & Record<string, unknown>> = {
  service: 'population.identity',
  version: 1,
  async handle({ request, adapters, trace }) {
    return { body: (await adapters.population.getIdentity(request.personalId, trace)) as IdentityRecord & Record<string, unknown> };
  },
  subjects: (request) => [request.personalId],
  records: (response) => [response],
};
