import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { ConsoleAccount } from '../config/types.ts';
import type { FailureLog, SessionStorage } from '../shared-state.ts';
import { GatewayError } from '../errors.ts';
import type { Authenticated, Inbound } from '../pipeline/index.ts';

const scryptAsync = (password: string, salt: Buffer, length: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scrypt(password, salt, length, options, (e, key) => (e ? reject(e) : resolve(key))));

/** A hash of a password nobody has, checked for unknown usernames so timing does not tell which accounts exist. */
const DUMMY_HASH = `scrypt$16384$8$1$${Buffer.alloc(16).toString('base64url')}$${Buffer.alloc(32).toString('base64url')}`;

/** Checks a password against `scrypt$N$r$p$salt$hash` (see hashPassword) in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (![N, r, p].every(Number.isSafeInteger) || expected.length === 0) return false;
  const actual = await scryptAsync(password.normalize('NFC'), salt, expected.length, { N, r, p, maxmem: 256 * N * r });
  return timingSafeEqual(actual, expected);
}

/** The account whose password matches, or null; an unknown username costs the same scrypt as a known one. */
export async function signIn(accounts: readonly ConsoleAccount[], username: string, password: string): Promise<ConsoleAccount | null> {
  const account = accounts.find((a) => a.username === username);
  const ok = await verifyPassword(password, account?.passwordHash ?? DUMMY_HASH);
  return ok && account ? account : null;
}

export interface Session { id: string; username: string; displayName: string; expiresAt: number }

/**
 * Server-side sessions: the cookie holds only a random id; the session lives in the shared state,
 * so with Redis every instance behind a load balancer knows it (no sticky sessions needed).
 */
export class SessionStore {
  readonly #storage: SessionStorage;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(storage: SessionStorage, ttlSeconds: number, now: () => number) {
    this.#storage = storage;
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
  }

  async create(account: ConsoleAccount): Promise<Session> {
    const session = { id: randomBytes(32).toString('base64url'), username: account.username, displayName: account.displayName ?? account.username, expiresAt: this.#now() + this.#ttlMs };
    await this.#storage.put(session.id, { username: session.username, displayName: session.displayName, expiresAt: session.expiresAt });
    return session;
  }

  async get(id: string | undefined): Promise<Session | null> {
    if (!id) return null;
    const s = await this.#storage.get(id);
    return s ? { id, ...s } : null;
  }

  async delete(id: string | undefined): Promise<void> {
    if (id) await this.#storage.delete(id);
  }
}

/** How many failed sign-ins a window holds before further attempts are refused (`console.signInLimits`). */
export interface SignInLimits { windowSeconds: number; perUsername: number; perAddress: number; total: number }

/**
 * Failed console sign-ins in a sliding window, counted in the shared state (so across every
 * instance) three ways: per username across all addresses (one account tried from many
 * machines), per address across all usernames (password spraying from one machine), and in
 * total (a distributed spray). Past any limit, attempts are refused before the password is even
 * checked, until the oldest failure of that count leaves the window. Usernames that do not exist
 * are counted like those that do, so the answer does not tell which exist.
 */
export class LoginLimiter {
  readonly #failures: FailureLog;
  readonly #limits: SignInLimits;
  readonly #now: () => number;

  constructor(failures: FailureLog, limits: SignInLimits, now: () => number) {
    this.#failures = failures;
    this.#limits = limits;
    this.#now = now;
  }

  #counts(username: string, address: string): [key: string, max: number][] {
    return [[`user\u0000${username}`, this.#limits.perUsername], [`addr\u0000${address}`, this.#limits.perAddress], ['all', this.#limits.total]];
  }

  /** Seconds to wait before another attempt (the longest of the limits reached), or 0 when one is allowed. */
  async retryAfter(username: string, address: string): Promise<number> {
    const windowMs = this.#limits.windowSeconds * 1000;
    const waits = await Promise.all(this.#counts(username, address).map(async ([key, max]) => {
      const recent = await this.#failures.recent(key, windowMs);
      // The failure that has to leave the window for the count to drop below the limit.
      return recent.length < max ? 0 : Math.max(1, Math.ceil((recent[recent.length - max]! + windowMs - this.#now()) / 1000));
    }));
    return Math.max(...waits);
  }

  async fail(username: string, address: string): Promise<void> {
    const windowMs = this.#limits.windowSeconds * 1000;
    await Promise.all(this.#counts(username, address).map(([key]) => this.#failures.record(key, windowMs)));
  }
}

/** Console reads' requests a minute per signed-in auditor (the same limiter as client agencies'). */
const CONSOLE_RATE_PER_MINUTE = 600;

/**
 * Authenticates a console read by its session cookie, for the request pipeline: the signed-in
 * auditor is the caller `console:<username>` (the audit record's client), the username its
 * `user_id`. No session: AUTH_MISSING, logged and counted like any failed authentication.
 */
export function sessionAuthenticator(sessions: SessionStore, now: () => number, accounts?: readonly ConsoleAccount[]) {
  return async (inbound: Inbound): Promise<Authenticated> => {
    const session = await sessions.get(inbound.session);
    if (!session) throw new GatewayError('AUTH_MISSING', 'sign in to the console');
    // An account removed from the config (a reload) ends its sessions at once, as a removed client's access does.
    if (accounts && !accounts.some((a) => a.username === session.username)) throw new GatewayError('AUTH_MISSING', 'sign in to the console');
    const id = `console:${session.username}`;
    const t = Math.floor(now() / 1000);
    return {
      client: { id, name: session.displayName, keys: {}, rateLimitPerMinute: CONSOLE_RATE_PER_MINUTE, encryptResponses: false },
      claims: { iss: id, jti: 'console-session', iat: t, exp: Math.floor(session.expiresAt / 1000), user_id: session.username, body_sha256: '' },
    };
  };
}
