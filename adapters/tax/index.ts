export {
  createTaxAdapter, mapObligations, mapDeclaration,
  type TaxAdapter, type TaxAdapterOptions, type Obligation, type ObligationsAnswer, type ObligationsQuery, type TransferSheet, type Declaration, type AssessedObligation,
} from './adapter.ts';
export { createTaxSimulator, TAX_DEMO_CREDENTIALS, type TaxSimulator, type TaxSimulatorControl, type TaxSimulatorOptions } from './simulator.ts';
export { taxAgency } from './agency.ts';
