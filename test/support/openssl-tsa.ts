/**
 * An independent time-stamping authority for the tests: OpenSSL's own TSA (`openssl ts -reply`)
 * behind a small node:http server. Each TSA gets its own CA and TSA certificate, made here with
 * openssl (RSA 2048; the TSA certificate with extendedKeyUsage critical timeStamping, signed by
 * the CA). A request's DER goes to `openssl ts -reply -queryfile … -config …` as it arrived, and
 * the reply goes back as application/timestamp-reply. Nothing of the gateway's code makes or
 * checks these tokens.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const openssl = (args: string[], cwd: string) => run('openssl', args, { cwd, timeout: 30_000 });

export interface OpensslTsa {
  /** http://127.0.0.1:PORT/tsa */
  url: string;
  /** The TSA's certificate (PEM): what the gateway's config names. */
  certFile: string;
  /** The CA that issued it (PEM), for `openssl ts -verify`. */
  caFile: string;
  dir: string;
  /** Replies served, and requests that reached the server while it answered with an error. */
  readonly served: number;
  readonly refused: number;
  /** Stops listening: connections are refused, as with an authority that is down. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Answers every request with this HTTP status instead of a reply (null: reply again). */
  failWith(status: number | null): void;
  /** Checks a token with `openssl ts -verify` against the data stamped; resolves with openssl's output. */
  opensslVerify(token: Uint8Array, data: Uint8Array): Promise<string>;
  close(): Promise<void>;
}

const EXTENSIONS = `
[ req ]
distinguished_name = dn
[ dn ]
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ tsa_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** The `ts` section of openssl's config: this TSA's key, certificate, policy and precision. */
const tsConfig = (dir: string) => `
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = ${dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
clock_precision_digits = 3
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`;

/** Makes a CA and a TSA certificate under `dir` with openssl. */
async function makeCertificates(dir: string, name: string) {
  writeFileSync(join(dir, 'ext.cnf'), EXTENSIONS);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', `/CN=${name} test CA`, '-extensions', 'ca_ext', '-config', 'ext.cnf'], dir);
  await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tsa.key', '-out', 'tsa.csr', '-subj', `/CN=${name} test TSA`], dir);
  await openssl(['x509', '-req', '-in', 'tsa.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x1001', '-days', '30', '-out', 'tsa.crt', '-extfile', 'ext.cnf', '-extensions', 'tsa_ext'], dir);
  writeFileSync(join(dir, 'serial'), '01\n');
  writeFileSync(join(dir, 'ts.cnf'), tsConfig(dir));
}

const body = (req: IncomingMessage) => new Promise<Buffer>((resolve, reject) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => resolve(Buffer.concat(chunks)));
  req.on('error', reject);
});

/** Starts an OpenSSL TSA on a loopback port. `name` tells two of them apart in their certificates. */
export async function startOpensslTsa(name = 'gateway'): Promise<OpensslTsa> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-tsa-'));
  await makeCertificates(dir, name);
  let served = 0;
  let refused = 0;
  let failing: number | null = null;
  let n = 0;
  // openssl increments its serial file: one reply at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const reply = (query: Buffer) => {
    const id = ++n;
    const next = queue.then(async () => {
      const q = join(dir, `q${id}.tsq`);
      const r = join(dir, `r${id}.tsr`);
      writeFileSync(q, query);
      await openssl(['ts', '-reply', '-config', 'ts.cnf', '-queryfile', q, '-out', r], dir);
      const der = readFileSync(r);
      rmSync(q);
      rmSync(r);
      return der;
    });
    queue = next.catch(() => {});
    return next;
  };
  const server: Server = createServer(async (req, res) => {
    const query = await body(req);
    if (failing !== null) {
      refused++;
      res.writeHead(failing).end();
      return;
    }
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/timestamp-query') {
      res.writeHead(400).end();
      return;
    }
    try {
      const der = await reply(query);
      served++;
      res.writeHead(200, { 'Content-Type': 'application/timestamp-reply', 'Content-Length': der.length }).end(der);
    } catch {
      res.writeHead(500).end();
    }
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const stop = () => new Promise<void>((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return {
    url: `http://127.0.0.1:${port}/tsa`,
    certFile: join(dir, 'tsa.crt'),
    caFile: join(dir, 'ca.crt'),
    dir,
    get served() { return served; },
    get refused() { return refused; },
    stop,
    start: () => listen(port),
    failWith(status) { failing = status; },
    async opensslVerify(token, data) {
      const id = ++n;
      writeFileSync(join(dir, `v${id}.tok`), token);
      writeFileSync(join(dir, `v${id}.dat`), data);
      const { stdout } = await openssl(['ts', '-verify', '-in', `v${id}.tok`, '-token_in', '-data', `v${id}.dat`, '-CAfile', 'ca.crt', '-untrusted', 'tsa.crt'], dir);
      return stdout;
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
