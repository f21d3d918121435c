/**
 * State that gateway instances must share: single-use assertion ids, per-client rate limits, and
 * the console's sessions and failed sign-ins. In memory for one instance; Redis (see
 * redis-state.ts) when several run behind a load balancer.
 */
export interface ReplayGuard {
  /** Records `key` until `ttlSeconds` pass; false when it was already recorded (a replay). */
  consume(key: string, ttlSeconds: number): Promise<boolean>;
}

export interface RateLimiter {
  /** Counts one request; when over `perMinute`, says how many seconds until the window resets. */
  hit(clientId: string, perMinute: number): Promise<{ allowed: boolean; retryAfterSeconds: number }>;
}

/** What a console session holds; the session id itself is the key. */
export interface StoredSession { username: string; displayName: string; expiresAt: number }

export interface SessionStorage {
  /** Keeps `session` under `id` until its `expiresAt`. */
  put(id: string, session: StoredSession): Promise<void>;
  /** The session, or null when unknown or expired. */
  get(id: string): Promise<StoredSession | null>;
  delete(id: string): Promise<void>;
}

/** Failed attempts per key in a sliding window (console sign-ins per username and address). */
export interface FailureLog {
  /** Records one failure now. */
  record(key: string, windowMs: number): Promise<void>;
  /** The times (ms) of the failures within the last `windowMs`, oldest first. */
  recent(key: string, windowMs: number): Promise<number[]>;
}

export interface SharedState {
  replay: ReplayGuard;
  rateLimiter: RateLimiter;
  sessions: SessionStorage;
  signInFailures: FailureLog;
  kind: 'memory' | 'redis';
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createMemoryState(now = () => Date.now()): SharedState {
  const seen = new Map<string, number>();
  const windows = new Map<string, { start: number; count: number }>();
  const sessions = new Map<string, StoredSession>();
  const failures = new Map<string, number[]>();
  let lastSweep = now();
  const sweep = (t: number) => {
    if (t - lastSweep < 10_000) return;
    lastSweep = t;
    for (const [k, exp] of seen) if (exp <= t) seen.delete(k);
    for (const [k, w] of windows) if (w.start + 60_000 <= t) windows.delete(k);
    for (const [k, s] of sessions) if (s.expiresAt <= t) sessions.delete(k);
  };
  const recentFailures = (key: string, windowMs: number) => {
    const since = now() - windowMs;
    const recent = (failures.get(key) ?? []).filter((t) => t > since);
    if (recent.length) failures.set(key, recent);
    else failures.delete(key);
    return recent;
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
    sessions: {
      async put(id, session) {
        sweep(now());
        sessions.set(id, session);
      },
      async get(id) {
        const s = sessions.get(id);
        if (!s) return null;
        if (s.expiresAt > now()) return s;
        sessions.delete(id);
        return null;
      },
      async delete(id) {
        sessions.delete(id);
      },
    },
    signInFailures: {
      async record(key, windowMs) {
        failures.set(key, [...recentFailures(key, windowMs), now()]);
        // Bounded memory under a spray of usernames: forget the oldest keys.
        if (failures.size > 10_000) failures.delete(failures.keys().next().value!);
      },
      async recent(key, windowMs) {
        return recentFailures(key, windowMs);
      },
    },
    async ping() {},
    async close() {},
  };
}
