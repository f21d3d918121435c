/**
 * Bench reference: the least a gateway that keeps every safeguard of the request path can be,
 * written straight onto node:http for one service (population.identity v1) with the libraries the
 * gateway uses, and none of its structure (no pipeline, no policies, no axios, no audit store):
 * - the client assertion: ES256 verified with node:crypto, `iss`, `aud`, `exp`, the body's hash and
 *   the `jti` checked (replay: a map of the tokens seen, until they expire);
 * - a rate limit per client, the grant (client × service × purpose);
 * - the contract's request schema (ajv, compiled once), the upstream call on a keep-alive agent,
 *   the adapter's check and mapping of the native answer, the contract's response schema;
 * - the answer signed (detached ES256 JWS bound to the request's hash);
 * - one audit record (pseudonymised subject, the hashes of request and answer, the upstream call)
 *   hash-chained (SHA-256 over the previous hash and the record) and made durable before the
 *   answer leaves: appended and fdatasync'd, grouped as the durable pass-through does (journal.ts);
 * - a log line at info (pino, to /dev/null as the bench's gateways log) and the request counted
 *   and timed (prom-client).
 * What the gateway spends beyond this reference is what its structure costs (the pipeline, the
 * audit store's record and writer, the resilience policies, the HTTP client library).
 *
 * Usage: node --import tsx test/bench/safeguarded.ts UPSTREAM_URL DIR CLIENTS_JSON; prints its URL.
 * CLIENTS_JSON: { audience, clients: { id: public JWK } }.
 */
import http from 'node:http';
import { createHash, createHmac, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { v7 as timeOrderedUuid } from 'uuid';
import { loadContracts } from '../../gateway/contracts.ts';
import { mapIdentity } from '../../adapters/population/adapter.ts';
import { journal } from './journal.ts';

const [upstream, dir, clientsFile] = process.argv.slice(2);
if (!upstream || !dir || !clientsFile) throw new Error('usage: safeguarded.ts UPSTREAM_URL DIR CLIENTS_JSON');
const { audience, clients } = JSON.parse(readFileSync(clientsFile, 'utf8')) as { audience: string; clients: Record<string, Record<string, unknown>> };
const clientKeys = new Map<string, KeyObject>(Object.entries(clients).map(([id, jwk]) => [id, createPublicKey({ key: jwk as never, format: 'jwk' })]));
const SERVICE = 'population.identity';
const PURPOSES = new Set(['PUBLIC_SERVICE_PREFILL']);
/** As the bench's gateways are configured: a limit that a run never reaches, checked all the same. */
const PER_MINUTE = 1_000_000_000;
const contract = loadContracts().get(`${SERVICE}/v1`)!;
const target = new URL(upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const pseudonymKey = Buffer.from('bench-pseudonym-key-0123456789abcdef');
const append = journal(join(dir, 'safeguarded.journal'));
const log = pino({ level: 'info', base: { service: 'reference' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: '/dev/null', sync: true }));
const registry = new Registry();
const requests = new Counter({ name: 'requests_total', help: 'requests', labelNames: ['service', 'client', 'outcome', 'code'], registers: [registry] });
const latency = new Histogram({ name: 'request_seconds', help: 'latency', labelNames: ['service', 'outcome'], registers: [registry] });

const seen = new Map<string, number>(); // jti → exp (seconds)
const perMinute = new Map<string, { minute: number; n: number }>();
setInterval(() => { const now = Date.now() / 1000; for (const [jti, exp] of seen) if (exp < now) seen.delete(jti); }, 10_000).unref();
let head = '0'.repeat(64);
let seq = 0;

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest();
const b64json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
class Refused extends Error { constructor(readonly status: number, readonly code: string) { super(code); } }

/** The caller, from a per-request ES256 assertion bound to this body. */
function authenticate(authorization: string | undefined, body: Buffer): { client: string; purpose: string } {
  const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) throw new Refused(401, 'AUTH_INVALID');
  const header = b64json(h), claims = b64json(p);
  const key = clientKeys.get(claims.iss);
  if (header.alg !== 'ES256' || !key) throw new Refused(401, 'AUTH_INVALID');
  if (!verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) throw new Refused(401, 'AUTH_INVALID');
  const now = Date.now() / 1000;
  if (claims.aud !== audience || !(claims.exp > now) || claims.body_sha256 !== sha256(body).toString('base64url')) throw new Refused(401, 'AUTH_INVALID');
  if (typeof claims.jti !== 'string' || seen.has(claims.jti)) throw new Refused(401, 'AUTH_REPLAYED');
  seen.set(claims.jti, claims.exp);
  const minute = Math.floor(now / 60), count = perMinute.get(claims.iss);
  if (count?.minute === minute) {
    if (++count.n > PER_MINUTE) throw new Refused(429, 'RATE_LIMITED');
  } else perMinute.set(claims.iss, { minute, n: 1 });
  if (!PURPOSES.has(claims.purpose)) throw new Refused(403, 'FORBIDDEN_PURPOSE');
  return { client: claims.iss, purpose: claims.purpose };
}

function callUpstream(personalId: string): Promise<{ status: number; body: unknown; ms: number }> {
  const started = performance.now();
  const payload = Buffer.from(JSON.stringify({ soDinhDanh: personalId }));
  return new Promise((resolve, reject) => {
    const out = http.request({ host: target.hostname, port: target.port, path: '/api/v1/cong-dan/tra-cuu', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length } }, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        try {
          resolve({ status: up.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), ms: performance.now() - started });
        } catch (e) {
          reject(e);
        }
      });
    });
    out.on('error', reject);
    out.end(payload);
  });
}

async function exchange(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) {
  const started = performance.now();
  const requestId = timeOrderedUuid();
  const time = new Date().toISOString();
  const { client, purpose } = authenticate(req.headers.authorization, body);
  const parsed: unknown = JSON.parse(body.toString('utf8'));
  if (!contract.validateRequest(parsed)) throw new Refused(400, 'REQUEST_INVALID');
  const input = parsed as { personalId: string };
  const upstreamAnswer = await callUpstream(input.personalId);
  if (upstreamAnswer.status !== 200) throw new Refused(502, 'UPSTREAM_BAD_RESPONSE');
  const record = mapIdentity(input.personalId, upstreamAnswer.body, new Date().toISOString());
  const answer = { ...record, fieldGroups: { core: 'released', address: 'released', family: 'released', vital: 'released' } };
  if (!contract.validateResponse(answer)) throw new Refused(502, 'UPSTREAM_BAD_RESPONSE');
  const answerBytes = Buffer.from(JSON.stringify(answer));
  const requestSha256 = sha256(body);
  const protectedHeader = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'reference', iat: Math.floor(Date.now() / 1000), request_id: requestId, request_sha256: requestSha256.toString('base64url') })).toString('base64url');
  const signature = `${protectedHeader}..${sign('sha256', Buffer.from(`${protectedHeader}.${answerBytes.toString('base64url')}`), { key: signing, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  const entry = JSON.stringify({
    caseId: null, client, id: requestId, outcome: 'released', prevHash: head, purpose, requestSha256: requestSha256.toString('hex'), responseSha256: sha256(answerBytes).toString('hex'),
    seq: ++seq, service: SERVICE, subjects: [createHmac('sha256', pseudonymKey).update(input.personalId).digest('hex')], time,
    upstreams: [{ agency: 'population', errorCode: null, latencyMs: Math.round(upstreamAnswer.ms), operation: 'cong-dan/tra-cuu', outcome: 'ok', reference: record.source.reference }], version: 1,
  });
  head = sha256(head + entry).toString('hex');
  await append(Buffer.from(`${entry.slice(0, -1)},"hash":"${head}"}\n`));
  requests.inc({ service: SERVICE, client, outcome: 'released', code: 'OK' });
  latency.observe({ service: SERVICE, outcome: 'released' }, (performance.now() - started) / 1000);
  log.info({ requestId, client, service: SERVICE, status: 200, latencyMs: Math.round(performance.now() - started) }, 'released');
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Request-Id': requestId, 'X-Gateway-Signature': signature, 'Content-Length': answerBytes.length });
  res.end(answerBytes);
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    exchange(req, Buffer.concat(chunks), res).catch((e: unknown) => {
      const status = e instanceof Refused ? e.status : 500;
      log.info({ status, code: e instanceof Refused ? e.code : 'INTERNAL' }, 'request refused');
      res.writeHead(status, { 'Content-Type': 'application/problem+json' }).end(JSON.stringify({ status, code: e instanceof Refused ? e.code : 'INTERNAL' }));
    });
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${(server.address() as { port: number }).port}\n`));
