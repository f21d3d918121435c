/**
 * Polling instead of sleeping: a test waits for the condition it needs, not for a guess at how
 * long that takes. The timers are taken when this module loads, so a test that fakes `Date` or
 * `setTimeout` afterwards (vi.useFakeTimers) does not stop the poll from advancing.
 */
const realSetTimeout = globalThis.setTimeout;
const realNow = performance.now.bind(performance);

export interface EventuallyOptions {
  /** How long to keep trying before giving up (default 5000 ms). */
  timeoutMs?: number;
  /** The pause between two tries (default 20 ms). */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns (or resolves) without throwing, and gives back its value. An
 * `expect` inside `check` is the usual condition. After `timeoutMs` the last error is thrown, so
 * a failure reads as the assertion that did not come true.
 */
export async function eventually<T>(check: () => T | Promise<T>, { timeoutMs = 5000, intervalMs = 20 }: EventuallyOptions = {}): Promise<T> {
  const deadline = realNow() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (realNow() >= deadline) throw e;
    }
    await new Promise((resolve) => realSetTimeout(resolve, Math.max(0, Math.min(intervalMs, deadline - realNow()))));
  }
}
