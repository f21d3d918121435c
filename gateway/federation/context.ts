import { AsyncLocalStorage } from 'node:async_hooks';
import type { Authenticated } from '../pipeline/authenticate.ts';

/**
 * The request a data service is answering, as an adapter reaching another gateway needs it: who
 * asked (the client, or the party it acts for) and why (purpose, case id, officer). It rides an
 * AsyncLocalStorage set around the handler, so adapters keep their domain signatures (a handler
 * calls `getIdentity(personalId, trace)` whether the population database is near or behind
 * another gateway) and composites need no change.
 */
const store = new AsyncLocalStorage<Authenticated>();

/** Runs a handler with its request's caller in reach of the adapters it calls. */
export const withCaller = <T>(caller: Authenticated, fn: () => Promise<T>): Promise<T> => store.run(caller, fn);

/** The caller of the data service being answered on this async path; undefined outside one. */
export const currentCaller = (): Authenticated | undefined => store.getStore();
