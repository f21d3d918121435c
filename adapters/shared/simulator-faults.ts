import type { NextFunction, Request, Response } from 'express';
import { seededRandom } from './seeded-random.ts';

/** Faults a simulator can stage, from its options or the environment. */
export interface SimulatorFaults {
  /** Added to every answer. */
  latencyMs?: number;
  /** Share of requests (0–1) that fail in `faultMode`. */
  failureRate?: number;
  /** error: the upstream's own 5xx; timeout: never answers; malformed: a garbage body. */
  faultMode?: 'error' | 'timeout' | 'malformed';
  /** Seed of the fault sequence, so a run is repeatable. */
  seed?: number;
}


/**
 * Express middleware staging latency and faults before a simulator's routes. `onError` writes
 * the upstream's own error shape; health routes (`skip`) are never faulted.
 */
export function faultInjector(faults: SimulatorFaults, onError: (res: Response) => void, skip: (req: Request) => boolean = () => false) {
  const rand = seededRandom(faults.seed ?? 7);
  return (req: Request, res: Response, next: NextFunction) => {
    if (skip(req)) return next();
    const fail = (faults.failureRate ?? 0) > 0 && rand() < faults.failureRate!;
    const go = () => {
      if (!fail) return next();
      switch (faults.faultMode ?? 'error') {
        case 'timeout':
          return; // the connection stays open; the caller's timeout decides
        case 'malformed':
          res.status(200).type('application/json').send('{"garbage": tru');
          return;
        default:
          onError(res);
      }
    };
    if (faults.latencyMs) setTimeout(go, faults.latencyMs);
    else go();
  };
}
