import type { Step } from './types.ts';

/**
 * Data leaves only while the log is anchored: with `audit.timestamping.maxLagSeconds` set and a
 * checkpoint waiting longer than that for a time-stamp, a data request is AUDIT_ANCHOR_LAG
 * (audited, like any refusal). Audit, citizen, console and discovery reads go on, so the lag can be
 * seen and mended.
 */
export const requireAnchoring: Step = (x) => {
  if (x.op!.contract) x.deps.anchoring?.admit();
};
