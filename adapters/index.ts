import type { Server } from 'node:http';
import type { Express } from 'express';
import type { AgencyName, GatewayConfig } from '../gateway/config/types.ts';
import type { UpstreamObserver, BreakerState } from './shared/upstream-client.ts';
import type { SimulatorFaults } from './shared/simulator-faults.ts';
import { createPopulationAdapter, createPopulationSimulator, type PopulationAdapter } from './population/index.ts';
import { createLandAdapter, createLandSimulator, type LandAdapter } from './land/index.ts';
import { createJusticeAdapter, createJusticeSimulator, type JusticeAdapter } from './justice/index.ts';
import { createTaxAdapter, createTaxSimulator, TAX_DEMO_CREDENTIALS, type TaxAdapter } from './tax/index.ts';

/** Every agency system behind its adapter, as the gateway's handlers see them. */
export interface Adapters {
  population: PopulationAdapter;
  land: LandAdapter;
  justice: JusticeAdapter;
  tax: TaxAdapter;
}

/** What every adapter has besides its operations. */
export interface AdapterHealth {
  readonly name: string;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

export type { PopulationAdapter, BreakerState, UpstreamObserver, SimulatorFaults };
export { createPopulationAdapter, createPopulationSimulator };

/** Each agency's simulator factory (an express app speaking that agency's native protocol). */
export const simulatorFactories: Partial<Record<AgencyName, (faults: SimulatorFaults) => Express>> = {
  population: createPopulationSimulator,
  land: createLandSimulator,
  justice: createJusticeSimulator,
  tax: createTaxSimulator,
};

/** Builds every adapter from config and the upstream URLs (configured, or the embedded simulators'). */
export function createAdapters(cfg: GatewayConfig, urls: Record<AgencyName, string>, observer?: UpstreamObserver): Adapters {
  return {
    population: createPopulationAdapter({ baseUrl: urls.population, resilience: cfg.upstreams.population.resilience, observer }),
    land: createLandAdapter({ baseUrl: urls.land, resilience: cfg.upstreams.land.resilience, observer }),
    justice: createJusticeAdapter({ baseUrl: urls.justice, resilience: cfg.upstreams.justice.resilience, observer }),
    tax: createTaxAdapter({
      baseUrl: urls.tax, resilience: cfg.upstreams.tax.resilience, observer,
      clientId: cfg.upstreams.tax.clientId ?? TAX_DEMO_CREDENTIALS.clientId, clientSecret: cfg.upstreams.tax.clientSecret ?? TAX_DEMO_CREDENTIALS.clientSecret,
    }),
  };
}

export const adapterList = (adapters: Adapters): AdapterHealth[] => Object.values(adapters) as AdapterHealth[];

/** Starts an express app on a loopback port; resolves with its URL and a closer. */
export function listenOnLoopback(app: Express, port = 0): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      resolve({
        url: `http://127.0.0.1:${actualPort}`,
        server,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
    server.once('error', reject);
  });
}
