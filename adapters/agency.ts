import type { Express } from 'express';
import type { UpstreamConfig } from '../gateway/config/types.ts';
import type { BreakerState, UpstreamObserver } from './shared/upstream-client.ts';
import type { SimulatorFaults } from './shared/simulator-faults.ts';
import type { RemoteGateway } from './shared/remote-gateway.ts';

/** What every adapter has besides its operations. */
export interface AdapterHealth {
  readonly name: string;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

/**
 * An agency system as a plug-in: one folder under `adapters/` exports one of these, and every
 * list of agencies (config schema, adapters, simulators, CLI, metrics, environment overrides)
 * derives from the registry in `adapters/index.ts`. Nothing else names an agency.
 */
export interface AgencyPlugin<A extends AdapterHealth = AdapterHealth> {
  /** The agency's id: `upstreams.<name>` in config, `UPSTREAM_<NAME>_URL` in the environment. */
  name: string;
  /** Default port of its standalone simulator (`gateway simulate <name>`). */
  simulatorPort: number;
  /** JSON Schema properties of `upstreams.<name>` besides `url` and `resilience` (credentials, say). */
  upstreamOptions?: Record<string, unknown>;
  /** Options of `upstreams.<name>` a production config must set (the adapter falls back to the simulator's demo values). */
  requiredInProduction?: string[];
  /**
   * Builds the adapter for a base URL (configured, or the embedded simulator's), or, when
   * `upstreams.<name>.gateway` names another gateway, on that gateway's contracts (`remote`).
   */
  createAdapter(o: { baseUrl: string; upstream: UpstreamConfig; observer?: UpstreamObserver; remote?: RemoteGateway }): A;
  /** The contracts its adapter can reach another gateway through; absent: it cannot (upstreams.<name>.gateway is refused). */
  remoteServices?: readonly { service: string; version: number }[];
  /** An express app speaking the agency's own protocol over its part of the seed world. */
  createSimulator(faults: SimulatorFaults): Express;
}

/** Declares a plug-in (typed, and checked once at registration). */
export const defineAgency = <A extends AdapterHealth>(plugin: AgencyPlugin<A>): AgencyPlugin<A> => plugin;
