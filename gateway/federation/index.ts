import { join } from 'node:path';
import { agencies } from '../../adapters/index.ts';
import { createRemoteGateway, type RemoteGateway } from '../../adapters/shared/remote-gateway.ts';
import type { UpstreamObserver } from '../../adapters/shared/upstream-client.ts';
import { sha256Hex } from '../audit/entry.ts';
import { ConfigError } from '../config/errors.ts';
import type { GatewayConfig } from '../config/types.ts';
import { contractKey, type Contract } from '../contracts.ts';
import { keyPairFromJwk, loadOrCreatePrivateJwk } from '../keys.ts';
import type { Logger } from '../logger.ts';
import type { ServiceHandler } from '../services/types.ts';
import { pinRemoteContracts } from './contracts.ts';
import { forwardedService } from './forward.ts';

export { contractSha256, contractDocument } from './contracts.ts';

/** The gateways this one reaches (federation), set up at start. */
export interface Federation {
  /** Per agency whose upstream is another gateway. */
  remotes: Map<string, RemoteGateway>;
  /** Services a remote publishes that this gateway has no handler for, served by forwarding, with their pinned contracts. */
  forwarded: { key: string; contract: Contract; handler: ServiceHandler }[];
  /** Which gateway serves each service reached through one (discovery, OpenAPI). */
  servedBy: Map<string, string>;
}

/** Where this gateway's client key at remote gateways lives unless configured. */
export const federationKeyFile = (cfg: GatewayConfig, file?: string) => file ?? join(cfg.dataDir, 'keys', 'federation.private.jwk.json');

/**
 * For every `upstreams.<agency>.gateway`: the agency's plug-in must be able to reach another
 * gateway and the remote's contracts it calls must be pinned; the pins are checked against what
 * the remote publishes (federation/contracts.ts); the client key is loaded (generated at first
 * start). Everything wrong is a ConfigError naming its key, before the gateway listens.
 */
export async function connectFederation(cfg: GatewayConfig, o: { contracts: ReadonlyMap<string, Contract>; logger: Logger; observer?: UpstreamObserver }): Promise<Federation> {
  const federation: Federation = { remotes: new Map(), forwarded: [], servedBy: new Map() };
  for (const plugin of agencies()) {
    const upstream = cfg.upstreams[plugin.name];
    const remote = upstream?.gateway;
    if (!upstream || !remote) continue;
    const path = `/upstreams/${plugin.name}/gateway`;
    if (!plugin.remoteServices) throw new ConfigError(`${path}: the ${plugin.name} adapter cannot reach another gateway (no remote contract mapping)`);
    for (const needed of plugin.remoteServices) {
      if (!remote.services.some((s) => s.service === needed.service && s.version === needed.version)) {
        throw new ConfigError(`${path}/services: pin ${needed.service} v${needed.version} (the ${plugin.name} adapter calls it)`);
      }
    }
    const pinned = await pinRemoteContracts(path, remote, {
      local: o.contracts, logger: o.logger, cacheDir: join(cfg.dataDir, 'federation', sha256Hex(remote.gatewayId).slice(0, 16)),
    });
    const key = await keyPairFromJwk(await loadOrCreatePrivateJwk(federationKeyFile(cfg, remote.privateJwkFile), 'ES256'));
    const gateway = createRemoteGateway({
      agency: plugin.name, remote, key, contracts: new Map(pinned.map((p) => [p.key, p.contract])), resilience: upstream.resilience, observer: o.observer,
    });
    federation.remotes.set(plugin.name, gateway);
    for (const [i, p] of pinned.entries()) {
      federation.servedBy.set(p.key, remote.gatewayId);
      if (o.contracts.has(p.key) || federation.forwarded.some((f) => f.key === p.key)) continue;
      const { meta } = p.contract;
      if (meta.consent || meta.write) {
        throw new ConfigError(`${path}/services/${i}: ${meta.service} v${meta.version} ${meta.consent ? 'needs the citizen\'s consent addressed to the remote' : 'is a write'}; only reads without consent are forwarded`);
      }
      federation.forwarded.push({ key: contractKey(meta.service, meta.version), contract: p.contract, handler: forwardedService(gateway, p.contract) });
    }
  }
  return federation;
}
