import { GatewayError } from '../errors.ts';
import type { Step } from './types.ts';

/** Finds what the caller asked for: SERVICE_UNKNOWN for a service or version nobody offers; a body that is not JSON is refused here. */
export const resolveOperation: Step = (x) => {
  x.op = x.resolve(x.auth!);
  if (x.bodyError) throw x.bodyError;
  if (!x.op) throw new GatewayError('SERVICE_UNKNOWN', `no service ${x.inbound.requestedService} v${x.inbound.requestedVersion ?? '?'}`);
};
