import pino, { type Logger, type DestinationStream } from 'pino';

/**
 * pino JSON logs. Nothing is logged by serialising a request: call sites pass whitelisted fields
 * only (request id, client id, service, code, status, latency), so tokens, personal ids and names
 * never reach the log.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Defence in depth, should a call site ever pass one of these.
    redact: { paths: ['authorization', 'consent', 'token', 'personalId', 'fullName', 'body', 'headers', '*.authorization', '*.personalId', '*.fullName'], censor: '[redacted]' },
  }, destination);
}

export type { Logger };
