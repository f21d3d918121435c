import { GatewayError } from '../errors.ts';
import type { Step } from './types.ts';

/**
 * Parses the body as strict JSON; an empty body is `undefined`, left to the contract to refuse.
 * Malformed JSON is kept, not thrown: it is refused once the caller is known (so the refusal is
 * audited), or reported in place of a failed authentication, as any JSON API would.
 */
export const parseBody: Step = (x) => {
  const raw = x.inbound.rawBody;
  if (raw.length === 0) return;
  try {
    x.body = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'));
  } catch {
    x.bodyError = new GatewayError('REQUEST_INVALID', 'body is not valid JSON');
  }
};
