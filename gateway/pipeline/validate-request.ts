import { GatewayError } from '../errors.ts';
import { describeSchemaError } from '../contracts.ts';
import type { Step } from './types.ts';

/** The request against its contract's JSON Schema (operations without a contract take no body). */
export const validateRequest: Step = (x) => {
  const contract = x.op!.contract;
  if (contract && !contract.validateRequest(x.body)) throw new GatewayError('REQUEST_INVALID', describeSchemaError(contract.validateRequest.errors));
};
