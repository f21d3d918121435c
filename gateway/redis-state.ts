import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { SharedState, StoredSession } from './shared-state.ts';
import { GatewayError } from './errors.ts';

/** Redis could not answer; the request that needed it is refused (fail closed), never let through. */
export class SharedStateUnavailableError extends GatewayError {
  constructor(operation: string, cause: unknown) {
    super('SHARED_STATE_UNAVAILABLE', `shared state (redis) unavailable during ${operation}`, { cause });
    this.name = 'SharedStateUnavailableError';
  }
}

/**
 * A fixed window that starts at the client's first request: INCR and the expiry in one script, so
 * a crash between them cannot leave a counter that never resets. Returns [count, ms to reset].
 */
const HIT_WINDOW = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;

/**
 * Records a jti with this attempt's own nonce: 1 when it was new, or already holds this nonce (a
 * command ioredis re-sent after the connection dropped, whose first send did reach Redis); 0 for
 * a replay. Without the nonce, a re-sent SET NX would find its own first write and refuse a
 * legitimate request as replayed.
 */
const CONSUME_ONCE = `
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 1 end
return 0`;

const WINDOW_MS = 60_000;

type WithHitWindow = Redis & {
  hitWindow(key: string, windowMs: number): Promise<[number, number]>;
  consumeOnce(key: string, nonce: string, ttlSeconds: number): Promise<number>;
};

/** Runs a Redis command, turning any failure into SharedStateUnavailableError. */
async function guarded<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw new SharedStateUnavailableError(operation, e);
  }
}

/** Session ids and sign-in keys (username and address) are stored hashed: a copy of Redis holds no usable cookie and no username. */
const hashed = (value: string) => createHash('sha256').update(value).digest('base64url');

/**
 * Shared state for several gateway instances: single-use `jti`s (set once, with an expiry), per-client rate
 * limits, console sessions (`SET PX` until they expire) and failed console sign-ins (a sorted set
 * of times per key) in Redis. Commands are not queued while disconnected and time out, so an
 * outage refuses requests at once instead of letting replays through or hanging them.
 */
export interface RedisStateOptions {
  url: string;
  keyPrefix?: string;
  /** Default 3000. */
  connectTimeoutMs?: number;
  /** A command unanswered by then fails (default 2000): a stalled Redis refuses requests, it never hangs them. */
  commandTimeoutMs?: number;
  now?: () => number;
}

export async function createRedisState({ url, keyPrefix = 'gw:', connectTimeoutMs = 3000, commandTimeoutMs = 2000, now = () => Date.now() }: RedisStateOptions): Promise<SharedState> {
  const redis = new Redis(url, {
    keyPrefix,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    // A peer that vanished without a FIN is found while idle too.
    keepAlive: 10_000,
  }) as WithHitWindow;
  // Connection errors also reject the command that needed Redis; without a listener ioredis would
  // print every reconnect failure to stderr.
  redis.on('error', () => {});
  redis.defineCommand('hitWindow', { numberOfKeys: 1, lua: HIT_WINDOW });
  redis.defineCommand('consumeOnce', { numberOfKeys: 1, lua: CONSUME_ONCE });
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new SharedStateUnavailableError('connect', e);
  }

  return {
    kind: 'redis',
    replay: {
      async consume(key, ttlSeconds) {
        const nonce = randomBytes(9).toString('base64url');
        return (await guarded('replay check', () => redis.consumeOnce(`replay:${key}`, nonce, Math.max(1, Math.ceil(ttlSeconds))))) === 1;
      },
    },
    rateLimiter: {
      async hit(clientId, perMinute) {
        const [count, ttlMs] = await guarded('rate limit', () => redis.hitWindow(`rate:${clientId}`, WINDOW_MS));
        return { allowed: count <= perMinute, retryAfterSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) };
      },
    },
    sessions: {
      async put(id, session) {
        const ttlMs = Math.max(1, Math.ceil(session.expiresAt - now()));
        await guarded('session write', () => redis.set(`session:${hashed(id)}`, JSON.stringify(session), 'PX', ttlMs));
      },
      async get(id) {
        const raw = await guarded('session read', () => redis.get(`session:${hashed(id)}`));
        if (raw === null) return null;
        const session = JSON.parse(raw) as StoredSession;
        return session.expiresAt > now() ? session : null;
      },
      async delete(id) {
        await guarded('session delete', () => redis.del(`session:${hashed(id)}`));
      },
    },
    signInFailures: {
      async record(key, windowMs) {
        const t = now();
        const k = `signin:${hashed(key)}`;
        await guarded('sign-in failure', () => redis.multi()
          .zadd(k, t, `${t}:${randomBytes(6).toString('base64url')}`)
          .zremrangebyscore(k, '-inf', t - windowMs)
          .pexpire(k, windowMs)
          .exec());
      },
      async recent(key, windowMs) {
        const k = `signin:${hashed(key)}`;
        const since = now() - windowMs;
        const members = await guarded('sign-in failures', () => redis.zrangebyscore(k, `(${since}`, '+inf', 'WITHSCORES'));
        const times: number[] = [];
        for (let i = 1; i < members.length; i += 2) times.push(Number(members[i]));
        return times;
      },
    },
    async ping() {
      await guarded('ping', () => redis.ping());
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
