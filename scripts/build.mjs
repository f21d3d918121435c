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
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
/** Source trees whose non-TypeScript files are runtime assets. */
const SOURCE_TREES = ['gateway', 'adapters'];
const TYPESCRIPT = /\.[cm]?ts$/;

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir, base = dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(path, base);
    return e.isFile() ? [relative(base, path)] : [];
  });
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

/** Moves the staged files into dist/ and drops what an earlier build left that this one no longer has. */
function install(staging) {
  const built = filesUnder(staging);
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

const staging = mkdtempSync(join(ROOT, '.dist-build-'));
try {
  if (!compile(staging)) {
    process.stderr.write('build: tsc failed, dist/ left as it was\n');
    process.exitCode = 1;
  } else {
    addAssets(staging);
    install(staging);
  }
} finally {
  rmSync(staging, { recursive: true, force: true });
}
