import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { ConsoleAccount } from '../config/types.ts';

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
 * Server-side sessions: the cookie holds only a random id. Sessions live in this process, so
 * several instances behind a load balancer need sticky sessions for the console.
 */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlSeconds: number, now: () => number) {
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
  }

  create(account: ConsoleAccount): Session {
    this.#sweep();
    const session = { id: randomBytes(32).toString('base64url'), username: account.username, displayName: account.displayName ?? account.username, expiresAt: this.#now() + this.#ttlMs };
    this.#sessions.set(session.id, session);
    return session;
  }

  get(id: string | undefined): Session | null {
    if (!id) return null;
    const s = this.#sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return null;
    }
    return s;
  }

  delete(id: string | undefined): void {
    if (id) this.#sessions.delete(id);
  }

  #sweep(): void {
    const t = this.#now();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= t) this.#sessions.delete(id);
  }
}

/**
 * Failed sign-ins per username and IP in a sliding window: past `max`, further attempts are
 * refused before the password is even checked, until the oldest failure leaves the window.
 */
export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(now: () => number, max = 5, windowMs = 60_000) {
    this.#now = now;
    this.#max = max;
    this.#windowMs = windowMs;
  }

  /** Seconds to wait before another attempt, or 0 when one is allowed. */
  retryAfter(key: string): number {
    const recent = this.#recent(key);
    if (recent.length < this.#max) return 0;
    return Math.max(1, Math.ceil((recent[0]! + this.#windowMs - this.#now()) / 1000));
  }

  fail(key: string): void {
    const recent = this.#recent(key);
    recent.push(this.#now());
    this.#failures.set(key, recent);
    // Bounded memory under a spray of usernames: forget the oldest keys.
    if (this.#failures.size > 10_000) this.#failures.delete(this.#failures.keys().next().value!);
  }

  #recent(key: string): number[] {
    const since = this.#now() - this.#windowMs;
    const recent = (this.#failures.get(key) ?? []).filter((t) => t > since);
    if (recent.length) this.#failures.set(key, recent);
    else this.#failures.delete(key);
    return recent;
  }
}
