import pino, { type Logger, type DestinationStream } from 'pino';
import { serializeError } from './errors.ts';

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
    formatters: { level: (label) => ({ level: label }) },
    // Every error is logged as `err`, through one serializer.
    serializers: { err: serializeError },
    // Defence in depth, should a call site ever pass one of these.
    redact: { paths: ['authorization', 'consent', 'token', 'personalId', 'fullName', 'body', 'headers', '*.authorization', '*.personalId', '*.fullName'], censor: '[redacted]' },
  }, destination);
}

export type { Logger };
