import { GatewayError } from '../errors.ts';
import type { Step } from './types.ts';

/** Per-client requests a minute (shared by every instance through Redis); RATE_LIMITED with Retry-After past it. */
export const rateLimit: Step = async (x) => {
  const { client } = x.auth!;
  const limit = await x.deps.rateLimiter.hit(client.id, client.rateLimitPerMinute);
  if (!limit.allowed) {
    throw new GatewayError('RATE_LIMITED', `over ${client.rateLimitPerMinute} requests a minute`, { headers: { 'Retry-After': String(limit.retryAfterSeconds) } });
  }
};
