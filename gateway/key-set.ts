/**
 * The gateway's signing keys as a set that rotates without a restart.
 *
 * A key set is a directory (`signing.keySetDir`, default `signing/` beside the single key file)
 * holding each private JWK as `<kid>.private.jwk.json` (mode 0600) and a manifest, `keyset.json`,
 * listing every key with when it was created and from when it signs (`activatesAt`). The key that
 * signs at a time is the one activated last by then; the ones before it are retired (they signed
 * before the next one's `activatesAt`) and stay published for verification. Nothing of the manifest
 * says "active": it follows from the times, so every instance reading the same set switches at the
 * same moment, with no message between them.
 *
 * Before any rotation there is no manifest: the single key file (`signing.privateJwkFile`, default
 * `<dataDir>/keys/gateway.private.jwk.json`, generated at first start) is the whole set, as it
 * always was. The first `gateway keys rotate` copies it into the set as its first key.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JWK } from 'jose';
import type { GatewayConfig } from './config/types.ts';
import { generatePrivateJwk, keyPairFromJwk, loadOrCreatePrivateJwk, type KeyPair } from './keys.ts';
import type { Logger } from './logger.ts';

export const MANIFEST = 'keyset.json';

type Alg = 'ES256' | 'EdDSA';

/** One key as the manifest lists it. */
export interface ManifestEntry { kid: string; alg: Alg; file: string; createdAt: string; activatesAt: string }
interface Manifest { keys: ManifestEntry[] }

/** A key of the set: its key pair and from when (ms since the epoch) it signs. */
export interface SetKey extends KeyPair { createdAt: string; activatesAt: number }

/** A key's state at a time, as `gateway keys list` and `rotate` print it. */
export interface KeyState { kid: string; alg: Alg; state: 'active' | 'pending' | 'retired'; createdAt: string; activatesAt: string; retiredAt: string | null }

export interface SigningPaths { dir: string; legacyFile: string }

/** Where the set lives: its directory, and the single key file it started from. */
export function signingPaths(cfg: Pick<GatewayConfig, 'signing' | 'dataDir'>): SigningPaths {
  const legacyFile = cfg.signing.privateJwkFile ?? join(cfg.dataDir, 'keys', 'gateway.private.jwk.json');
  return { legacyFile, dir: cfg.signing.keySetDir ?? join(dirname(legacyFile), 'signing') };
}

export class KeySetError extends Error {}

function readManifest(dir: string): Manifest | null {
  const file = join(dir, MANIFEST);
  if (!existsSync(file)) return null;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    throw new KeySetError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(manifest?.keys) || manifest.keys.length === 0) throw new KeySetError(`${file}: lists no keys`);
  manifest.keys.forEach((k, i) => {
    if (typeof k.kid !== 'string' || typeof k.file !== 'string' || !Number.isFinite(Date.parse(k.activatesAt))) throw new KeySetError(`${file}: keys[${i}] needs kid, file and activatesAt`);
  });
  return manifest;
}

const byActivation = (a: SetKey, b: SetKey) => a.activatesAt - b.activatesAt;

async function keyOf(dir: string, entry: ManifestEntry): Promise<SetKey> {
  const file = join(dir, entry.file);
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  } catch (e) {
    throw new KeySetError(`${file}: cannot read the key of ${entry.kid} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const pair = await keyPairFromJwk(jwk);
  // The manifest names a key by its kid: a file swapped under it would sign as another key.
  if (pair.kid !== entry.kid) throw new KeySetError(`${file}: holds kid ${pair.kid}, the manifest says ${entry.kid}`);
  return { ...pair, createdAt: entry.createdAt, activatesAt: Date.parse(entry.activatesAt) };
}

/** Every key of the set, in activation order. Without a manifest: the single key file (generated at first use), active since always. */
export async function readKeySet(paths: SigningPaths, alg: Alg): Promise<SetKey[]> {
  const manifest = readManifest(paths.dir);
  if (!manifest) {
    const pair = await keyPairFromJwk(await loadOrCreatePrivateJwk(paths.legacyFile, alg));
    return [{ ...pair, createdAt: statSync(paths.legacyFile).mtime.toISOString(), activatesAt: 0 }];
  }
  return (await Promise.all(manifest.keys.map((e) => keyOf(paths.dir, e)))).sort(byActivation);
}

/** The key that signs at `now`: the last one activated by then (the first, should every key lie ahead). */
export function activeKey(keys: readonly SetKey[], now: number): SetKey {
  let active = keys[0]!;
  for (const k of keys) if (k.activatesAt <= now) active = k;
  return active;
}

/** Each key's state at `now`; a key retires when the next one activates. */
export function keyStates(keys: readonly SetKey[], now: number): KeyState[] {
  const active = activeKey(keys, now);
  return keys.map((k, i) => {
    const next = keys[i + 1];
    const state = k === active ? 'active' : k.activatesAt > now ? 'pending' : 'retired';
    return {
      kid: k.kid, alg: k.alg, state, createdAt: k.createdAt, activatesAt: new Date(k.activatesAt).toISOString(),
      retiredAt: state === 'retired' && next ? new Date(next.activatesAt).toISOString() : null,
    };
  });
}

/** Writes a private key of the set: 0600, never over an existing file. */
function writeKeyFile(dir: string, jwk: JWK): string {
  const file = `${jwk.kid}.private.jwk.json`;
  if (!existsSync(join(dir, file))) writeFileSync(join(dir, file), JSON.stringify(jwk, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  return file;
}

/** Replaced in one rename: an instance reading the manifest meanwhile sees the old one or the new one, never half. */
function writeManifest(dir: string, manifest: Manifest): void {
  const tmp = join(dir, `.${MANIFEST}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, join(dir, MANIFEST));
}

/**
 * Adds a new key to the set, signing from `now + delaySeconds`: published at once (every instance
 * picks it up within `signing.rotation.pollSeconds`), used only from then, so whoever caches the
 * JWKS has it before the first signature by it. The first rotation makes the set from the single
 * key file.
 */
export async function rotateKeySet(paths: SigningPaths, alg: Alg, o: { now: number; delaySeconds: number }): Promise<{ added: KeyState; keys: KeyState[] }> {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  let manifest = readManifest(paths.dir);
  if (!manifest) {
    const first = await loadOrCreatePrivateJwk(paths.legacyFile, alg);
    const pair = await keyPairFromJwk(first);
    const createdAt = statSync(paths.legacyFile).mtime.toISOString();
    manifest = { keys: [{ kid: pair.kid, alg: pair.alg, file: writeKeyFile(paths.dir, { ...first, kid: pair.kid }), createdAt, activatesAt: createdAt }] };
  }
  const jwk = await generatePrivateJwk(alg);
  const entry: ManifestEntry = {
    kid: jwk.kid!, alg, file: writeKeyFile(paths.dir, jwk),
    createdAt: new Date(o.now).toISOString(), activatesAt: new Date(o.now + o.delaySeconds * 1000).toISOString(),
  };
  writeManifest(paths.dir, { keys: [...manifest.keys, entry] });
  const states = keyStates(await readKeySet(paths, alg), o.now);
  return { added: states.find((k) => k.kid === entry.kid)!, keys: states };
}

/**
 * Drops from the set the keys retired more than `retainDays` ago, so they are no longer published.
 * A key whose kid signed a stored checkpoint (`signedCheckpoints`) is kept whatever its age, since
 * the log could no longer be verified without it, unless `force`; the active and pending keys
 * always are. Their files are left in the directory: removing a key from the JWKS is the decision,
 * destroying it the operator's own.
 */
export async function pruneKeySet(paths: SigningPaths, alg: Alg, o: { now: number; retainDays: number; signedCheckpoints: ReadonlySet<string>; force?: boolean }): Promise<{ removed: KeyState[]; kept: KeyState[] }> {
  const manifest = readManifest(paths.dir);
  if (!manifest) return { removed: [], kept: keyStates(await readKeySet(paths, alg), o.now) };
  const states = keyStates(await readKeySet(paths, alg), o.now);
  const cutoff = o.now - o.retainDays * 86_400_000;
  const removable = new Set(states.filter((k) => k.state === 'retired' && Date.parse(k.retiredAt!) < cutoff && (o.force || !o.signedCheckpoints.has(k.kid))).map((k) => k.kid));
  if (removable.size) writeManifest(paths.dir, { keys: manifest.keys.filter((k) => !removable.has(k.kid)) });
  return { removed: states.filter((k) => removable.has(k.kid)), kept: states.filter((k) => !removable.has(k.kid)) };
}

/** The signing keys of a running gateway: re-read on demand (SIGHUP) and when the manifest changes. */
export interface SigningKeys {
  /** Every published key, in activation order (the signer picks the active one at each signature). */
  keys(): readonly SetKey[];
  /** Reads the set again; a set that cannot be read is logged and the keys in use are kept. */
  reload(): Promise<void>;
  close(): void;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Opens the key set and keeps it current: the manifest's mtime is polled every `pollSeconds`
 * (cheap: one stat), and a line is logged when a pending key starts signing.
 */
export async function openSigningKeys(cfg: Pick<GatewayConfig, 'signing' | 'dataDir'>, logger?: Logger): Promise<SigningKeys> {
  const paths = signingPaths(cfg);
  const manifestFile = join(paths.dir, MANIFEST);
  let keys = await readKeySet(paths, cfg.signing.alg);
  const stamp = () => {
    try {
      const s = statSync(manifestFile);
      return `${s.mtimeMs}:${s.size}`;
    } catch {
      return 'none';
    }
  };
  let seen = stamp();
  let activation: NodeJS.Timeout | undefined;
  const announceNextActivation = () => {
    clearTimeout(activation);
    const next = keys.find((k) => k.activatesAt > Date.now());
    if (!next) return;
    activation = setTimeout(() => {
      logger?.info({ kid: next.kid, activatedAt: new Date(next.activatesAt).toISOString() }, 'signing key active');
      announceNextActivation();
    }, Math.min(MAX_TIMER_MS, next.activatesAt - Date.now() + 1));
    activation.unref();
  };
  announceNextActivation();

  const reload = async () => {
    seen = stamp();
    try {
      const next = await readKeySet(paths, cfg.signing.alg);
      const changed = next.map((k) => `${k.kid}@${k.activatesAt}`).join() !== keys.map((k) => `${k.kid}@${k.activatesAt}`).join();
      keys = next;
      if (changed) {
        logger?.info({ keys: keyStates(keys, Date.now()).map(({ kid, state, activatesAt }) => ({ kid, state, activatesAt })) }, 'signing keys reloaded');
        announceNextActivation();
      }
    } catch (e) {
      logger?.error({ err: e, dir: paths.dir }, 'signing key set unreadable: the keys in use are kept');
    }
  };
  const poll = setInterval(() => { if (stamp() !== seen) void reload(); }, cfg.signing.rotation.pollSeconds * 1000);
  poll.unref();
  return {
    keys: () => keys,
    reload,
    close() {
      clearInterval(poll);
      clearTimeout(activation);
    },
  };
}
