import { GatewayError } from '../errors.ts';
import { describeSchemaError } from '../contracts.ts';
import type { Step } from './types.ts';

/** An answer outside the contract is never released: UPSTREAM_BAD_RESPONSE (details to the log, not the client). */
export const validateResponse: Step = (x) => {
  const contract = x.op!.contract;
  if (!contract || contract.validateResponse(x.result!.body)) return;
  const { service, version } = contract.meta;
  throw new GatewayError('UPSTREAM_BAD_RESPONSE', `answer outside ${service} v${version}: ${describeSchemaError(contract.validateResponse.errors)}`);
};
