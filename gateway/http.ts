import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { pipeline, Readable, type Duplex } from 'node:stream';
import { GatewayError, asGatewayError, problemResponse } from './errors.ts';
import type { Inbound, Operation, Outbound, Pipeline } from './pipeline/index.ts';
import type { Authenticated } from './pipeline/authenticate.ts';

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export function inboundOf(req: IncomingMessage, rawBody: Uint8Array, requestedService: string, requestedVersion: number | null): Inbound {
  return {
    rawBody,
    authorization: header(req, 'authorization'),
    consent: header(req, 'x-citizen-consent'),
    idempotencyKey: header(req, 'idempotency-key'),
    acceptLanguage: header(req, 'accept-language'),
    requestedService,
    requestedVersion,
  };
}

export function send(res: ServerResponse, out: Outbound): void {
  if (out.stream) return sendStream(res, out.status, out.headers, out.stream);
  res.writeHead(out.status, { ...out.headers, 'Content-Length': String(out.body.length) });
  res.end(out.body);
}

/**
 * Sends a streamed body with backpressure (chunked). A failure mid-stream can only cut the
 * connection, so the client sees an incomplete transfer, never a clean end.
 */
export function sendStream(res: ServerResponse, status: number, headers: Record<string, string>, chunks: AsyncIterable<string | Uint8Array>): void {
  res.writeHead(status, headers);
  pipeline(Readable.from(chunks), res, () => {});
}

/** A problem response outside the pipeline (transport errors, unknown routes), through the one error exit. */
export function sendProblem(req: IncomingMessage, res: ServerResponse, e: unknown): void {
  send(res, problemResponse(e, randomUUID(), header(req, 'accept-language')));
}

const EMPTY = new Uint8Array(0);
const isJson = (req: IncomingMessage) => /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i.test(header(req, 'content-type') ?? '');

/**
 * Runs an authenticated GET endpoint (discovery, audit) through the pipeline: the body hash of a
 * GET is that of the empty string.
 */
export function pipelineGet(pipeline: Pipeline, resolve: (req: Request) => (auth: Authenticated) => Operation | undefined, serviceName: string) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      send(res, await pipeline(inboundOf(req, EMPTY, serviceName, null), resolve(req)));
    } catch (e) {
      next(e);
    }
  };
}

/**
 * Reads a data service's JSON body, as the exact bytes the client's `body_sha256` covers: 415 for
 * another media type or any content coding (a compressed body would make "the bytes sent"
 * ambiguous), 413 beyond `maxBytes`. A refused body is still read to its end before the answer,
 * so the client sees the problem document rather than a reset connection.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const encoding = header(req, 'content-encoding');
    let refusal: GatewayError | null = null;
    if (!isJson(req)) refusal = new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
    else if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') refusal = new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'send the body without a content coding');
    else if (Number(header(req, 'content-length') ?? 0) > maxBytes) refusal = new GatewayError('PAYLOAD_TOO_LARGE', 'request body too large');
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      if (refusal) return;
      length += chunk.length;
      if (length > maxBytes) refusal = new GatewayError('PAYLOAD_TOO_LARGE', 'request body too large');
      else chunks.push(chunk);
    });
    req.once('end', () => (refusal ? reject(refusal) : resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length))));
    req.once('error', reject);
    // A client gone before the end of its body gets no answer; the promise must not wait forever.
    req.once('close', () => { if (!req.complete) reject(new GatewayError('REQUEST_INVALID', 'request body incomplete')); });
  });
}

/** Turns body-parser and routing errors into catalogue problems; a 5xx never carries internals. */
export function errorHandler(logger: { error: (o: object, m: string) => void }) {
  return (err: unknown, req: IncomingMessage, res: ServerResponse, _next?: NextFunction) => {
    let e: GatewayError;
    const status = (err as { status?: number; type?: string })?.status;
    if (err instanceof GatewayError) e = err;
    else if (status === 413) e = new GatewayError('PAYLOAD_TOO_LARGE', 'request body too large');
    else if (status === 415) e = new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content encoding or charset');
    else if (status && status >= 400 && status < 500) e = new GatewayError('REQUEST_INVALID', 'request could not be read');
    else {
      e = asGatewayError(err);
      logger.error({ err, path: req.url?.split('?')[0] }, 'unhandled error');
    }
    if (res.headersSent) return res.destroy();
    sendProblem(req, res, e);
  };
}

/**
 * Answers a request Node's HTTP parser refused (bad framing, header overflow, bytes no header may
 * hold) with a problem document instead of Node's bare 400, then closes the connection. A socket
 * whose response has already started can only be cut.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (err.code === 'ECONNRESET' || !socket.writable || started) {
    socket.destroy();
    return;
  }
  const problem = problemResponse(new GatewayError('REQUEST_INVALID', 'malformed HTTP request'), randomUUID());
  const headers = Object.entries({ ...problem.headers, 'X-Content-Type-Options': 'nosniff', 'Content-Length': String(problem.body.length), Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 400 Bad Request\r\n${headers}\r\n`), problem.body]));
}

export function baseApp(): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  return app;
}
