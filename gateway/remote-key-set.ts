/**
 * A client's keys behind its JWKS URL, so an agency rolls its key with no restart here: an
 * assertion naming a kid the cached set lacks makes the set be fetched again. Anyone can send an
 * assertion with a made-up kid, so that refetch is capped: at most one fetch per
 * `refetchCooldownSeconds` for the client, whatever the kids and whether the fetches succeed
 * (jose's own remote set counts its cooldown from the last success only, so an agency's server
 * that is down would be asked once per request). Fetched keys are used `maxAgeSeconds` at most,
 * then fetched again: a key the agency withdrew stops working without anyone here acting.
 */
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

export interface RemoteKeySetOptions {
  timeoutMs: number;
  cooldownMs: number;
  maxAgeMs: number;
  /** Each fetch, as it ends (the metric of fetches per client). */
  onFetch?: (outcome: 'ok' | 'error') => void;
}

/** Fetches a JWKS document: a 200 with `keys`, within the timeout, no redirect. */
async function fetchJwks(url: string, timeoutMs: number): Promise<JSONWebKeySet> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual', headers: { accept: 'application/json, application/jwk-set+json' } });
  if (res.status !== 200) throw new Error(`JWKS answered ${res.status}`);
  const jwks = (await res.json()) as JSONWebKeySet;
  if (!Array.isArray(jwks?.keys)) throw new Error('not a JWKS');
  return jwks;
}

export function createRemoteKeySet(url: string, o: RemoteKeySetOptions): JWTVerifyGetKey {
  let local: { keys: JWTVerifyGetKey; at: number } | null = null;
  let lastAttempt = -Infinity;
  let pending: Promise<void> | null = null;
  const coolingDown = () => Date.now() - lastAttempt < o.cooldownMs;
  // One fetch at a time: requests arriving meanwhile wait for it instead of starting their own.
  const refresh = () => pending ??= (async () => {
    lastAttempt = Date.now();
    try {
      local = { keys: createLocalJWKSet(await fetchJwks(url, o.timeoutMs)), at: Date.now() };
      o.onFetch?.('ok');
    } catch {
      o.onFetch?.('error');
    } finally {
      pending = null;
    }
  })();

  return async (header, token) => {
    if (pending) await pending;
    if ((!local || Date.now() - local.at >= o.maxAgeMs) && !coolingDown()) await refresh();
    const current = local;
    // Nothing fetched yet, or kept past its age: no key to trust (the cooldown decides when to ask again).
    if (!current || Date.now() - current.at >= o.maxAgeMs) throw new joseErrors.JWKSNoMatchingKey();
    try {
      return await current.keys(header, token);
    } catch (e) {
      if (!(e instanceof joseErrors.JWKSNoMatchingKey) || coolingDown()) throw e;
      await refresh();
      if (!local || local === current) throw e;
      return local.keys(header, token);
    }
  };
}
