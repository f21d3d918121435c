import { defineAgency } from '../agency.ts';
import { createTaxAdapter } from './adapter.ts';
import { createTaxSimulator, TAX_DEMO_CREDENTIALS } from './simulator.ts';

/** The tax authority: an OAuth2 client-credentials token first, then REST JSON. */
export const taxAgency = defineAgency({
  name: 'tax',
  simulatorPort: 9103,
  upstreamOptions: {
    clientId: { type: 'string', description: 'OAuth2 client id at the tax authority (default: the simulator\'s demo credentials)' },
    clientSecret: { type: 'string', description: 'OAuth2 client secret' },
  },
  requiredInProduction: ['clientId', 'clientSecret'],
  createAdapter: ({ baseUrl, upstream, observer }) => createTaxAdapter({
    baseUrl, resilience: upstream.resilience, observer,
    clientId: (upstream.clientId as string | undefined) ?? TAX_DEMO_CREDENTIALS.clientId,
    clientSecret: (upstream.clientSecret as string | undefined) ?? TAX_DEMO_CREDENTIALS.clientSecret,
  }),
  createSimulator: createTaxSimulator,
});
