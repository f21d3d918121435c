import { createServer, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Express } from 'express';
import { agencies, agencyNames, createAdapters, adapterList, listenOnLoopback, type Adapters } from '../adapters/index.ts';
import type { AgencyName, GatewayConfig } from './config/types.ts';
import { contractKey, loadContracts, type Contract } from './contracts.ts';
import { openSigningKeys, type SigningKeys } from './key-set.ts';
import { checkFixedKeys, changedKeys, configHash, type ConfigGeneration } from './reload.ts';
import { createSigner, type Signer } from './signing.ts';
import { createAuditLog, openStore, type AuditLog, type AuditStore } from './audit/index.ts';
import { createAnchoring, type Anchoring } from './audit/anchoring.ts';
import { createArchiver, type Archiver } from './audit/archiver.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createMemoryState, type SharedState } from './shared-state.ts';
import { openIdempotencyStore } from './idempotency.ts';
import { createAuthenticator } from './pipeline/authenticate.ts';
import type { JWTVerifyGetKey } from 'jose';
import { createAuthorizer } from './pipeline/authorize.ts';
import { createConsentVerifier } from './pipeline/consent.ts';
import { createPipeline, type Operation } from './pipeline/index.ts';
import { contractDirs, handlers, serviceOperation } from './services/index.ts';
import { createRequestListener } from './routes.ts';
import { answerClientError } from './http.ts';
import type { DestinationStream } from 'pino';
import { connectFederation } from './federation/index.ts';

export interface GatewayOptions {
  /** Log destination (tests capture it). */
  logDestination?: DestinationStream;
  /** Replace the audit store (tests inject failing or memory stores). */
  auditStore?: AuditStore;
  /** Replace shared state (tests). */
  sharedState?: SharedState;
  /** Clock for token checks (tests freeze it). */
  now?: () => number;
}

/** The parts of a running gateway that tests and the CLI reach into. */
export interface Gateway {
  /** Everything but the data plane, which `listen()` serves ahead of it (routes.ts, createRequestListener); the current config generation's. */
  readonly app: Express;
  /** The config serving new requests (the one at start until a reload). */
  readonly config: GatewayConfig;
  /** Which config generation that is (1 at start). */
  readonly generation: ConfigGeneration;
  /** Swaps in a validated config for new requests (reload.ts); throws ConfigError, naming the key, for a change to a key fixed at start. */
  reload(next: GatewayConfig): ConfigGeneration & { changed: string[] };
  /** The signing key set, re-read on SIGHUP and when its manifest changes. */
  signingKeys: SigningKeys;
  audit: AuditLog;
  /** The checkpoints' time-stamper (off without an authority). */
  anchoring: Anchoring;
  /** The background archiver (off while audit.retention.hotDays is absent). */
  archiver: Archiver;
  signer: Signer;
  metrics: Metrics;
  logger: Logger;
  adapters: Adapters;
  contracts: Map<string, Contract>;
  /** URLs of every upstream (embedded simulators included). */
  upstreamUrls: Record<AgencyName, string>;
  url?: string;
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting, finishes in-flight requests, commits the pending audit batch. */
  close(): Promise<void>;
}

async function startSimulators(cfg: GatewayConfig) {
  const urls = {} as Record<AgencyName, string>;
  const closers: (() => Promise<void>)[] = [];
  for (const agency of agencies()) {
    // Another gateway standing in for the agency (federation) needs no simulator either.
    const configured = cfg.upstreams[agency.name]?.url ?? cfg.upstreams[agency.name]?.gateway?.url;
    if (configured) {
      urls[agency.name] = configured.replace(/\/$/, '');
      continue;
    }
    const { url, close } = await listenOnLoopback(agency.createSimulator({ ...cfg.simulators[agency.name] }));
    urls[agency.name] = url;
    closers.push(close);
  }
  return { urls, close: () => Promise.all(closers.map((c) => c())).then(() => undefined) };
}

async function createSharedState(cfg: GatewayConfig, now?: () => number): Promise<SharedState> {
  if (!cfg.redis) return createMemoryState(now);
  const { createRedisState } = await import('./redis-state.ts');
  return createRedisState({ ...cfg.redis, now });
}

/**
 * Graceful close for a listening server: stop accepting, let in-flight requests finish, then
 * resolve. Without this a client's idle keep-alive connection would hold close() open for the
 * whole keepAliveTimeout, so answers sent while closing say `Connection: close` and each connection
 * is dropped as soon as its last answer is out.
 */
function drainingClose(server: Server): () => Promise<void> {
  let closing = false;
  const inFlight = new Set<ServerResponse>();
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (closing) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      if (closing) server.closeIdleConnections();
    });
  });
  return () => new Promise<void>((resolve) => {
    closing = true;
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** Assembles a gateway from a validated config: keys, audit log, simulators, adapters, pipeline, routes. */
export async function createGateway(cfg: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = createLogger(cfg.logLevel, options.logDestination).child({ instance: cfg.instanceId });
  const metrics = createMetrics();
  metrics.initAgencies(agencyNames());
  const signingKeys = await openSigningKeys(cfg, logger);
  const signer = createSigner(signingKeys);
  const store = options.auditStore ?? (await openStore(cfg));
  let archiver: Archiver;
  try {
    // Retention's checks (an archive directory it can write) stop the start before anything runs on the store.
    archiver = createArchiver(cfg, store, { logger, metrics });
  } catch (e) {
    if (!options.auditStore) await store.close().catch(() => {});
    throw e;
  }
  const anchoring = createAnchoring(cfg, store, { logger, metrics });
  const audit = await createAuditLog(cfg, signer, store, {
    onCommit(batch, ms) {
      metrics.auditCommit.observe(ms / 1000);
      metrics.auditBatch.observe(batch.length);
    },
    onError: (err) => logger.error({ err }, 'audit commit failed'),
    onCheckpoint: (cp) => anchoring.checkpointSigned(cp),
  });
  const shared = options.sharedState ?? (await createSharedState(cfg, options.now));
  const idempotency = openIdempotencyStore(cfg);
  const simulators = await startSimulators(cfg);
  const simulated = agencyNames().filter((a) => !cfg.upstreams[a]?.url && !cfg.upstreams[a]?.gateway);
  if (cfg.mode === 'demo') logger.warn({ mode: 'demo', simulated }, 'demo mode: not for production (agencies without a url answer from embedded simulators with seed data)');
  const contracts = loadContracts(contractDirs());
  // Remote gateways standing in for agencies: pinned contracts checked before anything listens.
  const federation = await connectFederation(cfg, { contracts, logger, observer: metrics.upstreamObserver }).catch(async (e) => {
    // A refused start leaves nothing running: the background work first, then what it writes to.
    signingKeys.close();
    await Promise.all([anchoring.close(), archiver.close()]);
    await Promise.all([simulators.close(), audit.close(), shared.close(), idempotency.close()]);
    throw e;
  });
  const adapters = createAdapters(cfg, simulators.urls, metrics.upstreamObserver, federation.remotes);
  for (const f of federation.forwarded) contracts.set(f.key, f.contract);
  const contractOf = (service: string, version = 1) => contracts.get(contractKey(service, version));
  // Clients' remote key sets, kept across reloads for the clients that stay as they were.
  const remoteKeys = new Map<string, JWTVerifyGetKey>();
  const onJwksFetch = (client: string, outcome: 'ok' | 'error') => metrics.clientJwksFetches.inc({ client, outcome });

  /**
   * What one config serves (reload.ts): authentication, authorization, consent, operations, the
   * pipeline and the routes built from it. Everything else (keys, the audit log, shared state,
   * adapters, contracts) is the process's and shared by every generation.
   */
  const serveConfig = (c: GatewayConfig, generation: ConfigGeneration) => {
    const verifyConsent = createConsentVerifier(c, options.now);
    const authorizer = createAuthorizer(c);
    const operations = new Map<string, Operation>();
    for (const h of handlers) {
      const contract = contractOf(h.service, h.version);
      if (!contract) throw new Error(`no contract for ${h.service} v${h.version}`);
      operations.set(contractKey(h.service, h.version), serviceOperation(h, contract, { adapters, forms: c.forms, verifyConsent, contractOf, idempotency }));
    }
    for (const f of federation.forwarded) operations.set(f.key, serviceOperation(f.handler, f.contract, { adapters, forms: c.forms, verifyConsent, contractOf, idempotency }));
    const authenticator = createAuthenticator(c, shared.replay, options.now, { remote: remoteKeys, onJwksFetch });
    const pipelineDeps = { authorizer, rateLimiter: shared.rateLimiter, verifyConsent, audit, anchoring, signer, logger, metrics };
    const pipeline = createPipeline({ ...pipelineDeps, authenticate: (inbound) => authenticator(inbound.authorization, inbound.rawBody) });
    const { app, listener } = createRequestListener({
      cfg: c, pipeline, pipelineDeps, operations, contracts, audit, anchoring, signer, metrics, logger, adapters: adapterList(adapters), authorizer, verifyConsent, shared,
      publicUrl: () => c.publicUrl ?? gateway.url ?? '', now: options.now, generation, servedBy: federation.servedBy,
    });
    return { cfg: c, generation, app, listener };
  };
  let current = serveConfig(cfg, { generation: 1, hash: configHash(cfg) });
  metrics.configGeneration.set(1);

  let server: Server | undefined;
  let closeServer: (() => Promise<void>) | undefined;
  const gateway: Gateway = {
    get app() { return current.app; },
    get config() { return current.cfg; },
    get generation() { return current.generation; },
    reload(next) {
      checkFixedKeys(current.cfg, next);
      const changed = changedKeys(current.cfg, next);
      const generation = { generation: current.generation.generation + 1, hash: configHash(next) };
      // Built whole before the swap: a request arriving meanwhile gets the old generation, never half of each.
      current = serveConfig(next, generation);
      logger.level = next.logLevel;
      metrics.configGeneration.set(generation.generation);
      return { ...generation, changed };
    },
    signingKeys, audit, anchoring, archiver, signer, metrics, logger, adapters, contracts, upstreamUrls: simulators.urls,
    async listen(port = cfg.listen.port, host = cfg.listen.host) {
      await new Promise<void>((resolve, reject) => {
        // Each request goes to the generation current when it arrives, and stays with it.
        server = createServer((req, res) => current.listener(req, res)).listen(port, host, () => resolve());
        server.once('error', reject);
      });
      server!.keepAliveTimeout = 65_000;
      server!.on('clientError', answerClientError);
      closeServer = drainingClose(server!);
      const address = server!.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      gateway.url = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
      return gateway.url;
    },
    async close() {
      await closeServer?.();
      signingKeys.close();
      await anchoring.close();
      await archiver.close();
      await audit.close();
      await shared.close();
      await idempotency.close();
      await simulators.close();
    },
  };
  return gateway;
}
