import type { ServiceHandler } from './types.ts';
import { CONTRACTS_DIR, declaredFieldGroups } from '../contracts.ts';
import { populationIdentity } from './population-identity.ts';
import { landParcel } from './land-parcel.ts';
import { justiceSecuredTransactions } from './justice-secured-transactions.ts';
import { taxObligations } from './tax-obligations.ts';
import { taxLandTransferDeclaration } from './tax-land-transfer-declaration.ts';
import { portalPrefill } from './portal-prefill.ts';
import { landTitleVerification } from './land-title-verification.ts';

const registered: ServiceHandler[] = [populationIdentity, landParcel, justiceSecuredTransactions, taxObligations, taxLandTransferDeclaration,
  portalPrefill, landTitleVerification];
const extraContractDirs: string[] = [];

/** Every data service's handler; its contract lives in contracts/<service>/v<major>/ (or its plug-in's own folder). */
export const handlers: readonly ServiceHandler[] = registered;

/**
 * Adds a data service from a plug-in: its handler, and the folder holding its contract as
 * `<service>/v<major>/{contract,request.schema,response.schema}.json`. Call before the config is
 * parsed and the gateway created; grants, discovery and OpenAPI then know it like any other.
 */
export function registerService(handler: ServiceHandler, options: { contractsDir?: string } = {}): void {
  if (registered.some((h) => h.service === handler.service && h.version === handler.version)) throw new Error(`service ${handler.service} v${handler.version} is already registered`);
  registered.push(handler);
  if (options.contractsDir && !extraContractDirs.includes(options.contractsDir)) extraContractDirs.push(options.contractsDir);
}

/** Where contracts are read from: the repository's contracts/ and every plug-in's folder. */
export const contractDirs = (): string[] => [CONTRACTS_DIR, ...extraContractDirs];

export { serviceOperation, type ServiceDeps } from './operation.ts';
export type { ServiceHandler, ServiceContext, HandlerAnswer } from './types.ts';

/** Service ids that grants may name: data services, the audit endpoints and the citizen's access log. */
export const grantableServices = (): Set<string> => new Set([...handlers.map((h) => h.service), 'audit', 'citizen.access-log']);

/** What grants and forms may name of each grantable service: its contract's field groups; the audit endpoints and the access log have none. */
export const grantableFieldGroups = (): Map<string, string[]> => {
  const groups = declaredFieldGroups(contractDirs());
  for (const s of grantableServices()) if (!groups.has(s)) groups.set(s, []);
  return groups;
};
