import { GatewayError } from '../errors.ts';
import { describeSchemaError, type Contract } from '../contracts.ts';
import { minimize } from '../pipeline/minimize.ts';
import type { Operation } from '../pipeline/index.ts';
import type { ConsentVerifier } from '../pipeline/consent.ts';
import type { FormConfig } from '../config/types.ts';
import type { Adapters } from '../../adapters/index.ts';
import type { ServiceHandler } from './types.ts';
import type { IdempotencyStore } from '../idempotency.ts';

export interface ServiceDeps {
  adapters: Adapters;
  forms: readonly FormConfig[];
  verifyConsent: ConsentVerifier;
  idempotency: IdempotencyStore;
  contractOf(service: string, version?: number): Contract | undefined;
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * A data service as a pipeline operation: validate the request against its contract, check
 * consent where the contract asks for it, run the handler, refuse an answer outside the contract,
 * release only granted field groups.
 */
export function serviceOperation(handler: ServiceHandler, contract: Contract, deps: ServiceDeps): Operation {
  const { meta } = contract;
  const groups = meta.fieldGroups;
  return {
    service: meta.service,
    version: meta.version,
    grant: meta.service,
    purposeRequired: true,
    requestSubjects: (body) => (body && typeof body === 'object' ? handler.subjects(body, null).filter((s) => typeof s === 'string') : []),
    async run({ requestId, inbound, body, auth, authz, trace }) {
      if (!contract.validateRequest(body)) throw new GatewayError('REQUEST_INVALID', describeSchemaError(contract.validateRequest.errors));
      const consent = meta.consent ? await deps.verifyConsent(inbound.consent, auth.client.id) : null;
      handler.checkRequest?.(body, { consent });
      let idempotencyKey: string | null = null;
      if (meta.write) {
        if (!inbound.idempotencyKey) throw new GatewayError('IDEMPOTENCY_KEY_REQUIRED', 'send an Idempotency-Key header');
        if (!IDEMPOTENCY_KEY.test(inbound.idempotencyKey)) throw new GatewayError('REQUEST_INVALID', 'Idempotency-Key must be 8 to 128 characters of [A-Za-z0-9._:-]');
        idempotencyKey = inbound.idempotencyKey;
      }
      const granted = new Set(authz.grant.fieldGroups.filter((g) => g in groups || !handler.records));
      const response = await handler.handle({
        request: body, requestId, client: auth.client, claims: auth.claims, purpose: authz.purpose, consent,
        grantedGroups: granted, trace, adapters: deps.adapters, idempotencyKey, idempotency: deps.idempotency, forms: deps.forms, contract, contractOf: deps.contractOf,
      });
      if (!contract.validateResponse(response)) {
        throw new GatewayError('UPSTREAM_BAD_RESPONSE', `answer outside ${meta.service} v${meta.version}: ${describeSchemaError(contract.validateResponse.errors)}`);
      }
      // Subjects are everyone the answer concerns, read before minimisation removes members.
      const subjects = handler.subjects(body, response);
      let fields: string[];
      if (handler.records) {
        const status = minimize(handler.records(response), groups, granted);
        (response as Record<string, unknown>).fieldGroups = status;
        fields = Object.keys(status).filter((g) => status[g] === 'released').map((g) => `${meta.service}:${g}`);
      } else {
        fields = releasedFieldsOf(response);
      }
      return { body: response, subjects, fields };
    },
  };
}

/** Composites report what they released as `releasedFields` (kept out of the answer's audit-only part). */
function releasedFieldsOf(response: Record<string, unknown>): string[] {
  const hidden = (response as { [k: symbol]: unknown })[RELEASED];
  return Array.isArray(hidden) ? (hidden as string[]) : [];
}

/** Composites attach the fields they released under this symbol; it never reaches the wire. */
export const RELEASED = Symbol('releasedFields');
