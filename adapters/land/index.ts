export {
  createLandAdapter, mapParcel,
  type LandAdapter, type LandAdapterOptions, type ParcelQuery, type ParcelAnswer, type ParcelRecord, type ParcelRef, type ParcelOwner, type ParcelAddress,
} from './adapter.ts';
export { createLandSimulator } from './simulator.ts';
export { landAgency } from './agency.ts';
