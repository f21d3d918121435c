import { defineAgency } from '../agency.ts';
import { createJusticeAdapter } from './adapter.ts';
import { createJusticeSimulator } from './simulator.ts';

/** The Justice department's secured-transactions registry: SOAP 1.1. */
export const justiceAgency = defineAgency({
  name: 'justice',
  simulatorPort: 9104,
  createAdapter: ({ baseUrl, upstream, observer }) => createJusticeAdapter({ baseUrl, resilience: upstream.resilience, observer }),
  createSimulator: createJusticeSimulator,
});
