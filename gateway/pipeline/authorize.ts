import { GatewayError } from '../errors.ts';
import type { GatewayConfig, GrantConfig, PurposeConfig } from '../config/types.ts';
import type { ClientClaims } from './authenticate.ts';
import type { Step } from './types.ts';
import { checkActingParty } from '../federation/acting.ts';

/** The grant name of endpoints every authenticated client may call (discovery). */
export const ANY_CLIENT = '*';

export interface Authorization { grant: GrantConfig; purpose: PurposeConfig | null }

/** Grants indexed once by client and service. */
export function createAuthorizer(cfg: GatewayConfig) {
  const grants = new Map(cfg.grants.map((g) => [`${g.client}\u0000${g.service}`, g]));
  const purposes = new Map(cfg.purposes.map((p) => [p.code, p]));

  return {
    /** The grant for (client, service); FORBIDDEN_SERVICE when there is none. */
    grantFor(clientId: string, service: string): GrantConfig {
      const grant = grants.get(`${clientId}\u0000${service}`);
      if (!grant) throw new GatewayError('FORBIDDEN_SERVICE', `service ${service} is not granted to this client`);
      return grant;
    },
    /**
     * client × service × purpose: the purpose must be registered and granted for this service, and a
     * case id given when the purpose requires one. `purposeRequired` is false for non-data endpoints.
     */
    authorize(clientId: string, service: string, claims: ClientClaims, purposeRequired = true): Authorization {
      if (service === ANY_CLIENT) return { grant: { client: clientId, service, purposes: [], fieldGroups: [] }, purpose: null };
      const grant = this.grantFor(clientId, service);
      if (!claims.purpose) {
        if (purposeRequired) throw new GatewayError('FORBIDDEN_PURPOSE', 'purpose claim required for data services');
        return { grant, purpose: null };
      }
      const purpose = purposes.get(claims.purpose);
      if (!purpose || !grant.purposes.includes(purpose.code)) throw new GatewayError('FORBIDDEN_PURPOSE', `purpose ${claims.purpose} is not granted for ${service}`);
      if (purpose.caseIdRequired && !claims.case_id) throw new GatewayError('CASE_ID_REQUIRED', `purpose ${purpose.code} requires case_id`);
      return { grant, purpose };
    },
    purpose: (code: string) => purposes.get(code),
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;

/** client × service × purpose (and a case id where the purpose needs one); the field groups the caller may receive. */
export const authorize: Step = (x) => {
  const op = x.op!;
  checkActingParty(x.auth!.client, x.auth!.actingFor);
  x.authz = x.deps.authorizer.authorize(x.auth!.client.id, op.grant, x.auth!.claims, op.purposeRequired);
  const groups = op.contract?.meta.fieldGroups ?? {};
  // A composite minimises per field itself, so every granted group reaches it.
  x.granted = new Set(x.authz.grant.fieldGroups.filter((g) => !op.records || g in groups));
};
