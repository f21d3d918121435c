#!/usr/bin/env node
/**
 * gateway start [--config FILE]
 * gateway token --key FILE [--service ID] [--purpose CODE] [--case-id ID] [--user-id ID] [--body JSON | --body-file FILE] [--iss ID] [--aud ID] [--lifetime S]
 * gateway token consent --sub PERSONAL_ID [--scope "core address"] [--azp portal] [--key FILE]
 * gateway audit verify [--config FILE]
 * gateway simulate <agency> [--port N] [--host H]
 * gateway audit verify --export FILE.ndjson --jwks FILE.json [--checkpoint FILE.jws | --checkpoints FILE.json] [--head-seq N] [--tsa-cert FILE.pem …] [--archive DIR]
 * gateway audit archive [--config FILE]
 * gateway reload [--config FILE]
 * gateway keys rotate [--config FILE] [--now], gateway keys list [--config FILE]
 * gateway hash-password
 * gateway help [COMMAND], gateway COMMAND --help
 *
 * Exit codes: 0 done (also after a graceful shutdown on SIGTERM/SIGINT), 1 config error, failed
 * shutdown or a reload refused, 2 unknown command (or, from `audit verify`, a chain that is not intact), 64 a command
 * used wrongly.
 *
 * Modules are imported by the command that needs them: `token` and `--help` load neither the
 * config schema nor the server, so the compiled CLI answers in a fraction of a second.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { ConfigError } from './config/errors.ts';
import type { AuditStore } from './audit/store.ts';
import type { Gateway } from './server.ts';

/** Each command's usage; `gateway help` prints them all, `gateway COMMAND --help` its own. */
const COMMAND_USAGE: Record<string, string> = {
  start: `  gateway start [--config FILE]                 start the gateway (embedded demo without a config; GATEWAY_CONFIG names one too)
                                                SIGTERM or SIGINT: stop accepting, finish in-flight requests, commit the
                                                audit log, sign a final checkpoint at its head, log "shutdown complete", exit 0
                                                SIGHUP: re-read the signing key set, and the config (as gateway reload)`,
  reload: `  gateway reload [--config FILE]                re-read and validate the running gateway's config (it signals the pid in
                                                <dataDir>/gateway.pid): a valid one serves new requests, an invalid one or
                                                one changing a key fixed at start is refused (its key path printed, exit 1)
                                                and the old config keeps serving`,
  keys: `  gateway keys rotate [--config FILE] [--now]   add a signing key: published at once, signing after
                                                signing.rotation.activationDelaySeconds (--now: at once); old keys stay published
  gateway keys list [--config FILE]             the signing keys: kid, state (active, pending, retired) and their times
  gateway keys prune [--config FILE] [--force]  stop publishing keys retired over signing.rotation.retainRetiredDays ago,
                                                except those that signed a stored checkpoint (--force: those too)`,
  token: `  gateway token --key FILE [--purpose CODE] [--case-id ID] [--user-id ID] [--body JSON | --body-file FILE]
                [--iss CLIENT] [--aud GATEWAY_ID] [--lifetime SECONDS]
                                                mint a client assertion for one request`,
  'token consent': `  gateway token consent --sub PERSONAL_ID [--scope "core address"] [--azp portal] [--key FILE]
                                                mint a citizen consent with the demo identity provider`,
  simulate: `  gateway simulate <agency> [--port N] [--host H]
                                                run one agency simulator alone (SIMULATOR_<AGENCY>_LATENCY_MS,
                                                _FAILURE_RATE, _FAULT_MODE stage latency and faults)`,
  'audit verify': `  gateway audit verify [--config FILE]          re-check the audit chain and its checkpoints
  gateway audit verify --export FILE.ndjson --jwks FILE.json [--checkpoint FILE.jws | --checkpoints FILE.json] [--head-seq N]
                       [--tsa-cert FILE.pem …] [--tsa-tolerance SECONDS]
                                                offline: re-check an NDJSON export (GET /audit/export) against its own
                                                signed head (its last line), any checkpoints (GET /audit/checkpoints)
                                                and the gateway's JWKS; no database, no gateway. With --tsa-cert (the
                                                time-stamping authority's certificate, repeatable) also each checkpoint's
                                                RFC 3161 time-stamp, and the chain against every time-stamped checkpoint.
                                                With --archive DIR (audit.archive.dir, copied) the sealed segments there
                                                and the export are checked as one chain, the segments first`,
  'audit archive': `  gateway audit archive [--config FILE]         seal entries older than audit.retention.hotDays into archive segments
                                                now (one pass; the running gateway also does it every
                                                audit.archive.everySeconds); resumes what an interrupted pass left`,
  'hash-password': `  gateway hash-password                         read a console password on stdin, print its scrypt hash for console.accounts`,
  help: `  gateway help [COMMAND]                        this text (also: gateway --help, gateway COMMAND --help)`,
};

const USAGE = `usage:\n${['start', 'reload', 'keys', 'token', 'token consent', 'simulate', 'audit verify', 'audit archive', 'hash-password', 'help'].map((c) => COMMAND_USAGE[c]).join('\n')}`;

/** The usage of one command (`token consent`, `audit`, …), or of all when it has none of its own. */
function usageOf(command: string): string {
  const key = command === 'audit' ? 'audit verify' : command;
  const own = Object.hasOwn(COMMAND_USAGE, key) ? COMMAND_USAGE[key] : undefined;
  if (!own) return USAGE;
  // `token` covers `token consent` too; `audit` is `audit verify` and `audit archive`.
  return `usage:\n${own}${key === 'token' ? `\n${COMMAND_USAGE['token consent']}` : ''}${key === 'audit verify' ? `\n${COMMAND_USAGE['audit archive']}` : ''}`;
}

const dataDir = () => process.env.GATEWAY_DATA_DIR ?? './.data';
const readJwk = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as JWK;

/**
 * What ends a gateway started from a launcher: a signal sent to it, or (when npm started it) the
 * launcher's own end. npm passes SIGTERM and SIGINT only to the process it spawned, and `npx`
 * spawns `sh -c`: that shell dies of the signal without passing it on, so the gateway would be left
 * running, re-parented to init, holding its port. Under npm the gateway therefore watches its
 * parent too, and shuts down the same way when it is gone. Outside npm (systemd, docker, a shell's
 * `&`) only signals count.
 */
function onStopRequest(stop: (trigger: { signal: NodeJS.Signals | null; reason: string }) => void) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop({ signal, reason: signal }));
  if (!process.env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    stop({ signal: null, reason: 'launcher exited' });
  }, 200);
  watch.unref();
}

/**
 * After gateway.close() (which drained the server, committed the audit batch, checkpointed and
 * closed the store): opens the audit store again and makes sure its last checkpoint is the head,
 * signing one if not. close() checkpoints through AuditLog.checkpoint(), which joins a checkpoint
 * already running (it may have read the head before the last batch committed) and reports a
 * failure only to the error log; this turns either into a checkpoint at the head, or an error.
 */
async function sealAuditLog(gateway: Gateway): Promise<{ headSeq: number; checkpointSeq: number; checkpointAdded: boolean }> {
  const memory = gateway.config.audit.store === 'memory';
  const { openStore } = await import('./audit/index.ts');
  // A memory store lives in this process only: the closed one still answers.
  const store: AuditStore = memory ? gateway.audit.store : await openStore(gateway.config);
  try {
    const head = await store.head();
    const last = (await store.checkpoints()).at(-1);
    if (head.seq === 0 || (last && last.seq >= head.seq)) return { headSeq: head.seq, checkpointSeq: last?.seq ?? 0, checkpointAdded: false };
    const time = new Date().toISOString();
    await store.saveCheckpoint({ seq: head.seq, hash: head.hash, time, jws: await gateway.signer.signCheckpoint({ seq: head.seq, hash: head.hash, time }) });
    return { headSeq: head.seq, checkpointSeq: head.seq, checkpointAdded: true };
  } finally {
    if (!memory) await store.close();
  }
}

async function start(args: string[]) {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const { resolveConfig, demoConsolePassword } = await import('./config/index.ts');
  const { config, demo } = await resolveConfig({ file: values.config });
  const { createGateway } = await import('./server.ts');
  const gateway = await createGateway(config);
  const url = await gateway.listen();
  const { createReloader, runFiles, writePidFile } = await import('./reload.ts');
  // The same file and environment as at start, through the one loader.
  const reloader = createReloader(gateway, async () => (await resolveConfig({ file: values.config })).config, runFiles(config.dataDir).status);
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));
  const removePidFile = writePidFile(config.dataDir);
  let stopping = false;
  const shutdown = async ({ signal, reason }: { signal: NodeJS.Signals | null; reason: string }) => {
    // One shutdown: a terminal's Ctrl-C reaches both npm (which passes it on) and the gateway.
    if (stopping) return;
    stopping = true;
    const began = Date.now();
    gateway.logger.info({ signal, reason }, 'shutting down: finishing in-flight requests and the audit batch');
    removePidFile();
    try {
      await gateway.close();
      const sealed = await sealAuditLog(gateway);
      gateway.logger.info({ signal, reason, ...sealed, durationMs: Date.now() - began }, 'shutdown complete');
      process.exit(0);
    } catch (e) {
      gateway.logger.error({ err: e, signal, reason, durationMs: Date.now() - began }, 'shutdown failed');
      process.exit(1);
    }
  };
  onStopRequest((trigger) => void shutdown(trigger));
  gateway.logger.info({ url, auditStore: config.audit.store, upstreams: gateway.upstreamUrls }, 'gateway listening');
  const c = demo ? (await import('../adapters/world/index.ts')).world().citizens[0]! : undefined;
  process.stdout.write(`
Gateway ${config.gatewayId} listening on ${url}
${c ? `Embedded demo: agency simulators on loopback, audit log in ${join(config.dataDir, 'audit.sqlite')},
demo keys in ${join(config.dataDir, 'demo')}/ (clients portal, land-office, auditor; identity provider idp).
Auditor console: ${url}/console (user "auditor", password "${demoConsolePassword(config.dataDir)}")

Try it (another terminal):
  BODY='{"personalId":"${c.personalId}"}'
  TOKEN=$(npm run -s gateway -- token --key ${join(config.dataDir, 'demo', 'portal.private.jwk.json')} --purpose PUBLIC_SERVICE_PREFILL --body "$BODY")
  curl -s -X POST ${url}/services/population.identity/v1 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$BODY"
` : ''}`);
}

async function token(args: string[]) {
  const { DEMO_GATEWAY_ID, DEMO_IDP_ISSUER } = await import('./config/demo.ts');
  const { mintAssertion, mintConsent } = await import('./client-assertion.ts');
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

/**
 * One archiving pass now (audit/archiver.ts): what an interrupted pass left is finished first,
 * then every segment old enough is sealed. Prints what it did as JSON.
 */
async function archiveCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const { resolveConfig } = await import('./config/index.ts');
  const { config } = await resolveConfig({ file: values.config });
  const { archivePass, archiveSettings } = await import('./audit/archiver.ts');
  const settings = archiveSettings(config);
  if (!settings) throw new ConfigError('/audit/retention/hotDays: not set, so nothing is ever archived; set it to archive entries older than that many days');
  const { openStore } = await import('./audit/index.ts');
  const store = await openStore(config);
  try {
    const result = await archivePass(store, settings);
    const entries = result.sealed.reduce((n, s) => n + s.entries, 0);
    process.stdout.write(`${JSON.stringify({ ...result, dir: settings.dir }, null, 2)}\n`);
    process.stdout.write(!result.ran
      ? 'another archiver is running on this audit store: nothing done\n'
      : `${result.sealed.length} segment${result.sealed.length === 1 ? '' : 's'} sealed (${entries} entries)${result.recovered.length ? `, ${result.recovered.length} finished from an interrupted pass` : ''}; hot store from seq ${(await store.archive!.oldestHot())?.seq ?? '-'}\n`);
  } finally {
    await store.close();
  }
}

async function auditCommand(args: string[]) {
  if (args[0] === 'archive') return archiveCommand(args.slice(1));
  if (args[0] !== 'verify') throw new UsageError('audit takes: verify, archive');
  const { values } = parseArgs({ args: args.slice(1), options: {
    config: { type: 'string' }, export: { type: 'string' }, checkpoint: { type: 'string' }, checkpoints: { type: 'string' },
    jwks: { type: 'string' }, 'head-seq': { type: 'string' }, 'tsa-cert': { type: 'string', multiple: true }, 'tsa-tolerance': { type: 'string' },
    archive: { type: 'string' },
  } });
  if (values.export) return verifyExport(values);
  if (values.archive) throw new UsageError('--archive goes with --export (offline); online, the archive is audit.archive.dir of the config');
  const { resolveConfig } = await import('./config/index.ts');
  const { config } = await resolveConfig({ file: values.config });
  const { readKeySet, signingPaths } = await import('./key-set.ts');
  const { createSigner } = await import('./signing.ts');
  const { openStore, verifyStore } = await import('./audit/index.ts');
  // Every key of the set: checkpoints signed before a rotation verify under the key that signed them.
  const keys = await readKeySet(signingPaths(config), config.signing.alg);
  const { archiveDir } = await import('./audit/archiver.ts');
  const { loadAuthorities } = await import('./audit/anchoring.ts');
  const stamping = config.audit.timestamping;
  const certificates = stamping.authorities.length ? loadAuthorities(stamping).flatMap((a) => a.certificates) : undefined;
  const store = await openStore(config);
  try {
    const jwks = createSigner({ keys: () => keys }).jwks;
    const chain = await verifyStore(store, jwks, { archiveDir: archiveDir(config), certificates, toleranceSeconds: stamping.toleranceSeconds });
    // With an authority configured, the hot store's stamped checkpoints too (the archived ones are the segments').
    const { verifyHotAnchors, anchorVerdict } = await import('./audit/anchor-verify.ts');
    const report = certificates ? await verifyHotAnchors(store, chain, jwks, certificates, stamping.toleranceSeconds) : chain;
    printReport(report, segmentNote(report), 'anchoring' in report ? anchorVerdict(report) : undefined);
  } finally {
    await store.close();
  }
}

type VerifyReport = Awaited<ReturnType<typeof import('./audit/index.ts').verifyChain>>;
type AnchoredReport = import('./audit/anchor-verify.ts').AnchoredReport;

/** Prints the report and its one-line verdict; exit code 2 when the chain is not intact. `anchoring`: the time-stamps' verdict, which replaces the chain's when it refuses the chain. */
function printReport(report: VerifyReport | AnchoredReport, note = '', anchoring?: string) {
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (anchoring && !report.ok && (report.problem === 'timestamp_invalid' || report.problem === 'timestamp_contradiction' || report.problem === 'not_anchored')) {
    process.stdout.write(`${anchoring}${note}\n`);
    process.exitCode = 2;
    return;
  }
  const checkpoint = report.lastCheckpoint ? `, last checkpoint seq ${report.lastCheckpoint.seq} at ${report.lastCheckpoint.time}` : '';
  process.stdout.write(report.ok
    ? `chain intact: ${report.entries} entries, head seq ${report.headSeq}${checkpoint}\n`
    : report.problem === 'truncated'
      ? `CHAIN TRUNCATED after seq ${report.headSeq}: entries from seq ${report.firstBadSeq} are missing${note}\n`
      : `CHAIN BROKEN at seq ${report.firstBadSeq}: ${report.problem} (intact up to seq ${report.verifiedUpTo})${note}\n`);
  if (anchoring && report.ok) process.stdout.write(`${anchoring}\n`);
  process.exitCode = report.ok ? 0 : 2;
}

/** Which segment holds the first bad seq, for the verdict line. */
function segmentNote(report: VerifyReport | AnchoredReport): string {
  if (!report.archive || report.ok) return '';
  return report.archive.segment ? ` in archive segment ${report.archive.segment}` : report.firstBadSeq !== null && report.firstBadSeq <= report.archive.entries + 1 && report.problem === 'missing_entry' ? ' (no archive segment holds it)' : '';
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
async function verifyExport(values: { export?: string; checkpoint?: string; checkpoints?: string; jwks?: string; 'head-seq'?: string; 'tsa-cert'?: string[]; 'tsa-tolerance'?: string; archive?: string }) {
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
  const tolerance = values['tsa-tolerance'] === undefined ? undefined : Number(values['tsa-tolerance']);
  if (tolerance !== undefined && !(Number.isInteger(tolerance) && tolerance >= 0)) throw new UsageError('--tsa-tolerance must be a whole number of seconds');
  const anchors = values['tsa-cert']?.length ? await import('./audit/anchor-verify.ts') : null;
  let certificates;
  try {
    certificates = anchors?.readTsaCertificates(values['tsa-cert']!);
  } catch (e) {
    throw new UsageError(`--tsa-cert: ${(e as Error).message}`);
  }
  const { verifyExportFile, ExportLineError, readExport } = await import('./audit/export-verify.ts');
  const archived = values.archive ? await import('./audit/archive-verify.ts') : null;
  // The segments are walked once; the anchoring check reads their entries and stamped checkpoints again.
  let walked: import('./audit/archive-verify.ts').ArchiveWalk | null = null;
  const archive = archived ? async (bySeq: ReadonlyMap<number, string>) => (walked = await archived.walkArchiveDir(values.archive!, bySeq, jwks, { certificates, toleranceSeconds: tolerance })) : undefined;
  const from = values.archive ? ' (offline, from the archive and the export)' : ' (offline, from the export)';
  let report: VerifyReport;
  try {
    report = await verifyExportFile(values.export!, checkpoints, jwks, headSeq, archive);
    if (anchors && certificates) {
      const sealed = walked as import('./audit/archive-verify.ts').ArchiveWalk | null;
      const entries = sealed && archived ? chained(archived.archivedEntries(values.archive!, sealed), readExport(values.export!)) : readExport(values.export!);
      const given = new Set(checkpoints.map((c) => c.seq));
      const stamped = [...checkpoints, ...(sealed?.manifests ?? []).filter((m) => m.timestamp && !given.has(m.lastSeq)).map((m) => ({ ...m.checkpoint, timestamp: { tsa: m.timestamp!.tsa, token: m.timestamp!.token, time: m.timestamp!.genTime } }))];
      const anchored = anchors.withAnchors(report, await anchors.verifyAnchors(entries, stamped, jwks, certificates, tolerance));
      printReport(anchored, `${segmentNote(report)}${from}`, anchors.anchorVerdict(anchored));
      return;
    }
  } catch (e) {
    if (!(e instanceof ExportLineError)) throw e;
    process.stdout.write(`CHAIN BROKEN at seq ${e.afterSeq + 1}: ${e.message} (intact up to seq ${e.afterSeq})\n`);
    process.exitCode = 2;
    return;
  }
  printReport(report, `${segmentNote(report)}${from}`);
}

/** One iterable after the other. */
async function* chained<T>(...parts: AsyncIterable<T>[]): AsyncGenerator<T> {
  for (const part of parts) yield* part;
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
  let stopping = false;
  onStopRequest(() => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

/**
 * The dataDir of the gateway to signal: from the config when it is valid, else read leniently
 * (GATEWAY_DATA_DIR, the file's dataDir, the default), since the config being refused is what the
 * operator is about to learn.
 */
async function runningDataDir(file: string | undefined): Promise<string> {
  const { resolveConfig, readConfigFile } = await import('./config/index.ts');
  try {
    return (await resolveConfig({ file })).config.dataDir;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const named = file ?? process.env.GATEWAY_CONFIG;
    const raw = named ? (() => { try { return readConfigFile(named) as { dataDir?: unknown }; } catch { return {}; } })() : {};
    return process.env.GATEWAY_DATA_DIR ?? (typeof raw.dataDir === 'string' ? raw.dataDir : dataDir());
  }
}

/** Signals the running gateway to reload, prints what came of it; exit 1 when refused. */
async function reloadCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const { requestReload, ReloadRequestError } = await import('./reload.ts');
  try {
    const status = await requestReload(await runningDataDir(values.config));
    if (status.ok) {
      process.stdout.write(`config reloaded: generation ${status.generation} (${status.hash}), gateway pid ${status.pid}\n`);
      return;
    }
    process.stderr.write(`config reload refused: ${status.error}\nthe gateway keeps serving generation ${status.generation} (${status.hash})\n`);
  } catch (e) {
    if (!(e instanceof ReloadRequestError)) throw e;
    process.stderr.write(`${e.message}\n`);
  }
  process.exitCode = 1;
}

/** `keys rotate`, `keys list`: the signing key set of the config's gateway (key-set.ts). */
async function keysCommand(args: string[]) {
  const [sub, ...rest] = args;
  if (sub !== 'rotate' && sub !== 'list' && sub !== 'prune') throw new UsageError('keys takes: rotate, list, prune');
  const flag = { rotate: 'now', prune: 'force', list: null }[sub];
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, ...(flag ? { [flag]: { type: 'boolean' } } : {}) } }) as { values: { config?: string; now?: boolean; force?: boolean } };
  const { resolveConfig } = await import('./config/index.ts');
  const { config } = await resolveConfig({ file: values.config });
  const { keyStates, pruneKeySet, readKeySet, rotateKeySet, signingPaths } = await import('./key-set.ts');
  const paths = signingPaths(config);
  if (sub === 'list') {
    process.stdout.write(JSON.stringify({ dir: paths.dir, keys: keyStates(await readKeySet(paths, config.signing.alg), Date.now()) }, null, 2) + '\n');
    return;
  }
  if (sub === 'prune') {
    const { openStore } = await import('./audit/index.ts');
    const { decodeProtectedHeader } = await import('jose');
    const store = await openStore(config);
    let signedCheckpoints: Set<string>;
    try {
      signedCheckpoints = new Set((await store.checkpoints()).map((c) => String(decodeProtectedHeader(c.jws).kid)));
    } finally {
      await store.close();
    }
    const pruned = await pruneKeySet(paths, config.signing.alg, { now: Date.now(), retainDays: config.signing.rotation.retainRetiredDays, signedCheckpoints, force: Boolean(values.force) });
    process.stdout.write(JSON.stringify({ dir: paths.dir, ...pruned }, null, 2) + '\n');
    return;
  }
  const delaySeconds = values.now ? 0 : config.signing.rotation.activationDelaySeconds;
  const { added, keys } = await rotateKeySet(paths, config.signing.alg, { now: Date.now(), delaySeconds });
  process.stdout.write(JSON.stringify({ dir: paths.dir, added, keys }, null, 2) + '\n');
  process.stdout.write(`signing key ${added.kid} published; it signs from ${added.activatesAt} (every instance reads ${paths.dir} within signing.rotation.pollSeconds, or at once on SIGHUP)\n`);
}

/** Reads one line (the password) from stdin, so it never sits in the shell history. */
async function hashPasswordCommand() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const password = input.split(/\r?\n/)[0] ?? '';
  if (password.length < 12) throw new UsageError('hash-password needs a password of at least 12 characters on stdin');
  const { hashPassword } = await import('./config/demo.ts');
  process.stdout.write(hashPassword(password) + '\n');
}

class UsageError extends Error {}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  start, reload: reloadCommand, keys: keysCommand, token, audit: auditCommand, simulate, 'hash-password': hashPasswordCommand,
};
const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';

/** `help`, `--help`, `COMMAND --help`, `COMMAND SUBCOMMAND --help`: the usage on stdout, exit 0. */
function helpFor(argv: string[]): string | null {
  const [command, ...rest] = argv;
  if (command === undefined) return null;
  if (isHelp(command)) return USAGE;
  if (command === 'help') return rest[0] ? usageOf(rest[0] === 'token' && rest[1] === 'consent' ? 'token consent' : rest[0]) : USAGE;
  if (!Object.hasOwn(COMMANDS, command) || !rest.some(isHelp)) return null;
  return usageOf(command === 'token' && rest[0] === 'consent' ? 'token consent' : command);
}

/** Not a command at all: the whole usage on stderr, exit 2 (a known command used wrongly is 64). */
function unknownCommand(command: string | undefined): never {
  process.stderr.write(`${command === undefined ? 'a command is needed' : `unknown command "${command}"`}\n${USAGE}\n`);
  process.exit(2);
}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (command === 'help' && rest[0] !== undefined && rest[0] !== 'help' && !Object.hasOwn(COMMANDS, rest[0])) unknownCommand(rest[0]);
  const help = helpFor(argv);
  if (help !== null) {
    process.stdout.write(`${help}\n`);
    return;
  }
  const run = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) unknownCommand(command);
  try {
    await run(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`config error: ${e.message}\n`);
      process.exit(1);
    }
    if (e instanceof UsageError || (e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(e as Error).message}\n${usageOf(command === 'token' && rest[0] === 'consent' ? 'token consent' : command!)}\n`);
      process.exit(64);
    }
    throw e;
  }
}

await main(process.argv.slice(2));
