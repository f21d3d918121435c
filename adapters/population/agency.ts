import { defineAgency } from '../agency.ts';
import { createPopulationAdapter } from './adapter.ts';
import { createPopulationSimulator } from './simulator.ts';

/** The National Population Database: JSON with Vietnamese member names and dd/mm/yyyy dates. */
export const populationAgency = defineAgency({
  name: 'population',
  simulatorPort: 9101,
  createAdapter: ({ baseUrl, upstream, observer }) => createPopulationAdapter({ baseUrl, resilience: upstream.resilience, observer }),
  createSimulator: createPopulationSimulator,
});
