#!/usr/bin/env node
/**
 * gateway start [--config FILE]
 * gateway token --key FILE [--service ID] [--purpose CODE] [--case-id ID] [--user-id ID] [--body JSON | --body-file FILE] [--iss ID] [--aud ID] [--lifetime S]
 * gateway token consent --sub PERSONAL_ID [--scope "core address"] [--azp portal] [--key FILE]
 * gateway audit verify [--config FILE]
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { resolveConfig, isConfigError, DEMO_GATEWAY_ID, DEMO_IDP_ISSUER, demoConsolePassword } from './config/index.ts';
import { mintAssertion, mintConsent } from './client-assertion.ts';
import { world } from '../adapters/world/index.ts';

const USAGE = `usage:
  gateway start [--config FILE]                 start the gateway (embedded demo without a config)
  gateway token --key FILE [--purpose CODE] [--case-id ID] [--user-id ID] [--body JSON | --body-file FILE]
                [--iss CLIENT] [--aud GATEWAY_ID] [--lifetime SECONDS]
                                                mint a client assertion for one request
  gateway token consent --sub PERSONAL_ID [--scope "core address"] [--azp portal] [--key FILE]
                                                mint a citizen consent with the demo identity provider
  gateway audit verify [--config FILE]          re-check the audit chain and its checkpoints`;

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
      gateway.logger.error({ errName: (e as Error)?.name }, 'shutdown failed');
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
  const { values } = parseArgs({ args: args.slice(1), options: { config: { type: 'string' } } });
  const { config } = await resolveConfig({ file: values.config });
  const { keyPairFromJwk, loadOrCreatePrivateJwk } = await import('./keys.ts');
  const { createSigner } = await import('./signing.ts');
  const { openStore, verifyChain } = await import('./audit/index.ts');
  const key = await keyPairFromJwk(await loadOrCreatePrivateJwk(config.signing.privateJwkFile ?? join(config.dataDir, 'keys', 'gateway.private.jwk.json'), config.signing.alg));
  const store = await openStore(config);
  try {
    const report = await verifyChain(store.scan(1), await store.checkpoints(), createSigner(key).jwks);
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(report.ok
      ? `chain intact: ${report.entries} entries, head seq ${report.headSeq}${report.lastCheckpoint ? `, last checkpoint seq ${report.lastCheckpoint.seq} at ${report.lastCheckpoint.time}` : ''}\n`
      : `CHAIN BROKEN at seq ${report.firstBadSeq}: ${report.problem} (intact up to seq ${report.verifiedUpTo})\n`);
    process.exitCode = report.ok ? 0 : 2;
  } finally {
    await store.close();
  }
}

class UsageError extends Error {}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  try {
    if (command === 'start') await start(rest);
    else if (command === 'token') await token(rest);
    else if (command === 'audit') await auditCommand(rest);
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
