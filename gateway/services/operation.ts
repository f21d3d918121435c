import type { Contract } from '../contracts.ts';
import type { Operation } from '../pipeline/index.ts';
import type { ConsentVerifier } from '../pipeline/consent.ts';
import type { FormConfig } from '../config/types.ts';
import type { Adapters } from '../../adapters/index.ts';
import type { ServiceHandler } from './types.ts';
import type { IdempotencyStore } from '../idempotency.ts';
import { withCaller } from '../federation/context.ts';

export interface ServiceDeps {
  adapters: Adapters;
  forms: readonly FormConfig[];
  verifyConsent: ConsentVerifier;
  idempotency: IdempotencyStore;
  contractOf(service: string, version?: number): Contract | undefined;
}

/**
 * A data service as a pipeline operation: its contract (validated both ways and minimised by the
 * pipeline's steps), its consent and write flags, and the handler that answers.
 */
export function serviceOperation(handler: ServiceHandler, contract: Contract, deps: ServiceDeps): Operation {
  const { meta } = contract;
  return {
    service: meta.service,
    version: meta.version,
    grant: meta.service,
    purposeRequired: true,
    contract,
    consent: Boolean(meta.consent),
    write: Boolean(meta.write),
    checkRequest: handler.checkRequest && ((body, consent) => handler.checkRequest!(body, { consent })),
    requestSubjects: (body) => (body && typeof body === 'object' ? handler.subjects(body, null).filter((s) => typeof s === 'string') : []),
    answerSubjects: (body, answer) => handler.subjects(body, answer as Record<string, unknown>),
    records: handler.records && ((answer) => handler.records!(answer as Record<string, unknown>)),
    async run({ requestId, body, auth, authz, consent, granted, trace, idempotencyKey }) {
      // The caller rides along to adapters that reach another gateway (federation/context.ts).
      const { body: answer, fields, subjects } = await withCaller(auth, trace, () => handler.handle({
        request: body, requestId, client: auth.client, claims: auth.claims, purpose: authz.purpose, consent,
        grantedGroups: granted, trace, adapters: deps.adapters, idempotencyKey, idempotency: deps.idempotency, forms: deps.forms, contract, contractOf: deps.contractOf,
      }));
      return { body: answer, fields, subjects };
    },
  };
}
