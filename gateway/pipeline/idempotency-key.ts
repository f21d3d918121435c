import { GatewayError } from '../errors.ts';
import type { Step } from './types.ts';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;

/** A write needs an Idempotency-Key, so a retry gets the first answer instead of writing twice. */
export const requireIdempotencyKey: Step = (x) => {
  if (!x.op!.write) return;
  const key = x.inbound.idempotencyKey;
  if (!key) throw new GatewayError('IDEMPOTENCY_KEY_REQUIRED', 'send an Idempotency-Key header');
  if (!IDEMPOTENCY_KEY.test(key)) throw new GatewayError('REQUEST_INVALID', 'Idempotency-Key must be 8 to 128 characters of [A-Za-z0-9._:-]');
  x.idempotencyKey = key;
};
