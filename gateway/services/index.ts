import type { ServiceHandler } from './types.ts';
import { populationIdentity } from './population-identity.ts';

/** Every data service's handler; its contract lives in contracts/<service>/v<major>/. */
export const handlers: readonly ServiceHandler[] = [populationIdentity];

export { serviceOperation, RELEASED, type ServiceDeps } from './operation.ts';
export type { ServiceHandler, ServiceContext } from './types.ts';

/** Service ids that grants may name: data services plus the audit endpoints. */
export const grantableServices = (): Set<string> => new Set([...handlers.map((h) => h.service), 'audit']);
