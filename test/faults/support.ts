/** What the fault tests share: a load of concurrent callers and a poll that waits for a state. */
import { world } from '../../adapters/world/index.ts';
import type { TestGateway } from '../support/fixtures.ts';
import { eventually as poll } from '../support/eventually.ts';

export interface Answer { status: number; code: string | null; requestId: string | null; ms: number }

/** One identity lookup, as a portal makes it; what came back, and how long it took. */
export async function lookUp(gw: TestGateway, i = 0): Promise<Answer> {
  const citizens = world().citizens;
  const started = performance.now();
  const res = await gw.call('population.identity', { personalId: citizens[i % citizens.length]!.personalId });
  const body = (await res.json()) as { code?: string };
  return { status: res.status, code: body.code ?? null, requestId: res.headers.get('x-request-id'), ms: performance.now() - started };
}

/** `callers` loops of lookUp until `until()` says stop; every answer, in order of arrival. */
export async function underLoad(gw: TestGateway, callers: number, until: () => boolean): Promise<Answer[]> {
  const answers: Answer[] = [];
  await Promise.all(Array.from({ length: callers }, async (_, c) => {
    for (let i = c; !until(); i += callers) answers.push(await lookUp(gw, i));
  }));
  return answers;
}

/**
 * Polls `check` every 100 ms until it returns true, or fails after `timeoutMs` naming `what`;
 * resolves with how long that took. Built on the shared poll (test/support/eventually.ts).
 */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = performance.now();
  await poll(async () => {
    if (!(await check())) throw new Error(`not within ${timeoutMs} ms: ${what}`);
  }, { timeoutMs, intervalMs: 100 });
  return performance.now() - started;
}

export const readiness = async (gw: TestGateway) => {
  const res = await fetch(`${gw.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
};

export const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
