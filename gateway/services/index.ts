import type { ServiceHandler } from './types.ts';
import { populationIdentity } from './population-identity.ts';
import { landParcel } from './land-parcel.ts';
import { justiceSecuredTransactions } from './justice-secured-transactions.ts';
import { taxObligations } from './tax-obligations.ts';
import { taxLandTransferDeclaration } from './tax-land-transfer-declaration.ts';
import { portalPrefill } from './portal-prefill.ts';
import { landTitleVerification } from './land-title-verification.ts';

/** Every data service's handler; its contract lives in contracts/<service>/v<major>/. */
export const handlers: readonly ServiceHandler[] = [populationIdentity, landParcel, justiceSecuredTransactions, taxObligations, taxLandTransferDeclaration,
  portalPrefill, landTitleVerification];

export { serviceOperation, type ServiceDeps } from './operation.ts';
export type { ServiceHandler, ServiceContext, HandlerAnswer } from './types.ts';

/** Service ids that grants may name: data services, the audit endpoints and the citizen's access log. */
export const grantableServices = (): Set<string> => new Set([...handlers.map((h) => h.service), 'audit', 'citizen.access-log']);
