import { defineAgency } from '../agency.ts';
import { createLandAdapter } from './adapter.ts';
import { createLandSimulator } from './simulator.ts';

/** The land registry: REST JSON with its own field names and paging. */
export const landAgency = defineAgency({
  name: 'land',
  simulatorPort: 9102,
  createAdapter: ({ baseUrl, upstream, observer }) => createLandAdapter({ baseUrl, resilience: upstream.resilience, observer }),
  createSimulator: createLandSimulator,
});
