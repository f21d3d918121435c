/**
 * Outside time-stamps on the audit log (docs/architecture.md, anchoring). After a checkpoint is
 * signed, a background stamper asks the configured time-stamping authorities, in order, for an
 * RFC 3161 token over it (tsp.ts, `stampedBytes`), checks the token and keeps it with the
 * checkpoint (timestamps.ts). Nothing here is in a request's path: a slow or absent authority
 * delays the stamp, never an answer. While stamps are missing the lag is measured (metrics,
 * /readyz), the outage is logged once, attempts back off, and every checkpoint left unstamped is
 * stamped once an authority answers again. Only `audit.timestamping.maxLagSeconds`, when set,
 * turns a long lag into refused data requests (AUDIT_ANCHOR_LAG).
 */
import { readFileSync } from 'node:fs';
import axios from 'axios';
import { Counter, Gauge } from 'prom-client';
import type { GatewayConfig } from '../config/types.ts';
import { ConfigError } from '../config/errors.ts';
import { GatewayError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { AuditStore, Checkpoint } from './store.ts';
import type { CheckpointTimestamp, TimestampStore } from './timestamps.ts';
import { parseTsaCertificates, stampedBytes, timeStampRequest, TimestampError, tokenOfResponse, verifyToken, type TsaCertificate } from './tsp.ts';

type Settings = GatewayConfig['audit']['timestamping'];

/** What /readyz and the metrics say about anchoring. */
export interface AnchorStatus {
  /** `off`: no authority configured; `ok`: stamping keeps up; `lagging`: the last attempt failed; `over_max_lag`: data requests are refused. */
  state: 'off' | 'ok' | 'lagging' | 'over_max_lag';
  /** Seconds since the oldest checkpoint still without a time-stamp was signed; 0 when none waits. */
  lagSeconds: number;
  /** Checkpoints without a time-stamp. */
  unstamped: number;
  maxLagSeconds: number | null;
}

export interface Anchoring {
  readonly enabled: boolean;
  /** A checkpoint was signed and saved: stamp it soon. */
  checkpointSigned(cp: Checkpoint): void;
  status(): AnchorStatus;
  /** Throws AUDIT_ANCHOR_LAG (with Retry-After) while the lag is over `maxLagSeconds`. */
  admit(): void;
  close(): Promise<void>;
}

/** An authority as configured: its URL, the one a log may name (no credentials), its certificates. */
interface Authority { url: string; name: string; certificates: TsaCertificate[] }

/** A URL as it may be logged and served: without user and password. */
export function publicUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

/** The configured authorities with their certificates, read once at start; a bad file stops the start, naming its key. */
export function loadAuthorities(settings: Settings): Authority[] {
  return settings.authorities.map((a, i) => {
    const key = `/audit/timestamping/authorities/${i}/certificateFile`;
    let pem: string;
    try {
      pem = readFileSync(a.certificateFile, 'utf8');
    } catch {
      throw new ConfigError(`${key}: cannot read ${a.certificateFile}`);
    }
    try {
      return { url: a.url, name: publicUrl(a.url), certificates: parseTsaCertificates(pem, a.certificateFile) };
    } catch (e) {
      throw new ConfigError(`${key}: ${(e as Error).message}`);
    }
  });
}

/** Why one authority gave no usable token, as a short code for logs and metrics. */
function failureOf(e: unknown): string {
  if (e instanceof TimestampError) return e.problem;
  if (axios.isAxiosError(e)) return e.response ? `http_${e.response.status}` : (e.code ?? 'network');
  return 'error';
}

const PAGE = 100;

const OFF: Anchoring = {
  enabled: false,
  checkpointSigned() {},
  status: () => ({ state: 'off', lagSeconds: 0, unstamped: 0, maxLagSeconds: null }),
  admit() {},
  close: async () => {},
};

/** The stamper of one gateway instance; off (and says so in one log line) when no authority is configured. */
export function createAnchoring(cfg: GatewayConfig, store: AuditStore, { logger, metrics, now = Date.now }: { logger: Logger; metrics: Metrics; now?: () => number }): Anchoring {
  const settings = cfg.audit.timestamping;
  if (!settings.authorities.length) {
    logger.info({ anchoring: 'off' }, 'audit anchoring off: no time-stamping authority configured (audit.timestamping.authorities)');
    return OFF;
  }
  const authorities = loadAuthorities(settings);
  if (!store.timestamps) throw new ConfigError(`/audit/timestamping: the ${store.kind} audit store cannot keep time-stamps`);
  const stamps: TimestampStore = store.timestamps;
  const maxLagSeconds = settings.maxLagSeconds ?? null;
  logger.info({ anchoring: 'on', authorities: authorities.map((a) => a.name), maxLagSeconds }, 'audit anchoring on: every signed checkpoint is time-stamped');

  /** What is known to wait: how many, and the time of the oldest. */
  let waiting = { count: 0, oldest: null as string | null };
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;
  let failures = 0;
  let retry: { timer: NodeJS.Timeout; at: number } | null = null;
  let refusing = false;
  const abort = new AbortController();

  const lagSeconds = () => (waiting.oldest ? Math.max(0, (now() - Date.parse(waiting.oldest)) / 1000) : 0);
  const overMaxLag = () => maxLagSeconds !== null && lagSeconds() > maxLagSeconds;

  const requests = new Counter({ name: 'gateway_audit_timestamp_requests_total', help: 'Requests to time-stamping authorities, by authority and outcome (ok, or why no token was taken)', labelNames: ['tsa', 'outcome'], registers: [metrics.registry] });
  new Gauge({ name: 'gateway_audit_anchor_lag_seconds', help: 'Seconds since the oldest checkpoint still without a time-stamp was signed (0: none waits)', registers: [metrics.registry], collect() { this.set(lagSeconds()); } });
  new Gauge({ name: 'gateway_audit_unanchored_checkpoints', help: 'Signed checkpoints still without a time-stamp', registers: [metrics.registry], collect() { this.set(waiting.count); } });

  /** One checkpoint's token from the first authority that gives a good one; throws the last failure. */
  const stamp = async (cp: Checkpoint): Promise<CheckpointTimestamp> => {
    const data = stampedBytes(cp.jws);
    let last: unknown;
    for (const authority of authorities) {
      try {
        const query = timeStampRequest(data);
        const res = await axios.post<ArrayBuffer>(authority.url, query.der, {
          headers: { 'Content-Type': 'application/timestamp-query', Accept: 'application/timestamp-reply' },
          responseType: 'arraybuffer', timeout: settings.timeoutMs, signal: abort.signal,
          maxRedirects: 0, maxContentLength: 1 << 20, validateStatus: (s) => s === 200, proxy: false,
        });
        const token = tokenOfResponse(new Uint8Array(res.data));
        const checked = await verifyToken(token, { data, certificates: authority.certificates, nonce: query.nonce, notBefore: new Date(cp.time), toleranceSeconds: settings.toleranceSeconds });
        requests.inc({ tsa: authority.name, outcome: 'ok' });
        return { tsa: authority.name, token: Buffer.from(token).toString('base64'), time: checked.genTime.toISOString() };
      } catch (e) {
        if (closed) throw e;
        requests.inc({ tsa: authority.name, outcome: failureOf(e) });
        last = Object.assign(e instanceof Error ? e : new Error(String(e)), { tsa: authority.name, problem: failureOf(e) });
      }
    }
    throw last;
  };

  /** Stamps every checkpoint waiting, oldest first; false when every authority failed on one. */
  const stampAll = async (): Promise<boolean> => {
    for (;;) {
      const page = await stamps.pending(PAGE);
      waiting = { count: page.count, oldest: page.checkpoints[0]?.time ?? null };
      if (!page.checkpoints.length) return true;
      for (const [i, cp] of page.checkpoints.entries()) {
        if (closed) return true;
        try {
          await stamps.save(cp.seq, await stamp(cp));
        } catch (e) {
          if (closed) return true;
          if (failures++ === 0) {
            logger.warn({ err: e, tsa: (e as { tsa?: string }).tsa, problem: (e as { problem?: string }).problem, unstamped: waiting.count, lagSeconds: Math.round(lagSeconds()) },
              'time-stamping authorities unavailable: audit anchoring lags; requests go on, stamping retries with backoff');
          }
          return false;
        }
        if (failures) {
          logger.info({ failedAttempts: failures, unstamped: waiting.count - 1 }, 'time-stamping authority answers again: stamping the checkpoints that waited');
          failures = 0;
        }
        waiting = { count: waiting.count - 1, oldest: page.checkpoints[i + 1]?.time ?? null };
      }
    }
  };

  const backoff = () => Math.min(settings.retryMaxDelayMs, settings.retryBaseDelayMs * 2 ** Math.min(failures - 1, 20));

  const run = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const done = await stampAll().catch((e) => {
          // The store failed (not an authority): try again later, like an outage.
          if (failures++ === 0) logger.warn({ err: e }, 'audit anchoring: the store could not list or keep time-stamps; retrying with backoff');
          return false;
        });
        if (!done && !closed) {
          const delay = backoff();
          const timer = setTimeout(() => { retry = null; void run(); }, delay);
          timer.unref();
          retry = { timer, at: now() + delay };
          return;
        }
      } while (again && !closed);
      if (refusing && !overMaxLag()) {
        refusing = false;
        logger.info({ lagSeconds: lagSeconds() }, 'audit anchoring caught up: data requests accepted again');
      }
    })().finally(() => { running = null; });
    return running;
  };

  void run();

  return {
    enabled: true,
    checkpointSigned(cp) {
      if (closed) return;
      waiting = { count: waiting.count + 1, oldest: waiting.oldest ?? cp.time };
      // During an outage the next attempt waits for its backoff; it stamps this one too.
      if (!retry) void run();
    },
    status() {
      const over = overMaxLag();
      return {
        state: over ? 'over_max_lag' : failures ? 'lagging' : 'ok',
        lagSeconds: Math.round(lagSeconds() * 1000) / 1000, unstamped: waiting.count, maxLagSeconds,
      };
    },
    admit() {
      if (!overMaxLag()) return;
      if (!refusing) {
        refusing = true;
        logger.error({ lagSeconds: Math.round(lagSeconds()), maxLagSeconds, unstamped: waiting.count }, 'audit anchoring lag over audit.timestamping.maxLagSeconds: data requests refused until checkpoints are time-stamped');
      }
      const retryAfter = Math.max(1, Math.ceil(((retry?.at ?? now()) - now()) / 1000));
      throw new GatewayError('AUDIT_ANCHOR_LAG', `checkpoints have waited ${Math.round(lagSeconds())} s for a time-stamp (at most ${maxLagSeconds} s)`, { headers: { 'Retry-After': String(retryAfter) } });
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry.timer);
      retry = null;
      abort.abort();
      await running;
    },
  };
}
