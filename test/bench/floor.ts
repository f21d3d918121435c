/**
 * The machine's own floor under (c): what a durable write and a bare loopback round trip cost at
 * the same moderate rate, with no gateway, HTTP or Node stream in them. The gateway's added
 * latency holds at least one of each (the audit commit's fsync; the extra hop client → gateway →
 * client), so these say how much of (c) the machine itself takes.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { percentile } from './paced.ts';

export interface Floor { p50: number; p99: number }

const summary = (xs: number[]): Floor => {
  xs.sort((a, b) => a - b);
  return { p50: percentile(xs, 50), p99: percentile(xs, 99) };
};

/** Calls `op` `amount` times, one every 1/rate seconds, and times each call. */
async function paced(rate: number, amount: number, op: () => Promise<void> | void): Promise<number[]> {
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < amount; i++) {
    const wait = start + i * (1000 / rate) - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = performance.now();
    await op();
    times.push(performance.now() - t);
  }
  return times;
}

/** A 16 KB append and fdatasync, as a WAL commit of a few pages does, in `dir` (the gateway's data directory's file system). */
export async function durableWriteFloor(dir: string, rate: number, amount: number): Promise<Floor> {
  const file = join(dir, 'floor-probe.bin');
  const fd = openSync(file, 'w');
  const page = Buffer.alloc(16 * 1024, 0x5a);
  let offset = 0;
  try {
    return summary(await paced(rate, amount, () => {
      writeSync(fd, page, 0, page.length, offset);
      offset += page.length;
      fdatasyncSync(fd);
    }));
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

/** One byte to a TCP echo server in another process and back. */
export async function loopbackFloor(rate: number, amount: number): Promise<Floor> {
  const echo = spawn(process.execPath, ['-e', `require('net').createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      echo.once('exit', (code) => reject(new Error(`echo server exited (${code})`)));
      echo.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    });
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const times = await paced(rate, amount, () => new Promise<void>((resolve) => {
      socket.once('data', () => resolve());
      socket.write('x');
    }));
    socket.destroy();
    return summary(times);
  } finally {
    echo.kill();
  }
}

/**
 * The cryptography every request needs and no pass-through does: verifying the client's ES256
 * assertion and signing the answer, with node:crypto as the gateway calls it (raw r||s
 * signatures), over inputs of the gateway's sizes. CPU milliseconds per request.
 */
export function signatureFloor(requests = 4_000): number {
  const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const gateway = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const assertion = Buffer.alloc(420, 0x61);
  const answer = Buffer.alloc(900, 0x62);
  const assertionSignature = cryptoSign('sha256', assertion, { key: client.privateKey, dsaEncoding: 'ieee-p1363' });
  const started = process.cpuUsage();
  for (let i = 0; i < requests; i++) {
    if (!cryptoVerify('sha256', assertion, { key: client.publicKey, dsaEncoding: 'ieee-p1363' }, assertionSignature)) throw new Error('verify failed');
    cryptoSign('sha256', answer, { key: gateway.privateKey, dsaEncoding: 'ieee-p1363' });
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / 1000 / requests;
}
