/**
 * Bench reference: the least a Node gateway can be. A node:http server that forwards each POST
 * to one upstream on a keep-alive agent and returns its answer, with no authentication, policy,
 * validation, audit or signing. With `durable`, each answer also waits for a small record to be
 * appended to a journal and fdatasync'd (journal.ts: the records that arrive while one flush is
 * pending share it), which is the least an audit that is durable before release can cost. Their
 * throughput and added latency are what the runtime and this machine leave for any gateway.
 *
 * Usage: node --import tsx test/bench/pass-through.ts UPSTREAM_URL [durable DIR]; prints its URL.
 */
import http from 'node:http';
import { join } from 'node:path';
import { journal } from './journal.ts';

const [upstream, mode, dir] = process.argv.slice(2);
if (!upstream || (mode !== undefined && mode !== 'durable')) throw new Error('usage: pass-through.ts UPSTREAM_URL [durable DIR]');
const target = new URL(upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const append = mode === 'durable' ? journal(join(dir ?? '.', 'pass-through.journal')) : null;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const out = http.request({ host: target.hostname, port: target.port, path: req.url, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (up) => {
      const answer: Buffer[] = [];
      up.on('data', (c: Buffer) => answer.push(c));
      up.on('end', async () => {
        const payload = Buffer.concat(answer);
        if (append) await append(Buffer.from(`${Date.now()} ${req.url} ${up.statusCode} ${payload.length}\n`));
        res.writeHead(up.statusCode ?? 502, { 'content-type': 'application/json', 'content-length': payload.length });
        res.end(payload);
      });
    });
    out.on('error', () => res.writeHead(502).end());
    out.end(body);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${(server.address() as { port: number }).port}\n`));
