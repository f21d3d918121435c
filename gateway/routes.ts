import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express, type Request } from 'express';
import { ANY_CLIENT, type Authorizer } from './pipeline/authorize.ts';
import type { ConsentVerifier } from './pipeline/consent.ts';
import type { Operation, Pipeline, PipelineDeps } from './pipeline/index.ts';
import type { GatewayConfig } from './config/types.ts';
import type { ConfigGeneration } from './reload.ts';
import { contractKey, type Contract } from './contracts.ts';
import type { AuditLog } from './audit/index.ts';
import type { Anchoring } from './audit/anchoring.ts';
import type { Signer } from './signing.ts';
import type { SharedState } from './shared-state.ts';
import type { Metrics } from './metrics.ts';
import type { Logger } from './logger.ts';
import type { AdapterHealth } from '../adapters/index.ts';
import { GatewayError } from './errors.ts';
import { baseApp, errorHandler, inboundOf, pipelineGet, readJsonBody, send, sendProblem } from './http.ts';
import { ASSERTION_ALGORITHMS } from './pipeline/authenticate.ts';
import { archivesOperation, checkpointsOperation, entriesOperation, exportOperation, verifyOperation } from './audit-api.ts';
import { accessLogOperation } from './citizen-api.ts';
import { consoleRouter } from './console/router.ts';
import { buildOpenApi } from './openapi.ts';
import { contractSha256 } from './federation/contracts.ts';

export interface RouteDeps {
  cfg: GatewayConfig;
  pipeline: Pipeline;
  /** What the pipeline was built with; the console builds its own on them, with session authentication. */
  pipelineDeps: Omit<PipelineDeps, 'authenticate'>;
  operations: Map<string, Operation>;
  contracts: Map<string, Contract>;
  audit: AuditLog;
  /** Time-stamps on the checkpoints: their lag is in /readyz (the pipeline refuses data past the maximum lag). */
  anchoring?: Anchoring;
  signer: Signer;
  metrics: Metrics;
  logger: Logger;
  adapters: AdapterHealth[];
  authorizer: Authorizer;
  verifyConsent: ConsentVerifier;
  /** Replay protection and rate limits; a request cannot pass without them. */
  shared: SharedState;
  publicUrl(): string;
  /** The gateway's clock (tests freeze it); Date.now when absent. */
  now?: () => number;
  /** The config generation these routes serve (reload.ts), shown by /readyz. */
  generation?: ConfigGeneration;
  /** Services reached through another gateway (federation), by `service/v<major>`: that gateway's id. */
  servedBy?: ReadonlyMap<string, string>;
}

const version = (v: string | string[] | undefined) => (typeof v === "string" && /^v[1-9]\d{0,2}$/.test(v) ? Number(v.slice(1)) : null);

/** `POST /services/{serviceId}/v{major}`, matched as express would (case-insensitive, optional trailing slash, query ignored). */
const SERVICE_PATH = /^\/services\/([^/?#]+)\/([^/?#]+)\/?(?:[?#].*)?$/i;

/**
 * The gateway's request listener: data services (`POST /services/{serviceId}/v{major}`) go
 * straight from node:http into the pipeline; everything else (discovery, audit, console,
 * operations) is the express app. The data plane is the one path every exchange takes, and
 * express's routing and body parsing cost more per request than the pipeline's own checks
 * (figures in the README's performance section).
 */
export function createRequestListener(d: RouteDeps): { app: Express; listener: RequestListener } {
  const app = mountRoutes(d);
  const onError = errorHandler(d.logger);
  const serve = async (req: IncomingMessage, res: ServerResponse, serviceId: string, versionText: string) => {
    try {
      let id: string;
      try {
        id = decodeURIComponent(serviceId);
      } catch {
        throw new GatewayError('REQUEST_INVALID', 'service id is not valid percent-encoding');
      }
      const v = version(versionText);
      const op = d.operations.get(contractKey(id, v ?? -1));
      const body = await readJsonBody(req, d.cfg.limits.maxBodyBytes);
      send(res, await d.pipeline(inboundOf(req, body, id, v), () => op));
    } catch (e) {
      onError(e, req, res);
    }
  };
  const listener: RequestListener = (req, res) => {
    // Every answer is typed as sent (JSON, problem+json, NDJSON, CSV, the console's assets): no browser may sniff it into HTML or script.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const m = req.method === 'POST' ? SERVICE_PATH.exec(req.url ?? '') : null;
    if (m) void serve(req, res, m[1]!, m[2]!);
    else app(req, res);
  };
  return { app, listener };
}

/** The wire interface (README, wire interface) but the data plane: discovery, audit, console and operations. */
function mountRoutes(d: RouteDeps): Express {
  const app = baseApp();
  const { cfg, pipeline, contracts } = d;
  // Behind a trusted reverse proxy, the client's address (sign-in limits) and TLS (Secure cookies) are the proxy's word.
  if (cfg.trustProxy.length) app.set('trust proxy', cfg.trustProxy);

  app.get('/healthz', (_req, res) => { res.json({ status: 'ok' }); });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    checks.audit = (await d.audit.canCommit()) ? 'ok' : 'unavailable';
    try {
      await d.shared.ping();
      checks.sharedState = 'ok';
    } catch {
      checks.sharedState = 'unavailable';
    }
    const breakers = Object.fromEntries(d.adapters.map((a) => [a.name, a.breakerState()]));
    const allOpen = d.adapters.length > 0 && Object.values(breakers).every((s) => s === 'open');
    const anchoring = d.anchoring?.status();
    if (anchoring) checks.anchoring = anchoring.state;
    const ready = checks.audit === 'ok' && checks.sharedState === 'ok' && !allOpen && checks.anchoring !== 'over_max_lag';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks, breakers, ...(anchoring && { anchoring }), ...(d.generation && { config: d.generation }), signingKid: d.signer.kid });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(d.metrics.registry.contentType).send(await d.metrics.registry.metrics());
  });
  // Built at start, so a contract whose $ref points nowhere fails the start, not a request; served
  // as built again at the first request, when the address clients reach (its `servers`) is known.
  const servedBy = d.servedBy ?? new Map<string, string>();
  const openapiOptions = { gatewayId: cfg.gatewayId, limits: cfg.limits, servedBy };
  buildOpenApi(contracts, openapiOptions);
  let openapi: Buffer | null = null;
  app.get('/openapi.json', (_req, res) => {
    openapi ??= Buffer.from(JSON.stringify(buildOpenApi(contracts, { ...openapiOptions, publicUrl: d.publicUrl() || undefined })));
    res.set('Cache-Control', 'public, max-age=300').type('application/json').send(openapi);
  });
  app.get('/.well-known/jwks.json', (_req, res) => { res.set('Cache-Control', 'public, max-age=300').json(d.signer.jwks); });
  app.get('/.well-known/gateway-configuration', (_req, res) => {
    const base = d.publicUrl();
    res.json({
      gateway_id: cfg.gatewayId,
      jwks_uri: `${base}/.well-known/jwks.json`,
      openapi_uri: `${base}/openapi.json`,
      services_endpoint: `${base}/services`,
      service_endpoint_template: `${base}/services/{serviceId}/v{major}`,
      audit_endpoints: { entries: `${base}/audit/entries`, verify: `${base}/audit/verify`, export: `${base}/audit/export`, checkpoints: `${base}/audit/checkpoints`, citizen_access_log: `${base}/citizen/access-log` },
      assertion_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
      assertion_required_claims: ['iss', 'aud', 'iat', 'exp', 'jti', 'body_sha256'],
      assertion_optional_claims: ['purpose', 'case_id', 'user_id'],
      max_assertion_lifetime_seconds: cfg.limits.maxAssertionLifetimeSeconds,
      clock_skew_seconds: cfg.limits.clockSkewSeconds,
      body_hash_alg: 'sha-256, base64url, over the exact request body bytes',
      response_signature_header: 'X-Gateway-Signature',
      response_signing_alg_values_supported: [...new Set(d.signer.jwks.keys.map((k) => k.alg))],
      consent_header: 'X-Citizen-Consent',
      consent_issuer: cfg.identityProvider?.issuer ?? null,
      purposes: cfg.purposes.map((p) => ({ code: p.code, legal_basis: p.legalBasis, case_id_required: p.caseIdRequired })),
      max_body_bytes: cfg.limits.maxBodyBytes,
    });
  });

  /** A service reached through another gateway says which (federation): its id and version are the remote's own. */
  const gatewayOf = (c: Contract) => {
    const gateway = servedBy.get(contractKey(c.meta.service, c.meta.version));
    return gateway ? { gateway } : {};
  };
  // Hashed once: what another gateway pins of this one's contracts (federation/contracts.ts).
  const published = new Map([...contracts].map(([key, c]) => [key, contractSha256(c)]));

  // Discovery: what this client may call (like X-Road's allowedMethods).
  app.get('/services', pipelineGet(pipeline, () => ({ client }) => ({
    service: 'discovery.services', version: null, grant: ANY_CLIENT, purposeRequired: false,
    async run() {
      const granted = cfg.grants.filter((g) => g.client === client.id);
      const services = [...contracts.values()]
        .filter((c) => granted.some((g) => g.service === c.meta.service))
        .map((c) => {
          const g = granted.find((x) => x.service === c.meta.service)!;
          return {
            service: c.meta.service, version: c.meta.version, title: c.meta.title,
            path: `/services/${c.meta.service}/v${c.meta.version}`,
            purposes: g.purposes.map((code) => { const p = d.authorizer.purpose(code)!; return { code, legalBasis: p.legalBasis, caseIdRequired: p.caseIdRequired }; }),
            fieldGroups: g.fieldGroups.filter((f) => f in c.meta.fieldGroups || !Object.keys(c.meta.fieldGroups).length),
            consentRequired: Boolean(c.meta.consent), idempotencyKeyRequired: Boolean(c.meta.write),
            ...gatewayOf(c),
          };
        });
      const audit = granted.some((g) => g.service === 'audit');
      return { body: { client: client.id, services, auditRole: audit }, subjects: [], fields: [] };
    },
  }), 'discovery.services'));

  app.get('/services/:serviceId/:version', (req, res) => {
    const c = contracts.get(contractKey(req.params.serviceId, version(req.params.version) ?? -1));
    if (!c) return sendProblem(req, res, new GatewayError('SERVICE_UNKNOWN', 'no such service or version'));
    res.json({
      ...c.meta, path: `/services/${c.meta.service}/v${c.meta.version}`, requestSchema: c.requestSchema, responseSchema: c.responseSchema,
      contractSha256: published.get(contractKey(c.meta.service, c.meta.version)), ...gatewayOf(c),
    });
  });

  app.get('/audit/entries', pipelineGet(pipeline, (req: Request) => () => entriesOperation(req, d.audit), 'audit.entries'));
  app.get('/audit/verify', pipelineGet(pipeline, () => () => verifyOperation(d.audit), 'audit.verify'));
  app.get('/audit/export', pipelineGet(pipeline, (req: Request) => () => exportOperation(req, d.audit, d.logger), 'audit.export'));
  app.get('/audit/checkpoints', pipelineGet(pipeline, (req: Request) => () => checkpointsOperation(req, d.audit), 'audit.checkpoints'));
  app.get('/audit/archives', pipelineGet(pipeline, (req: Request) => () => archivesOperation(req, d.audit, cfg.audit.retention.hotDays ?? null), 'audit.archives'));
  const now = d.now ?? Date.now;
  app.get('/citizen/access-log', pipelineGet(pipeline, (req: Request) => () => accessLogOperation(req, { cfg, audit: d.audit, verifyConsent: d.verifyConsent, now }), 'citizen.access-log'));
  app.use('/console', consoleRouter({ cfg, audit: d.audit, contracts, logger: d.logger, shared: d.shared, pipeline: d.pipelineDeps, now }));

  app.all('/services/:serviceId/:version', (req, res) => sendProblem(req, res, new GatewayError('METHOD_NOT_ALLOWED', 'data services take POST')));
  app.use((req, res) => sendProblem(req, res, new GatewayError('NOT_FOUND', 'no such endpoint')));
  app.use(errorHandler(d.logger));
  return app;
}

export { express };
