import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { asGatewayError, GatewayError, problemResponse } from '../errors.ts';
import { entryHash, sha256Hex, type AuditLog, type Outcome, type PendingEntry } from '../audit/index.ts';
import type { Contract } from '../contracts.ts';
import type { GatewayConfig } from '../config/types.ts';
import type { Logger } from '../logger.ts';
import { createPipeline, type Operation, type PipelineDeps, type StreamedBody } from '../pipeline/index.ts';
import { ANY_CLIENT } from '../pipeline/authorize.ts';
import { errorHandler, inboundOf, send } from '../http.ts';
import { archivesReport, exportStream, queryPage } from '../audit-api.ts';
import { auditFilter, parseAuditQuery } from '../audit-query.ts';
import { clientName } from '../citizen-api.ts';
import { actingPartyName } from '../federation/acting.ts';
import type { SharedState } from '../shared-state.ts';
import { LoginLimiter, SessionStore, sessionAuthenticator, signIn, type Session } from './auth.ts';
import { activityReport, activityWindow, usageCsv, usageReport } from './reports.ts';

export interface ConsoleDeps {
  cfg: GatewayConfig;
  audit: AuditLog;
  contracts: Map<string, Contract>;
  logger: Logger;
  /** Where sessions and failed sign-ins live (memory, or Redis shared by every instance). */
  shared: Pick<SharedState, 'sessions' | 'signInFailures'>;
  /** The request pipeline's dependencies; console reads authenticate with their session instead. */
  pipeline: Omit<PipelineDeps, 'authenticate'>;
  now: () => number;
}

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const COOKIE = 'gw_console';
const CONSOLE_SERVICE = 'audit.console';

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/** What a console read answers: a body held in memory, or a stream (exports). */
type Answer = { contentType: string; body: string; headers?: Record<string, string> } | { stream: StreamedBody };

/** A console read: whom it concerns (known before it runs, for the audit entry of a refusal too) and its answer. */
interface ConsoleRead {
  /** Personal ids searched for. */
  subjects?: string[];
  /** Pseudonyms already in the log (an entry looked at). */
  pseudonyms?: string[];
  answer(): Promise<Answer>;
}

const json = (value: unknown): Answer => ({ contentType: 'application/json; charset=utf-8', body: JSON.stringify(value) });

function cookieValue(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

const EMPTY = new Uint8Array(0);
const isJson = (req: Request) => /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '');

/**
 * The auditor console: static pages and a JSON API under /console/api.
 * Sign-in with console accounts; the session id lives in an httpOnly, SameSite=Strict cookie; POSTs
 * must be JSON from the console's own origin; every read is itself an audit entry
 * (client `console:<username>`, service `audit.console`).
 */
export function consoleRouter(d: ConsoleDeps): Router {
  const router = express.Router();
  const sessions = new SessionStore(d.shared.sessions, d.cfg.console.sessionSeconds, d.now);
  const limiter = new LoginLimiter(d.shared.signInFailures, d.cfg.console.signInLimits, d.now);
  const nameOf = (client: string) => clientName(d.cfg, client);

  router.use((_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  });
  // `/console` itself (no trailing slash) is the page too; the assets use absolute paths.
  router.get('/', (_req, res) => res.sendFile('index.html', { root: PUBLIC_DIR }));
  router.use(express.static(PUBLIC_DIR, { index: 'index.html', redirect: false, dotfiles: 'ignore', maxAge: 0 }));
  router.use('/api', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  /** A console request's audit entry, committed before its answer leaves. */
  function consoleEntry(session: Session, action: string, started: number, o: { id: string; time: string; outcome: Outcome; status: number; errorCode: string | null; subjects: string[]; requestBody?: string; responseSha256: string | null }): PendingEntry {
    return {
      id: o.id, time: o.time, client: `console:${session.username}`, userId: session.username, purpose: null, caseId: null,
      service: CONSOLE_SERVICE, version: null, subjects: [...new Set(o.subjects)].sort(), fields: [`${CONSOLE_SERVICE}:${action}`],
      outcome: o.outcome, status: o.status, errorCode: o.errorCode, upstreams: [], latencyMs: Math.round(performance.now() - started),
      requestSha256: sha256Hex(o.requestBody ?? ''), responseSha256: o.responseSha256,
    };
  }

  const sendProblemBody = (req: Request, res: Response, err: GatewayError, requestId: string) => send(res, problemResponse(err, requestId, req.headers['accept-language']));

  /**
   * A console read as an operation of the one request pipeline: authenticated by the session
   * cookie, audited whether it answers or is refused (client `console:<username>`, the action as
   * its field), nothing released unless its entry committed. A query the read refuses is refused
   * inside the pipeline, so that refusal is audited too.
   */
  const pipeline = createPipeline({ ...d.pipeline, authenticate: sessionAuthenticator(sessions, d.now, d.cfg.console.accounts) });
  const read = (action: string, prepare: (req: Request) => ConsoleRead) => async (req: Request, res: Response, next: NextFunction) => {
    let prepared: ConsoleRead | GatewayError;
    try {
      prepared = prepare(req);
    } catch (e) {
      prepared = asGatewayError(e);
    }
    const op: Operation = {
      service: CONSOLE_SERVICE, version: null, grant: ANY_CLIENT, purposeRequired: false, attempted: [`${CONSOLE_SERVICE}:${action}`],
      requestSubjects: () => (prepared instanceof GatewayError ? [] : prepared.subjects ?? []),
      async run() {
        if (prepared instanceof GatewayError) throw prepared;
        const answer = await prepared.answer();
        const result = 'stream' in answer ? { body: null, stream: answer.stream } : { body: answer.body, contentType: answer.contentType, headers: answer.headers };
        // Read after answering: looking at one entry learns its subjects only once it is found.
        return { ...result, subjects: prepared.subjects, pseudonyms: prepared.pseudonyms, fields: [`${CONSOLE_SERVICE}:${action}`] };
      },
    };
    try {
      send(res, await pipeline({ ...inboundOf(req, EMPTY, CONSOLE_SERVICE, null), session: cookieValue(req, COOKIE) }, () => op));
    } catch (e) {
      next(e);
    }
  };

  /** POSTs only as JSON from the console's own origin: with the SameSite=Strict cookie, this keeps other sites out (CSRF). */
  const sameOriginJson = (req: Request, _res: Response, next: NextFunction) => {
    if (!isJson(req)) return next(new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json'));
    const own = new Set([`${req.protocol}://${req.headers.host}`]);
    if (d.cfg.publicUrl) own.add(new URL(d.cfg.publicUrl).origin);
    if (!req.headers.origin || !own.has(req.headers.origin)) return next(new GatewayError('REQUEST_INVALID', 'cross-origin request refused'));
    next();
  };

  const cookie = (req: Request, value: string, maxAge: number) => {
    const secure = req.secure || Boolean(d.cfg.publicUrl?.startsWith('https:'));
    return `${COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
  };

  router.post('/api/login', sameOriginJson, express.json({ limit: '4kb' }), async (req, res) => {
    try {
      const { username, password } = (req.body ?? {}) as { username?: unknown; password?: unknown };
      if (typeof username !== 'string' || typeof password !== 'string' || username.length > 200 || password.length > 1000) {
        throw new GatewayError('REQUEST_INVALID', 'send {"username": ..., "password": ...}');
      }
      // The client's address: the socket's, or a trusted proxy's X-Forwarded-For (trustProxy).
      const address = req.ip ?? 'unknown';
      const wait = await limiter.retryAfter(username, address);
      if (wait > 0) throw new GatewayError('RATE_LIMITED', 'too many failed sign-ins; try again later', { headers: { 'Retry-After': String(wait) } });
      const account = await signIn(d.cfg.console.accounts, username, password);
      if (!account) {
        await limiter.fail(username, address);
        d.logger.info({ event: 'console_sign_in_failed' }, 'console sign-in refused');
        throw new GatewayError('AUTH_INVALID', 'wrong username or password');
      }
      const session = await sessions.create(account);
      const started = performance.now();
      const id = randomUUID();
      try {
        await d.audit.record(consoleEntry(session, 'sign-in', started, { id, time: new Date(d.now()).toISOString(), outcome: 'released', status: 200, errorCode: null, subjects: [], responseSha256: null }));
      } catch (e) {
        await sessions.delete(session.id).catch(() => {});
        throw new GatewayError('AUDIT_UNAVAILABLE', 'audit commit failed', { cause: e });
      }
      res.set('Set-Cookie', cookie(req, session.id, d.cfg.console.sessionSeconds));
      res.json({ username: session.username, displayName: session.displayName, expiresAt: new Date(session.expiresAt).toISOString() });
    } catch (e) {
      // Answered here, not by the error handler, so Retry-After goes out with a 429.
      sendProblemBody(req, res, asGatewayError(e), randomUUID());
    }
  });

  router.post('/api/logout', sameOriginJson, async (req, res, next) => {
    try {
      await sessions.delete(cookieValue(req, COOKIE));
      res.set('Set-Cookie', cookie(req, '', 0)).status(204).end();
    } catch (e) {
      next(e);
    }
  });

  router.use('/api/session', async (req, res, next) => {
    try {
      const session = await sessions.get(cookieValue(req, COOKIE));
      if (!session) return next(new GatewayError('AUTH_MISSING', 'sign in to the console'));
      res.locals.session = session;
      next();
    } catch (e) {
      next(e);
    }
  });

  router.get('/api/session', (_req, res) => {
    const s = res.locals.session as Session;
    res.json({ username: s.username, displayName: s.displayName, expiresAt: new Date(s.expiresAt).toISOString() });
  });

  router.get('/api/entries', read('entries', (req) => {
    const values = parseAuditQuery(req.query, 'entries');
    const { filter, personalId } = auditFilter(values, 'entries', d.audit);
    return {
      subjects: personalId ? [personalId] : [],
      async answer() {
        const page = await queryPage(d.audit, 'entries', filter, values.limit, values.cursor ?? null);
        return json({ entries: page.entries.map((e) => ({ ...e, clientName: nameOf(e.client) })), nextCursor: page.nextCursor });
      },
    };
  }));

  router.get('/api/entries/:id', read('entry', (req) => {
    parseAuditQuery(req.query, 'none');
    const id = String(req.params.id);
    let found: Awaited<ReturnType<AuditLog['store']['get']>> = null;
    const prepared: ConsoleRead = {
      async answer() {
        // An entry found by a search may be archived: looked up in the segments once the hot store lacks it.
        if (!/^[0-9a-f-]{36}$/.test(id) || !(found = await (d.audit.archive ?? d.audit.store).get(id))) throw new GatewayError('NOT_FOUND', 'no such entry');
        prepared.pseudonyms = found.subjects;
        const purpose = found.purpose ? d.cfg.purposes.find((p) => p.code === found!.purpose) : undefined;
        return json({
          entry: found, clientName: nameOf(found.client), hashOk: entryHash(found) === found.hash,
          ...(found.actingFor === undefined ? {} : { actingForName: actingPartyName(d.cfg.clients.find((c) => c.id === found!.client), found.actingFor) }),
          purpose: found.purpose ? { code: found.purpose, legalBasis: purpose?.legalBasis ?? null, confidentialDays: purpose?.confidentialDays ?? 0 } : null,
        });
      },
    };
    return prepared;
  }));

  router.get('/api/chain', read('verify', (req) => {
    parseAuditQuery(req.query, 'none');
    return { answer: async () => json(await d.audit.verify()) };
  }));

  router.get('/api/archives', read('archives', (req) => {
    parseAuditQuery(req.query, 'none');
    return { answer: async () => json(await archivesReport(d.audit, d.cfg.audit.retention.hotDays ?? null)) };
  }));

  router.get('/api/export', read('export', (req) => {
    const values = parseAuditQuery(req.query, 'export');
    const { filter, personalId } = auditFilter(values, 'export', d.audit);
    return { subjects: personalId ? [personalId] : [], answer: async () => ({ stream: exportStream(d.audit, filter, values.format, d.logger) }) };
  }));

  router.get('/api/activity', read('activity', (req) => {
    const { days } = parseAuditQuery(req.query, 'activity');
    return {
      async answer() {
        const now = d.now();
        return json(await activityReport(d.audit.store.scan(1, activityWindow(days, now)), days, now, nameOf));
      },
    };
  }));

  router.get('/api/usage', read('usage', (req) => {
    const values = parseAuditQuery(req.query, 'usage');
    const { filter } = auditFilter(values, 'usage', d.audit);
    const csv = values.format === 'csv';
    return {
      async answer() {
        const report = await usageReport(d.audit.store.scan(1, { ...filter, outcome: 'released' }), d.contracts, nameOf);
        if (!csv) return json(report);
        return { contentType: 'text/csv; charset=utf-8', body: usageCsv(report), headers: { 'Content-Disposition': 'attachment; filename="usage-report.csv"' } };
      },
    };
  }));

  router.use('/api', (_req, _res, next) => next(new GatewayError('NOT_FOUND', 'no such console endpoint')));
  router.use(errorHandler(d.logger));
  return router;
}
