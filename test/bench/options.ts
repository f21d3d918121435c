/**
 * (i) What an option of the request path costs: the same gateway with it off and on, started side
 * by side and driven in alternating rounds (so a slow spell of the machine weighs on both), with
 * throughput and CPU per request (every thread) from a closed loop, and added latency at a fixed
 * rate. Each option is one entry of the bench's table: encryption to the client, outside
 * time-stamps and archiving of the audit log, a federated hop.
 */
import { cpuSeconds, type Child } from './processes.ts';
import type { PacedResult } from './paced.ts';

export interface OnOffRound { rps: number; cpuMs: number; p50: number; p99: number }
export interface OnOffResult { off: OnOffRound; on: OnOffRound; rounds: { off: OnOffRound; on: OnOffRound }[] }

export interface OnOffDriver {
  /** A closed loop of `amount` requests; resolves with answered requests per second and how many were answered. */
  closedLoop(url: string, amount: number): Promise<{ requestsPerSecond: number; ok: number }>;
  /** An open loop at the bench's fixed rate. */
  paced(url: string): Promise<PacedResult>;
  requests: number;
  rounds: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(gateway: Child, d: OnOffDriver): Promise<OnOffRound> {
  const before = cpuSeconds(gateway.pid) ?? 0;
  const loop = await d.closedLoop(gateway.url, d.requests);
  const cpuMs = (1000 * ((cpuSeconds(gateway.pid) ?? 0) - before)) / Math.max(1, loop.ok);
  const paced = await d.paced(gateway.url);
  return { rps: loop.requestsPerSecond, cpuMs, p50: paced.p50, p99: paced.p99 };
}

/** Both gateways measured in alternating order, round after round; each figure the median of its rounds. */
export async function onOff(off: Child, on: Child, d: OnOffDriver): Promise<OnOffResult> {
  const rounds: { off: OnOffRound; on: OnOffRound }[] = [];
  for (let r = 0; r < d.rounds; r++) {
    const first = r % 2 === 0 ? 'off' : 'on';
    const a = await measure(first === 'off' ? off : on, d);
    const b = await measure(first === 'off' ? on : off, d);
    rounds.push(first === 'off' ? { off: a, on: b } : { off: b, on: a });
  }
  const of = (side: 'off' | 'on'): OnOffRound => ({
    rps: median(rounds.map((x) => x[side].rps)), cpuMs: median(rounds.map((x) => x[side].cpuMs)),
    p50: median(rounds.map((x) => x[side].p50)), p99: median(rounds.map((x) => x[side].p99)),
  });
  return { off: of('off'), on: of('on'), rounds };
}

/** One table row's figure: what turning the option on changed. */
export function describeOnOff(r: OnOffResult): string {
  const f = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  return `on ${Math.round(r.on.rps)} / off ${Math.round(r.off.rps)} req/s (${f(r.on.rps / r.off.rps, 3)}); CPU ${f(r.on.cpuMs, 3)} vs ${f(r.off.cpuMs, 3)} ms a request (${r.on.cpuMs >= r.off.cpuMs ? '+' : ''}${f(r.on.cpuMs - r.off.cpuMs, 3)}); p50 ${f(r.on.p50)} vs ${f(r.off.p50)} ms, p99 ${f(r.on.p99)} vs ${f(r.off.p99)} ms`;
}
