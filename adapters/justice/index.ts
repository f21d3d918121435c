export {
  createJusticeAdapter, mapRegistrations,
  type JusticeAdapter, type Registration, type RegistrationQuery, type RegistrationsFound,
} from './adapter.ts';
export { createJusticeSimulator } from './simulator.ts';
export { justiceAgency } from './agency.ts';
