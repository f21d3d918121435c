/**
 * Is anything else using the machine? Each measured phase of the bench compares the CPU time the
 * whole machine spent busy (/proc/stat, every core, including time a hypervisor stole) with the
 * CPU time the bench's own processes spent (this process and its children, every thread). What is
 * left is load from outside the bench; above the threshold the phase, and so the run, is marked
 * disturbed and its figures are not reported as a result.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Foreign CPU above this share of the machine (all cores) marks a phase disturbed. */
export const DISTURBED_SHARE = Number(process.env.BENCH_DISTURBED_SHARE ?? 0.05);

interface Snapshot { at: number; busy: number; steal: number; own: Map<number, number> }
export interface PhaseLoad { phase: string; seconds: number; foreignShare: number; stealShare: number; disturbed: boolean }

const TICKS = 100; // USER_HZ: /proc reports clock ticks of 1/100 s on Linux

/** Busy and stolen ticks of the whole machine since boot; null without /proc. */
function machineTicks(): { busy: number; steal: number } | null {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
    return { busy: user! + nice! + system! + irq! + softirq!, steal: steal ?? 0 };
  } catch {
    return null;
  }
}

/** utime + stime of one live process, every thread. */
function processTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // utime and stime: fields 14 and 15 of proc(5).
    return f[11]! + f[12]!;
  } catch {
    return null;
  }
}

/** Watches the machine while the bench runs; `pids()` names the bench's live processes. */
export function disturbanceMonitor(pids: () => number[]) {
  const phases: PhaseLoad[] = [];
  const snapshot = (): Snapshot | null => {
    const m = machineTicks();
    if (!m) return null;
    const own = new Map<number, number>();
    for (const pid of [process.pid, ...pids()]) {
      const t = processTicks(pid);
      if (t !== null) own.set(pid, t);
    }
    return { at: performance.now(), ...m, own };
  };
  return {
    /** Runs `work` as one measured phase and records the foreign load during it. */
    async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
      const before = snapshot();
      const result = await work();
      const after = snapshot();
      if (before && after) {
        const seconds = (after.at - before.at) / 1000;
        const capacity = seconds * TICKS * cpus().length;
        // A process present at both ends counts its CPU in between; one that ended in between is
        // not counted as foreign (its last ticks are unknown but were the bench's own).
        let own = 0;
        for (const [pid, t] of after.own) if (before.own.has(pid)) own += t - before.own.get(pid)!;
        const ended = [...before.own.keys()].some((pid) => !after.own.has(pid));
        const foreign = ended ? 0 : Math.max(0, after.busy - before.busy - own);
        const foreignShare = capacity > 0 ? foreign / capacity : 0;
        const stealShare = capacity > 0 ? (after.steal - before.steal) / capacity : 0;
        phases.push({ phase: name, seconds: Math.round(seconds * 10) / 10, foreignShare, stealShare, disturbed: foreignShare + stealShare > DISTURBED_SHARE });
      }
      return result;
    },
    phases,
    /** The phases that were disturbed, worst first. */
    disturbed: () => phases.filter((p) => p.disturbed).sort((a, b) => b.foreignShare + b.stealShare - a.foreignShare - a.stealShare),
  };
}
