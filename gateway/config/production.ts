/**
 * What `mode: production` refuses: anything of the embedded demo. A production gateway must never
 * answer from seed data, accept a key or password anyone can read in a demo data directory, or
 * lose its audit log at exit. Each refusal names the key path, and the process does not start.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { agencies } from '../../adapters/index.ts';
import { ConfigError } from './errors.ts';
import { DEMO_CONSOLE_SALT } from './demo.ts';
import type { GatewayConfig } from './types.ts';


/** Key ids (RFC 7638 thumbprints) of the demo keys generated under `<dataDir>/demo/`. */
function demoKeyIds(dataDir: string): Set<string> {
  const dir = join(dataDir, 'demo');
  if (!existsSync(dir)) return new Set();
  const ids = new Set<string>();
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.jwk.json')) continue;
    try {
      const kid = (JSON.parse(readFileSync(join(dir, name), 'utf8')) as { kid?: unknown }).kid;
      if (typeof kid === 'string') ids.add(kid);
    } catch {
      // Not a key: nothing to compare with.
    }
  }
  return ids;
}

const isInside = (file: string, dir: string) => !relative(resolve(dir), resolve(file)).startsWith('..');

export function checkProduction(cfg: GatewayConfig): void {
  const refuse = (path: string, why: string): never => {
    throw new ConfigError(`${path}: ${why} (mode is production; set mode: demo for a demo)`);
  };
  for (const agency of agencies()) {
    const upstream = cfg.upstreams[agency.name]!;
    if (!upstream.url && !upstream.gateway) refuse(`/upstreams/${agency.name}/url`, 'required (or a remote gateway): without it the embedded simulator would answer from seed data');
    for (const option of agency.requiredInProduction ?? []) {
      if (upstream[option] === undefined) refuse(`/upstreams/${agency.name}/${option}`, 'required: without it the simulator\'s demo value would be used');
    }
  }
  if (cfg.clients.length === 0) refuse('/clients', 'no client is configured: every request would be refused');
  if (cfg.audit.store === 'memory') refuse('/audit/store', '"memory" keeps the audit log in memory only and loses it at exit; use sqlite or postgres');

  const demoDir = join(cfg.dataDir, 'demo');
  const demoKeys = demoKeyIds(cfg.dataDir);
  cfg.clients.forEach((c, i) => c.keys.jwks?.keys.forEach((k, j) => {
    if (typeof k.kid === 'string' && demoKeys.has(k.kid)) refuse(`/clients/${i}/keys/jwks/keys/${j}`, `a demo key (generated under ${demoDir})`);
  }));
  cfg.identityProvider?.jwks?.keys.forEach((k, j) => {
    if (typeof k.kid === 'string' && demoKeys.has(k.kid)) refuse(`/identityProvider/jwks/keys/${j}`, `a demo key (generated under ${demoDir})`);
  });
  if (cfg.signing.privateJwkFile && isInside(cfg.signing.privateJwkFile, demoDir)) refuse('/signing/privateJwkFile', `a demo key (under ${demoDir})`);
  if (cfg.signing.keySetDir && isInside(cfg.signing.keySetDir, demoDir)) refuse('/signing/keySetDir', `demo keys (under ${demoDir})`);
  for (const agency of agencies()) {
    const file = cfg.upstreams[agency.name]?.gateway?.privateJwkFile;
    if (file && isInside(file, demoDir)) refuse(`/upstreams/${agency.name}/gateway/privateJwkFile`, `a demo key (under ${demoDir})`);
  }
  cfg.console.accounts.forEach((a, i) => {
    if (a.passwordHash.split('$')[4] === DEMO_CONSOLE_SALT.toString('base64url')) refuse(`/console/accounts/${i}/passwordHash`, 'the demo console password; make a hash with `echo \'password\' | npx gateway hash-password`');
  });
}
