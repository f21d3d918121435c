import { defineAgency } from '../agency.ts';
import { createPopulationAdapter } from './adapter.ts';
import { createPopulationSimulator } from './simulator.ts';
import { createRemotePopulationAdapter, REMOTE_IDENTITY } from './remote.ts';

/** The National Population Database: JSON with Vietnamese member names and dd/mm/yyyy dates. */
export const populationAgency = defineAgency({
  name: 'population',
  simulatorPort: 9101,
  createAdapter: ({ baseUrl, upstream, observer, remote }) => (remote ? createRemotePopulationAdapter(remote) : createPopulationAdapter({ baseUrl, resilience: upstream.resilience, observer })),
  remoteServices: [REMOTE_IDENTITY],
  createSimulator: createPopulationSimulator,
});
