import type { UpstreamCall } from '../audit/entry.ts';
import type { Authenticated } from '../pipeline/authenticate.ts';

/**
 * The request a data service is answering, as an adapter reaching another gateway needs it: who
 * asked (the client, or the party it acts for) and why (purpose, case id, officer). It rides the
 * request's trace, the list of upstream calls every adapter call is given for the audit record: a
 * weak map from that list to the caller, set before the handler runs. Adapters keep their domain
 * signatures (a handler calls `getIdentity(personalId, trace)` whether the population database is
 * near or behind another gateway) and composites need no change. An AsyncLocalStorage would carry
 * it as well, but on Node 20 it turns on promise hooks for every promise of every request.
 */
const callers = new WeakMap<readonly UpstreamCall[], Authenticated>();

/** Runs a handler with its request's caller in reach of the adapters it calls with `trace`. */
export function withCaller<T>(caller: Authenticated, trace: readonly UpstreamCall[], fn: () => Promise<T>): Promise<T> {
  callers.set(trace, caller);
  return fn();
}

/** The caller of the data service whose trace this is; undefined outside one. */
export const callerOf = (trace: readonly UpstreamCall[] | undefined): Authenticated | undefined => (trace ? callers.get(trace) : undefined);
