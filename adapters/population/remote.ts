import { GatewayError } from '../../gateway/errors.ts';
import type { RemoteGateway } from '../shared/remote-gateway.ts';
import type { IdentityRecord, PopulationAdapter } from './adapter.ts';

/** The contract the population adapter reaches another gateway through. */
export const REMOTE_IDENTITY = { service: 'population.identity', version: 1 } as const;

/**
 * The National Population Database behind another gateway (federation): `getIdentity` calls the
 * remote's population.identity v1 and maps its contract answer back to the domain record, so every
 * handler (population.identity, portal.prefill, land.title-verification) works unchanged. What
 * the remote withheld from this gateway stays absent; its `fieldGroups` statement is the remote's
 * and is dropped, as this gateway minimises for its own client.
 */
export function createRemotePopulationAdapter(remote: RemoteGateway): PopulationAdapter {
  return {
    name: 'population',
    async getIdentity(personalId, trace) {
      const { fieldGroups: _theirs, ...record } = await remote.call(REMOTE_IDENTITY.service, REMOTE_IDENTITY.version, { personalId }, trace);
      if (record.personalId !== personalId) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `${remote.gatewayId}: answered about another citizen`);
      return record as unknown as IdentityRecord;
    },
    health: remote.health,
    breakerState: remote.breakerState,
  };
}
