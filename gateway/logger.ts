import pino, { type Logger, type DestinationStream } from 'pino';
import { serializeError } from './errors.ts';

/** Keys whose values never reach the log, at the top of a logged object or one level down. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['authorization', 'consent', 'token', 'personalId', 'fullName', 'body', 'headers']);
const SECRET_NESTED_KEYS: ReadonlySet<string> = new Set(['authorization', 'personalId', 'fullName']);
const CENSOR = '[redacted]';

/**
 * Defence in depth, should a call site ever pass a secret: the logged object with those values
 * replaced, or the very object when none is there (every call site: nothing is copied then). It
 * runs as pino's `log` formatter: pino's `redact` option parses its paths again and walks them on
 * every line, which cost the request path more than the rest of the logging together.
 */
export function censorSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const key in obj) {
    if (SECRET_KEYS.has(key)) {
      (out ??= { ...obj })[key] = CENSOR;
      continue;
    }
    const value = obj[key];
    // An error goes through its own serializer, which keeps named fields only.
    if (!value || typeof value !== 'object' || value instanceof Error) continue;
    let inner: Record<string, unknown> | null = null;
    for (const k in value) if (SECRET_NESTED_KEYS.has(k)) (inner ??= { ...(value as Record<string, unknown>) })[k] = CENSOR;
    if (inner) (out ??= { ...obj })[key] = inner;
  }
  return out ?? obj;
}

/**
 * pino JSON logs. Nothing is logged by serialising a request: call sites pass whitelisted fields
 * only (request id, client id, service, code, status, latency, `err`), so tokens, personal ids and names
 * never reach the log.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: censorSecrets },
    // Every error is logged as `err`, through one serializer.
    serializers: { err: serializeError },
  }, destination);
}

export type { Logger };
