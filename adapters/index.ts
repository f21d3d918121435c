import type { Server } from 'node:http';
import type { Express } from 'express';
import type { GatewayConfig } from '../gateway/config/types.ts';
import type { UpstreamObserver, BreakerState } from './shared/upstream-client.ts';
import type { SimulatorFaults } from './shared/simulator-faults.ts';
import type { RemoteGateway } from './shared/remote-gateway.ts';
import { defineAgency, type AdapterHealth, type AgencyPlugin } from './agency.ts';
import { populationAgency, createPopulationAdapter, createPopulationSimulator, type PopulationAdapter } from './population/index.ts';
import { landAgency, type LandAdapter } from './land/index.ts';
import { justiceAgency, type JusticeAdapter } from './justice/index.ts';
import { taxAgency, type TaxAdapter } from './tax/index.ts';

export type { PopulationAdapter, BreakerState, UpstreamObserver, SimulatorFaults, AdapterHealth, AgencyPlugin };
export { createPopulationAdapter, createPopulationSimulator, defineAgency };

/** The agencies this gateway knows, in order; the one list every other list of agencies derives from. */
const registry = new Map<string, AgencyPlugin>([populationAgency, landAgency, taxAgency, justiceAgency].map((p) => [p.name, p as AgencyPlugin]));

const AGENCY_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Adds an agency system (a plug-in from its own folder); call before the config is parsed. Its
 * name becomes `upstreams.<name>` and `simulators.<name>` in config, `UPSTREAM_<NAME>_URL` in
 * the environment, and `adapters.<name>` for handlers.
 */
export function registerAgency(plugin: AgencyPlugin): void {
  if (!AGENCY_NAME.test(plugin.name)) throw new Error(`agency name "${plugin.name}" must match ${AGENCY_NAME}`);
  if (registry.has(plugin.name) && registry.get(plugin.name) !== plugin) throw new Error(`agency ${plugin.name} is already registered`);
  registry.set(plugin.name, plugin);
}

/** Every registered agency, in registration order. */
export const agencies = (): AgencyPlugin[] => [...registry.values()];
export const agencyNames = (): string[] => [...registry.keys()];
/** A registered agency by name, or undefined. */
export const agencyNamed = (name: string): AgencyPlugin | undefined => registry.get(name);

/** Every agency system behind its adapter, as the gateway's handlers see them: the built-in four typed, plug-ins by name. */
export interface Adapters {
  population: PopulationAdapter;
  land: LandAdapter;
  justice: JusticeAdapter;
  tax: TaxAdapter;
  [agency: string]: AdapterHealth;
}

/** Builds every adapter from config and the upstream URLs (configured, or the embedded simulators'). */
export function createAdapters(cfg: GatewayConfig, urls: Record<string, string>, observer?: UpstreamObserver, remotes: ReadonlyMap<string, RemoteGateway> = new Map()): Adapters {
  return Object.fromEntries(agencies().map((p) => [p.name, p.createAdapter({ baseUrl: urls[p.name]!, upstream: cfg.upstreams[p.name]!, observer, remote: remotes.get(p.name) })])) as Adapters;
}

export const adapterList = (adapters: Adapters): AdapterHealth[] => Object.values(adapters);

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
