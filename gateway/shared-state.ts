/**
 * State that gateway instances must share: single-use assertion ids and per-client rate limits.
 * In memory for one instance; Redis (see redis-state.ts) when several run behind a load balancer.
 */
export interface ReplayGuard {
  /** Records `key` until `ttlSeconds` pass; false when it was already recorded (a replay). */
  consume(key: string, ttlSeconds: number): Promise<boolean>;
}

export interface RateLimiter {
  /** Counts one request; when over `perMinute`, says how many seconds until the window resets. */
  hit(clientId: string, perMinute: number): Promise<{ allowed: boolean; retryAfterSeconds: number }>;
}

export interface SharedState {
  replay: ReplayGuard;
  rateLimiter: RateLimiter;
  kind: 'memory' | 'redis';
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createMemoryState(now = () => Date.now()): SharedState {
  const seen = new Map<string, number>();
  const windows = new Map<string, { start: number; count: number }>();
  let lastSweep = now();
  const sweep = (t: number) => {
    if (t - lastSweep < 10_000) return;
    lastSweep = t;
    for (const [k, exp] of seen) if (exp <= t) seen.delete(k);
    for (const [k, w] of windows) if (w.start + 60_000 <= t) windows.delete(k);
  };
  return {
    kind: 'memory',
    replay: {
      async consume(key, ttlSeconds) {
        const t = now();
        sweep(t);
        const exp = seen.get(key);
        if (exp !== undefined && exp > t) return false;
        seen.set(key, t + ttlSeconds * 1000);
        return true;
      },
    },
    rateLimiter: {
      async hit(clientId, perMinute) {
        const t = now();
        const windowStart = t - (t % 60_000);
        let w = windows.get(clientId);
        if (!w || w.start !== windowStart) windows.set(clientId, (w = { start: windowStart, count: 0 }));
        w.count++;
        return { allowed: w.count <= perMinute, retryAfterSeconds: Math.max(1, Math.ceil((windowStart + 60_000 - t) / 1000)) };
      },
    },
    async ping() {},
    async close() {},
  };
}
