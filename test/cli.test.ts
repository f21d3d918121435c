import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeJwt } from 'jose';
import { createHash, scryptSync, timingSafeEqual } from 'node:crypto';
import { startGateway, GATEWAY_ID, IDP_ISSUER, type TestGateway } from './support/fixtures.ts';

const run = promisify(execFile);
const cli = (...args: string[]) => run('node', ['bin/gateway.mjs', ...args]).then((r) => r.stdout.trim());

let gw: TestGateway;
let dir: string;
beforeAll(async () => {
  gw = await startGateway();
  dir = mkdtempSync(join(tmpdir(), 'gw-cli-'));
  writeFileSync(join(dir, 'land-office.private.jwk.json'), JSON.stringify(gw.keys['land-office']));
  writeFileSync(join(dir, 'idp.private.jwk.json'), JSON.stringify(gw.keys.idp));
});
const cleanups: (() => void)[] = [];
afterAll(async () => {
  await gw.close();
  for (const c of cleanups) c();
});

describe('gateway token', () => {
  it('mints a client assertion the gateway accepts, bound to the body', async () => {
    const body = '{"personalId":"001085123456"}';
    const token = await cli('token', '--key', join(dir, 'land-office.private.jwk.json'), '--aud', GATEWAY_ID, '--purpose', 'LAND_TRANSFER_REGISTRATION', '--case-id', 'HS-9', '--user-id', 'officer-1', '--body', body);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'land-office', aud: GATEWAY_ID, purpose: 'LAND_TRANSFER_REGISTRATION', case_id: 'HS-9', user_id: 'officer-1', body_sha256: createHash('sha256').update(body).digest('base64url') });
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300);
    const res = await gw.call('population.identity', null, { raw: body, token });
    expect(res.status).toBe(200);
  });

  it('mints a citizen consent with the identity provider key', async () => {
    const consent = await cli('token', 'consent', '--key', join(dir, 'idp.private.jwk.json'), '--iss', IDP_ISSUER, '--aud', GATEWAY_ID, '--sub', '001085123456', '--scope', 'core address', '--azp', 'portal');
    expect(decodeJwt(consent)).toMatchObject({ sub: '001085123456', azp: 'portal', scope: 'core address', iss: IDP_ISSUER });
    const res = await gw.call('portal.prefill', { form: 'driving-licence-renewal' }, { client: 'portal', consent });
    expect(res.status).toBe(200);
  });

  it('refuses a usage error with exit code 64', async () => {
    const err = await run('node', ['bin/gateway.mjs', 'token']).then(() => null, (e) => e as { code: number; stderr: string });
    expect(err?.code).toBe(64);
    expect(err?.stderr).toContain('--key');
  });
});

describe('gateway hash-password', () => {
  it('prints an scrypt hash of the password read on stdin', async () => {
    const child = spawn('node', ['bin/gateway.mjs', 'hash-password']);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.end('a long console password\n');
    await new Promise((r) => child.on('close', r));
    const [scheme, N, r, p, salt, hash] = out.trim().split('$');
    expect(scheme).toBe('scrypt');
    const again = scryptSync('a long console password', Buffer.from(salt!, 'base64url'), 32, { N: Number(N), r: Number(r), p: Number(p) });
    expect(timingSafeEqual(again, Buffer.from(hash!, 'base64url'))).toBe(true);
  });
});

/** Runs the CLI; resolves with its exit code and output whatever the code (never rejects). */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run('node', ['bin/gateway.mjs', ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const COMMANDS = ['start', 'token', 'token consent', 'simulate', 'audit verify', 'audit archive', 'hash-password', 'help'];

describe('gateway --help', () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    it(`gateway ${args.join(' ')} prints the usage of every command on stdout and exits 0`, async () => {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      for (const c of COMMANDS) expect(r.stdout).toContain(`gateway ${c}`);
    });
  }

  it('is the same from the TypeScript sources (GATEWAY_CLI_SOURCES=1)', async () => {
    const r = await runCli(['--help'], { GATEWAY_CLI_SOURCES: '1' });
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(`gateway ${c}`);
  });

  // Each command's own usage, without doing anything: `start --help` starts nothing, `hash-password
  // --help` does not wait for stdin (execFile leaves it open).
  for (const [args, named] of [
    [['start', '--help'], 'gateway start'],
    [['start', '--config', 'nowhere.yaml', '-h'], 'gateway start'],
    [['token', '--help'], 'gateway token'],
    [['token', 'consent', '--help'], 'gateway token consent'],
    [['audit', '--help'], 'gateway audit verify'],
    [['audit', 'verify', '--help'], 'gateway audit verify'],
    [['audit', 'archive', '--help'], 'gateway audit archive'],
    [['audit', 'verify', '--export', 'x.ndjson', '--help'], 'gateway audit verify --export'],
    [['simulate', '--help'], 'gateway simulate'],
    [['simulate', 'population', '--help'], 'gateway simulate'],
    [['hash-password', '--help'], 'gateway hash-password'],
    [['help', 'start'], 'gateway start'],
    [['help', 'token', 'consent'], 'gateway token consent'],
    [['help', 'audit'], 'gateway audit verify'],
    [['help', 'help'], 'gateway help'],
  ] as [string[], string][]) {
    it(`gateway ${args.join(' ')} prints the usage of ${named} and exits 0`, async () => {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(named);
      expect(r.stdout).not.toContain('gateway hash-password' === named ? 'gateway start' : 'gateway hash-password');
    });
  }

  for (const args of [['bogus'], ['--bogus'], [], ['help', 'bogus'], ['toString']]) {
    it(`gateway ${args.join(' ') || '(nothing)'}: the usage on stderr, exit 2`, async () => {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(args.length ? /unknown command/ : /a command is needed/);
      for (const c of COMMANDS) expect(r.stderr).toContain(`gateway ${c}`);
    });
  }

  it('a known command used wrongly is still exit 64, with that command\'s usage', async () => {
    const r = await runCli(['audit', 'frobnicate']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('gateway audit verify');
  });
});

describe('bin/gateway.mjs: the compiled build while it is current, else the sources', () => {
  const ROOT = fileURLToPath(new URL('..', import.meta.url));
  type Build = { sourceFingerprint(root: string): string; buildIsCurrent(root: string): boolean; STAMP: string };
  const loadBuild = () => import(pathToFileURL(join(ROOT, 'scripts', 'build.mjs')).href) as Promise<Build>;

  /**
   * A repository in miniature: bin/gateway.mjs and scripts/build.mjs as they are, a dist/ and a
   * gateway/cli.ts that each say which one ran, tsx from this repository's node_modules.
   */
  function miniature() {
    const root = mkdtempSync(join(tmpdir(), 'gw-bin-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const put = (file: string, text: string) => {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), text);
    };
    for (const file of ['bin/gateway.mjs', 'scripts/build.mjs']) {
      mkdirSync(join(root, file, '..'), { recursive: true });
      copyFileSync(join(ROOT, file), join(root, file));
    }
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    put('package.json', '{"type":"module"}\n');
    put('gateway/cli.ts', "const from: string = 'sources'; console.log(from, process.argv.slice(2).join(' '));\n");
    put('adapters/index.ts', 'export {};\n');
    put('contracts/a.json', '{}\n');
    put('dist/gateway/cli.js', "console.log('dist', process.argv.slice(2).join(' '));\n");
    const ran = (env: NodeJS.ProcessEnv = {}) =>
      run('node', [join(root, 'bin', 'gateway.mjs'), 'token', '--help'], { env: { ...process.env, GATEWAY_CLI_SOURCES: '', ...env } }).then((r) => r.stdout.trim());
    return { root, put, ran };
  }

  it('the fingerprint changes with an edit, a new file, a removed file, and not otherwise', async () => {
    const { sourceFingerprint } = await loadBuild();
    const { root, put } = miniature();
    const first = sourceFingerprint(root);
    expect(sourceFingerprint(root)).toBe(first);
    put('dist/gateway/other.js', ''); // outputs are not inputs
    expect(sourceFingerprint(root)).toBe(first);
    const later = new Date(Date.now() + 5000);
    utimesSync(join(root, 'gateway', 'cli.ts'), later, later);
    const touched = sourceFingerprint(root);
    expect(touched).not.toBe(first);
    put('contracts/b.json', '{}\n');
    const added = sourceFingerprint(root);
    expect(added).not.toBe(touched);
    rmSync(join(root, 'contracts', 'b.json'));
    expect(sourceFingerprint(root)).toBe(touched);
    rmSync(join(root, 'contracts', 'a.json'));
    expect(sourceFingerprint(root)).not.toBe(touched);
  });

  it('runs dist/ when its stamp matches the sources, the sources after any change or without a stamp', async () => {
    const { sourceFingerprint, STAMP } = await loadBuild();
    const { root, put, ran } = miniature();
    expect(await ran()).toBe('sources token --help'); // never built
    put(`dist/${STAMP}`, JSON.stringify({ fingerprint: sourceFingerprint(root) }));
    expect(await ran()).toBe('dist token --help');
    expect(await ran({ GATEWAY_CLI_SOURCES: '1' })).toBe('sources token --help');
    put('gateway/new.ts', 'export {};\n'); // a source added since the build
    expect(await ran()).toBe('sources token --help');
    rmSync(join(root, 'gateway', 'new.ts'));
    expect(await ran()).toBe('dist token --help');
    rmSync(join(root, 'dist', 'gateway', 'cli.js')); // a build moved in halfway
    expect(await ran()).toBe('sources token --help');
  });
});
