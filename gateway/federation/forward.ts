import type { RemoteGateway } from '../../adapters/shared/remote-gateway.ts';
import type { Contract } from '../contracts.ts';
import type { ServiceHandler } from '../services/types.ts';

const personalIdOf = (v: unknown): string[] => {
  const id = v && typeof v === 'object' ? (v as { personalId?: unknown }).personalId : undefined;
  return typeof id === 'string' ? [id] : [];
};

/**
 * A service another gateway publishes that this gateway has no handler for: served by asking the
 * remote (the same assertion, verification and custody as an adapter's call) under the remote's
 * own id, version and pinned contract. The pipeline treats it as any service: grants, request and
 * response validation, minimisation, signing, the audit entry. Its field groups are minimised on
 * the answer's top-level members, and whom it concerns is its `personalId`, in request or answer.
 */
export function forwardedService(remote: RemoteGateway, contract: Contract): ServiceHandler {
  const { service, version, fieldGroups } = contract.meta;
  return {
    service,
    version,
    async handle({ request, trace }) {
      const { fieldGroups: _theirs, ...body } = await remote.call(service, version, request, trace);
      return { body };
    },
    subjects: (request, response) => [...new Set([...personalIdOf(request), ...personalIdOf(response)])],
    ...(Object.keys(fieldGroups).length ? { records: (response: Record<string, unknown>) => [response] } : {}),
  };
}
