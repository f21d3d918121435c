import type { Authorized, Step } from './types.ts';

/** Runs the operation: a handler (an adapter call or a composite), discovery, an audit or console read. */
export const handle: Step = async (x) => {
  x.result = await x.op!.run(x as Authorized);
};
