import { GatewayError } from '../errors.ts';
import { isPrintable } from '../domain/index.ts';
import type { ClientConfig } from '../config/types.ts';

/**
 * Delegation between gateways, as RFC 8693 §4.1 spells it in a JWT: `sub` is the party the request
 * is made for (the agency that asked the calling gateway), `act.sub` the party acting for it (the
 * calling gateway, who signed the assertion as `iss`). A chain of gateways nests the earlier actors
 * inside `act`. The acting party is what the audit record keeps as `actingFor`.
 */
export interface ActorClaim { sub: string; act?: ActorClaim }

/** Actors nested deeper than this are refused: no real chain of gateways is that long. */
const MAX_ACTORS = 4;

const isClaimText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128 && isPrintable(v);

function checkActor(act: unknown, depth: number): asserts act is ActorClaim {
  if (depth > MAX_ACTORS) throw new GatewayError('AUTH_INVALID', `act nested deeper than ${MAX_ACTORS}`);
  if (!act || typeof act !== 'object' || Array.isArray(act)) throw new GatewayError('AUTH_INVALID', 'act must be an object');
  const { sub, act: prior } = act as Record<string, unknown>;
  if (!isClaimText(sub)) throw new GatewayError('AUTH_INVALID', 'act.sub must be printable text of at most 128 characters');
  if (prior !== undefined) checkActor(prior, depth + 1);
}

/**
 * The party a verified assertion is made for, or undefined for a direct call (no `act`). With
 * `act`, the signer must be the actor (`act.sub` = `iss`) and `sub` names the party acted for; a
 * `sub` without `act` is ignored, as it always was. Whether this client may act for that party is
 * policy, checked with the grants (`mayActFor`), so that a refusal is audited.
 */
export function actingPartyOf(claims: { iss: string; sub?: unknown; act?: unknown }): string | undefined {
  if (claims.act === undefined) return undefined;
  checkActor(claims.act, 1);
  if (claims.act.sub !== claims.iss) throw new GatewayError('AUTH_INVALID', 'act.sub must be the signing client (iss)');
  if (!isClaimText(claims.sub) || claims.sub === claims.iss) throw new GatewayError('AUTH_INVALID', 'with act, sub must name the party acted for (printable, not iss)');
  return claims.sub;
}

/**
 * A client may act for another party only when its config says so (`clients[].federation.mayActFor`:
 * the ids it may name in `sub`, or `*`): an ordinary client's delegation is FORBIDDEN_ACTING_PARTY.
 */
export function checkActingParty(client: ClientConfig, actingFor: string | undefined): void {
  if (actingFor === undefined) return;
  const allowed = client.federation?.mayActFor ?? [];
  if (!allowed.includes('*') && !allowed.includes(actingFor)) {
    throw new GatewayError('FORBIDDEN_ACTING_PARTY', client.federation ? `this client may not act for ${actingFor}` : 'this client may not act for others (act)');
  }
}

/** The acting party's display name, from the calling gateway's config entry, else its id. */
export const actingPartyName = (client: ClientConfig | undefined, actingFor: string): string =>
  client?.federation?.agencyNames?.[actingFor] ?? actingFor;
