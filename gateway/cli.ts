#!/usr/bin/env node
/**
 * gateway start [--config FILE]
 * gateway token --key FILE [--service ID] [--purpose CODE] [--case-id ID] [--user-id ID] [--body JSON | --body-file FILE] [--iss ID] [--aud ID] [--lifetime S]
 * gateway token consent --sub PERSONAL_ID [--scope "core address"] [--azp portal] [--key FILE]
 * gateway audit verify [--config FILE]
 * gateway simulate <agency> [--port N] [--host H]
 * gateway audit verify --export FILE.ndjson --jwks FILE.json [--checkpoint FILE.jws | --checkpoints FILE.json] [--head-seq N]
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { resolveConfig, isConfigError, DEMO_GATEWAY_ID, DEMO_IDP_ISSUER, demoConsolePassword, hashPassword } from './config/index.ts';
import { mintAssertion, mintConsent } from './client-assertion.ts';
import { world } from '../adapters/world/index.ts';

const USAGE = `usage:
  gateway start [--config FILE]                 start the gateway (embedded demo without a config)
  gateway token --key FILE [--purpose CODE] [--case-id ID] [--user-id ID] [--body JSON | --body-file FILE]
                [--iss CLIENT] [--aud GATEWAY_ID] [--lifetime SECONDS]
                                                mint a client assertion for one request
  gateway token consent --sub PERSONAL_ID [--scope "core address"] [--azp portal] [--key FILE]
                                                mint a citizen consent with the demo identity provider
  gateway simulate <agency> [--port N] [--host H]
                                                run one agency simulator alone (SIMULATOR_<AGENCY>_LATENCY_MS,
                                                _FAILURE_RATE, _FAULT_MODE stage latency and faults)
  gateway audit verify [--config FILE]          re-check the audit chain and its checkpoints
  gateway hash-password                         read a console password on stdin, print its scrypt hash for console.accounts
  gateway audit verify --export FILE.ndjson --jwks FILE.json [--checkpoint FILE.jws | --checkpoints FILE.json] [--head-seq N]
                                                offline: re-check an NDJSON export (GET /audit/export) against its own
                                                signed head (its last line), any checkpoints (GET /audit/checkpoints)
                                                and the gateway's JWKS; no database, no gateway`;

const dataDir = () => process.env.GATEWAY_DATA_DIR ?? './.data';
const readJwk = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as JWK;

async function start(args: string[]) {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const { config, demo } = await resolveConfig({ file: values.config });
  const { createGateway } = await import('./server.ts');
  const gateway = await createGateway(config);
  const url = await gateway.listen();
  const shutdown = async (signal: string) => {
    gateway.logger.info({ signal }, 'shutting down: finishing in-flight requests and the audit batch');
    try {
      await gateway.close();
      process.exit(0);
    } catch (e) {
      gateway.logger.error({ err: e }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  gateway.logger.info({ url, auditStore: config.audit.store, upstreams: gateway.upstreamUrls }, 'gateway listening');
  const c = world().citizens[0]!;
  process.stdout.write(`
Gateway ${config.gatewayId} listening on ${url}
${demo ? `Embedded demo: agency simulators on loopback, audit log in ${join(config.dataDir, 'audit.sqlite')},
demo keys in ${join(config.dataDir, 'demo')}/ (clients portal, land-office, auditor; identity provider idp).
Auditor console: ${url}/console (user "auditor", password "${demoConsolePassword(config.dataDir)}")

Try it (another terminal):
  BODY='{"personalId":"${c.personalId}"}'
  TOKEN=$(npm run -s gateway -- token --key ${join(config.dataDir, 'demo', 'portal.private.jwk.json')} --purpose PUBLIC_SERVICE_PREFILL --body "$BODY")
  curl -s -X POST ${url}/services/population.identity/v1 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$BODY"
` : ''}`);
}

async function token(args: string[]) {
  if (args[0] === 'consent') {
    const { values } = parseArgs({ args: args.slice(1), options: {
      sub: { type: 'string' }, scope: { type: 'string', default: 'core address family parcel' }, azp: { type: 'string', default: 'portal' },
      key: { type: 'string', default: join(dataDir(), 'demo', 'idp.private.jwk.json') }, iss: { type: 'string', default: DEMO_IDP_ISSUER },
      aud: { type: 'string', default: DEMO_GATEWAY_ID }, lifetime: { type: 'string', default: '600' },
    } });
    if (!values.sub) throw new UsageError('token consent needs --sub PERSONAL_ID');
    process.stdout.write(await mintConsent({ privateJwk: readJwk(values.key!), iss: values.iss!, aud: values.aud!, sub: values.sub, azp: values.azp!, scope: values.scope!.split(/[ ,]+/).filter(Boolean), lifetimeSeconds: Number(values.lifetime) }) + '\n');
    return;
  }
  const { values } = parseArgs({ args, options: {
    key: { type: 'string' }, iss: { type: 'string' }, aud: { type: 'string', default: DEMO_GATEWAY_ID }, service: { type: 'string' },
    purpose: { type: 'string' }, 'case-id': { type: 'string' }, 'user-id': { type: 'string' }, body: { type: 'string' },
    'body-file': { type: 'string' }, lifetime: { type: 'string', default: '120' },
  } });
  if (!values.key) throw new UsageError('token needs --key FILE (a private JWK, e.g. .data/demo/portal.private.jwk.json)');
  const iss = values.iss ?? basename(values.key).replace(/\.private\.jwk\.json$/, '');
  const body = values['body-file'] ? readFileSync(values['body-file']) : values.body ?? '';
  process.stdout.write(await mintAssertion({
    privateJwk: readJwk(values.key), iss, aud: values.aud!, purpose: values.purpose, caseId: values['case-id'], userId: values['user-id'],
    body, lifetimeSeconds: Number(values.lifetime),
  }) + '\n');
}

async function auditCommand(args: string[]) {
  if (args[0] !== 'verify') throw new UsageError('audit takes: verify');
  const { values } = parseArgs({ args: args.slice(1), options: {
    config: { type: 'string' }, export: { type: 'string' }, checkpoint: { type: 'string' }, checkpoints: { type: 'string' },
    jwks: { type: 'string' }, 'head-seq': { type: 'string' },
  } });
  if (values.export) return verifyExport(values);
  const { config } = await resolveConfig({ file: values.config });
  const { keyPairFromJwk, loadOrCreatePrivateJwk } = await import('./keys.ts');
  const { createSigner } = await import('./signing.ts');
  const { openStore, verifyStore } = await import('./audit/index.ts');
  const key = await keyPairFromJwk(await loadOrCreatePrivateJwk(config.signing.privateJwkFile ?? join(config.dataDir, 'keys', 'gateway.private.jwk.json'), config.signing.alg));
  const store = await openStore(config);
  try {
    printReport(await verifyStore(store, createSigner(key).jwks));
  } finally {
    await store.close();
  }
}

type VerifyReport = Awaited<ReturnType<typeof import('./audit/index.ts').verifyChain>>;

/** Prints the report and its one-line verdict; exit code 2 when the chain is not intact. */
function printReport(report: VerifyReport, note = '') {
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  const checkpoint = report.lastCheckpoint ? `, last checkpoint seq ${report.lastCheckpoint.seq} at ${report.lastCheckpoint.time}` : '';
  process.stdout.write(report.ok
    ? `chain intact: ${report.entries} entries, head seq ${report.headSeq}${checkpoint}\n`
    : report.problem === 'truncated'
      ? `CHAIN TRUNCATED after seq ${report.headSeq}: entries from seq ${report.firstBadSeq} are missing${note}\n`
      : `CHAIN BROKEN at seq ${report.firstBadSeq}: ${report.problem} (intact up to seq ${report.verifiedUpTo})${note}\n`);
  process.exitCode = report.ok ? 0 : 2;
}

/** A checkpoint from a bare compact JWS: its claimed seq and hash come from the payload; verifyChain checks the signature. */
function checkpointFromJws(jws: string) {
  const payload = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as { seq: number; hash: string; time: string };
  return { seq: payload.seq, hash: payload.hash, time: payload.time, jws };
}

/**
 * Offline verification of an export: every hash, every link, the signatures of its own signed head
 * (its last line) and of any checkpoints given under the gateway's JWKS; entries missing up to the
 * head or a checkpoint (or up to --head-seq), or a missing head line, mean the export was cut short.
 */
async function verifyExport(values: { export?: string; checkpoint?: string; checkpoints?: string; jwks?: string; 'head-seq'?: string }) {
  if (!values.jwks) throw new UsageError('offline verify needs --jwks FILE (the gateway\'s /.well-known/jwks.json)');
  const jwks = JSON.parse(readFileSync(values.jwks, 'utf8'));
  const checkpoints = [];
  try {
    if (values.checkpoint) checkpoints.push(checkpointFromJws(readFileSync(values.checkpoint, 'utf8').trim()));
    if (values.checkpoints) {
      const listed = JSON.parse(readFileSync(values.checkpoints, 'utf8'));
      checkpoints.push(...(Array.isArray(listed) ? listed : listed.checkpoints ?? []));
    }
  } catch {
    throw new UsageError('the checkpoint file is not a compact JWS, or the checkpoints file not the JSON of GET /audit/checkpoints');
  }
  const headSeq = values['head-seq'] === undefined ? null : Number(values['head-seq']);
  if (headSeq !== null && !Number.isInteger(headSeq)) throw new UsageError('--head-seq must be an integer');
  const { verifyExportFile, ExportLineError } = await import('./audit/export-verify.ts');
  let report: VerifyReport;
  try {
    report = await verifyExportFile(values.export!, checkpoints, jwks, headSeq);
  } catch (e) {
    if (!(e instanceof ExportLineError)) throw e;
    process.stdout.write(`CHAIN BROKEN at seq ${e.afterSeq + 1}: ${e.message} (intact up to seq ${e.afterSeq})\n`);
    process.exitCode = 2;
    return;
  }
  printReport(report, ' (offline, from the export)');
}


/** A number from the environment within bounds; a bad value stops the start, naming the variable. */
function envNumber(name: string, max: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > max) throw new UsageError(`${name} must be a number from 0 to ${max}`);
  return n;
}

/**
 * Runs one agency simulator alone, so each can have its own container; faults come from
 * SIMULATOR_<AGENCY>_LATENCY_MS / _FAILURE_RATE / _FAULT_MODE as for the embedded ones.
 */
async function simulate(args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
  const { agencyNamed, agencyNames } = await import('../adapters/index.ts');
  const agency = positionals[0] ?? '';
  const plugin = agencyNamed(agency);
  if (!plugin || positionals.length !== 1) throw new UsageError(`simulate takes one agency: ${agencyNames().join(', ')}`);
  // Each agency's default port (the docker stack's upstream URLs use them) comes with its plug-in.
  const port = values.port === undefined ? plugin.simulatorPort : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be 0 to 65535');
  const env = `SIMULATOR_${agency.toUpperCase()}_`;
  const faultMode = process.env[`${env}FAULT_MODE`] || undefined;
  if (faultMode && !['error', 'timeout', 'malformed'].includes(faultMode)) throw new UsageError(`${env}FAULT_MODE must be error, timeout or malformed`);
  const faults = { latencyMs: envNumber(`${env}LATENCY_MS`, 600_000), failureRate: envNumber(`${env}FAILURE_RATE`, 1), faultMode: faultMode as 'error' | 'timeout' | 'malformed' | undefined };

  const { default: express } = await import('express');
  const app = express();
  app.disable('x-powered-by');
  // One health path for every simulator (container healthchecks), outside the faulted routes.
  app.get('/_simulator/healthz', (_req, res) => { res.json({ status: 'ok', agency }); });
  app.use(plugin.createSimulator(faults));
  const server = await new Promise<import('node:http').Server>((resolve, reject) => {
    const s = app.listen(port, values.host!, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  const host = values.host!.includes(':') ? `[${values.host}]` : values.host;
  process.stdout.write(`simulator ${agency} listening on http://${host}:${actual} (latency ${faults.latencyMs ?? 0} ms, failure rate ${faults.failureRate ?? 0}${faultMode ? `, ${faultMode}` : ''})\n`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Reads one line (the password) from stdin, so it never sits in the shell history. */
async function hashPasswordCommand() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const password = input.split(/\r?\n/)[0] ?? '';
  if (password.length < 12) throw new UsageError('hash-password needs a password of at least 12 characters on stdin');
  process.stdout.write(hashPassword(password) + '\n');
}

class UsageError extends Error {}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  try {
    if (command === 'start') await start(rest);
    else if (command === 'token') await token(rest);
    else if (command === 'audit') await auditCommand(rest);
    else if (command === 'simulate') await simulate(rest);
    else if (command === 'hash-password') await hashPasswordCommand();
    else throw new UsageError(command ? `unknown command "${command}"` : 'a command is needed');
  } catch (e) {
    if (isConfigError(e)) {
      process.stderr.write(`config error: ${e.message}\n`);
      process.exit(1);
    }
    if (e instanceof UsageError || (e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
      process.exit(64);
    }
    throw e;
  }
}

await main(process.argv.slice(2));
