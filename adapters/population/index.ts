export { createPopulationAdapter, mapIdentity, type PopulationAdapter, type IdentityRecord, type Address, type Relative } from './adapter.ts';
export { createPopulationSimulator } from './simulator.ts';
export { populationAgency } from './agency.ts';
