/**
 * An open-loop load at a fixed rate: request i is due at start + i / rate, whatever happened to
 * the earlier ones, and its latency counts from when it was due (so a slow answer cannot delay
 * the next request and hide its own cost: no coordinated omission). autocannon's `overallRate`
 * cannot measure this: each of its connections sends its whole per-second quota back to back and
 * then waits for the next second, so "500 req/s" arrives as bursts at full speed, and the
 * latency it reports is that of a saturating burst.
 */
import http from 'node:http';

export interface PacedResult { requestsPerSecond: number; p50: number; p99: number; ok: number; other: number; errors: number; maxLateMs: number }

/** The p-th percentile of an ascending list (NaN when empty). */
export const percentile = (sorted: number[], p: number): number => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;

/** `url` may name several servers: the requests go to each in turn. */
export function pacedLoad(url: string | string[], path: string, rate: number, amount: number, next: () => { body: string; headers: Record<string, string> }): Promise<PacedResult> {
  const targets = (Array.isArray(url) ? url : [url]).map((u) => new URL(path, u));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const interval = 1000 / rate;
  const latencies: number[] = [];
  let ok = 0;
  let other = 0;
  let errors = 0;
  let sent = 0;
  let done = 0;
  let maxLateMs = 0;
  return new Promise((resolve) => {
    const start = performance.now() + 5;
    const finish = () => {
      agent.destroy();
      latencies.sort((a, b) => a - b);
      resolve({ requestsPerSecond: ok / ((performance.now() - start) / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99), ok, other, errors, maxLateMs });
    };
    const fire = (due: number) => {
      const { body, headers } = next();
      maxLateMs = Math.max(maxLateMs, performance.now() - due);
      const req = http.request(targets[sent % targets.length]!, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) {
            ok++;
            latencies.push(performance.now() - due);
          } else other++;
          if (++done === amount) finish();
        });
      });
      req.on('error', () => {
        errors++;
        if (++done === amount) finish();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < amount && start + sent * interval <= now) fire(start + sent++ * interval);
      if (sent < amount) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
}
