#!/usr/bin/env node
/**
 * The production build (`npm run build`): dist/, plain JavaScript that runs with `node
 * dist/gateway/cli.js` and no TypeScript loader.
 *
 * tsc (tsconfig.build.json) compiles gateway/, adapters/ and docker/keygen.ts. The code finds some
 * files next to itself through import.meta.url, so they are copied to the same relative places:
 * contracts/ (gateway/contracts.ts), every non-TypeScript file under gateway/ and adapters/ (the
 * console's public/ files, the audit store's worker scripts), and a package.json that makes dist/
 * an ES module package and carries the version gateway/openapi.ts reads beside contracts/.
 *
 * The output is staged in a directory of its own and moved into dist/ file by file with rename(2):
 * a gateway running from dist/ never reads a half-written file, and builds that run at the same
 * time (test files in parallel workers) cannot interleave their writes.
 *
 * The last file moved in is dist/build-stamp.json, the fingerprint of the inputs as they were when
 * the build began (sourceFingerprint: path, size and mtime of every file the build reads). The
 * `gateway` command (bin/gateway.mjs) runs dist/ only while the inputs still have that
 * fingerprint, so an edit, a new or deleted file, a checkout or a build that failed halfway sends
 * it back to the TypeScript sources. The stamp is removed before the other files are replaced.
 *
 * `npm install` / `npm ci` run this as the `prepare` script (build({ prepare: true })): there a
 * failed or impossible build (no TypeScript, as after `npm ci --omit=dev`) is a warning, not a
 * failed install; the CLI then runs the sources.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
/** Source trees whose non-TypeScript files are runtime assets. */
const SOURCE_TREES = ['gateway', 'adapters'];
const TYPESCRIPT = /\.[cm]?ts$/;
/** What the build reads: these trees whole, and these files. */
const INPUT_TREES = ['gateway', 'adapters', 'contracts'];
const INPUT_FILES = ['docker/keygen.ts', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs'];
/** Written into dist/ last: `{ fingerprint, builtAt }`. */
export const STAMP = 'build-stamp.json';

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir, base = dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(path, base);
    return e.isFile() ? [relative(base, path)] : [];
  });
}

/**
 * The fingerprint of the build's inputs under `root`: a hash of the path, size and mtime of every
 * file in INPUT_TREES and of INPUT_FILES (a missing one counts as missing). Any edit, added,
 * removed or renamed file changes it; a few hundred stat calls, a few milliseconds.
 */
export function sourceFingerprint(root = ROOT) {
  const hash = createHash('sha256');
  const files = [...INPUT_TREES.flatMap((tree) => filesUnder(join(root, tree)).map((f) => join(tree, f))), ...INPUT_FILES].sort();
  for (const file of files) {
    let st;
    try {
      st = statSync(join(root, file));
    } catch {
      st = null;
    }
    hash.update(`${file.split('\\').join('/')}\0${st ? `${st.size}\0${st.mtimeMs}` : 'missing'}\n`);
  }
  return hash.digest('hex');
}

/** Whether dist/ holds a complete build of the inputs exactly as they are now under `root`. */
export function buildIsCurrent(root = ROOT) {
  try {
    const stamp = JSON.parse(readFileSync(join(root, 'dist', STAMP), 'utf8'));
    return existsSync(join(root, 'dist', 'gateway', 'cli.js')) && stamp.fingerprint === sourceFingerprint(root);
  } catch {
    return false;
  }
}

function copyInto(staging, from, to = from) {
  const target = join(staging, to);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(ROOT, from), target);
}

function compile(staging) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', staging], { cwd: ROOT, stdio: 'inherit' });
  return run.status === 0;
}

function addAssets(staging) {
  for (const tree of SOURCE_TREES) {
    for (const file of filesUnder(join(ROOT, tree))) if (!TYPESCRIPT.test(file)) copyInto(staging, join(tree, file));
  }
  cpSync(join(ROOT, 'contracts'), join(staging, 'contracts'), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  writeFileSync(join(staging, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, private: true, type: 'module' }, null, 2) + '\n');
}

/**
 * Moves the staged files into dist/ and drops what an earlier build left that this one no longer
 * has. The stamp goes first (out) and last (in): while dist/ is being replaced it is not current.
 */
function install(staging) {
  rmSync(join(DIST, STAMP), { force: true });
  const built = filesUnder(staging).sort((a, b) => Number(a === STAMP) - Number(b === STAMP));
  for (const file of built) {
    mkdirSync(dirname(join(DIST, file)), { recursive: true });
    renameSync(join(staging, file), join(DIST, file));
  }
  const current = new Set(built);
  for (const file of filesUnder(DIST)) {
    if (current.has(file)) continue;
    rmSync(join(DIST, file), { force: true });
    for (let dir = dirname(join(DIST, file)); dir !== DIST; dir = dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        break; // not empty
      }
    }
  }
}

/**
 * Builds dist/; returns whether dist/ was replaced. As the `prepare` script ({ prepare: true })
 * a failure is reported as a warning and leaves the exit code alone, so `npm install` goes on.
 */
export function build({ prepare = false } = {}) {
  const fail = (why) => {
    if (prepare) process.stderr.write(`build (prepare): ${why}; dist/ left as it was, \`npx gateway\` runs the TypeScript sources until \`npm run build\` succeeds\n`);
    else {
      process.stderr.write(`build: ${why}, dist/ left as it was\n`);
      process.exitCode = 1;
    }
    return false;
  };
  try {
    createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    return fail('TypeScript is not installed (dev dependencies omitted?)');
  }
  // Taken before tsc reads anything: a file edited while the build runs leaves the stamp stale.
  const fingerprint = sourceFingerprint();
  const staging = mkdtempSync(join(ROOT, '.dist-build-'));
  try {
    if (!compile(staging)) return fail('tsc failed');
    addAssets(staging);
    writeFileSync(join(staging, STAMP), JSON.stringify({ fingerprint, builtAt: new Date().toISOString() }) + '\n');
    install(staging);
    return true;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

const invokedAs = process.argv[1] ? (() => { try { return realpathSync(process.argv[1]); } catch { return null; } })() : null;
if (invokedAs === fileURLToPath(import.meta.url)) build({ prepare: process.argv.includes('--prepare') });
