/**
 * Is anything else using the machine? Each measured phase of the bench compares the CPU time the
 * whole machine spent busy (/proc/stat, every core; time a hypervisor stole counts too) with the
 * CPU time the bench's own processes spent (this process and its children, every thread), the
 * kernel's threads (their writeback and journal work follows the bench's own fsyncs) and the
 * servers a phase uses (PostgreSQL for the shared store). What is left is load from outside the
 * bench, short-lived processes included; above the threshold the phase, and so the run, is marked
 * disturbed and its figures are not reported as a result.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Foreign CPU above this share of the machine (all cores) marks a phase disturbed. */
export const DISTURBED_SHARE = Number(process.env.BENCH_DISTURBED_SHARE ?? 0.05);

interface Snapshot { at: number; idle: number; steal: number; own: Map<number, number>; kernel: Map<number, number> }
export interface PhaseLoad { phase: string; seconds: number; foreignShare: number; stealShare: number; kernelShare: number; disturbed: boolean }

const TICKS = 100; // USER_HZ: /proc reports clock ticks of 1/100 s on Linux

/**
 * Idle and stolen ticks of the whole machine since boot; null without /proc. Busy time is taken
 * as the phase's capacity less these: the kernel measures idle time exactly, while its user and
 * system counters are sampled at each tick and overstate short, timer-driven bursts (a paced
 * load) by a fifth or more.
 */
function machineTicks(): { idle: number; steal: number } | null {
  try {
    const [, , , idle, iowait, , , steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
    return { idle: idle! + iowait!, steal: steal ?? 0 };
  } catch {
    return null;
  }
}

interface ProcessStat { name: string; ppid: number; ticks: number }

/**
 * Name, parent and CPU ticks of one live process: utime + stime (every thread) and cutime + cstime,
 * the children it has waited for. So the short-lived processes the bench runs (the time-stamping
 * authority's `openssl ts`, one per stamp) count as its own once reaped. Null once it is gone.
 */
function processStat(pid: number): ProcessStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // ppid, utime, stime, cutime and cstime: fields 4, 14, 15, 16 and 17 of proc(5).
    return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

/** Every live process's id. */
const allPids = (): number[] => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);

/**
 * Watches the machine while the bench runs; `pids()` names the bench's live processes, and a phase
 * may name servers (by process name) whose work is part of what it measures.
 */
export function disturbanceMonitor(pids: () => number[]) {
  const phases: PhaseLoad[] = [];
  const snapshot = (servers: readonly string[]): Snapshot | null => {
    const m = machineTicks();
    if (!m) return null;
    const mine = new Set([process.pid, ...pids()]);
    const own = new Map<number, number>();
    const kernel = new Map<number, number>();
    for (const pid of allPids()) {
      const p = processStat(pid);
      if (!p) continue;
      // kthreadd (pid 2) and its children are the kernel's own threads.
      if (pid === 2 || p.ppid === 2) kernel.set(pid, p.ticks);
      else if (mine.has(pid) || servers.includes(p.name)) own.set(pid, p.ticks);
    }
    return { at: performance.now(), ...m, own, kernel };
  };
  // A process that started during the phase (a PostgreSQL backend for a new connection) used all its CPU in it.
  const delta = (before: Map<number, number>, after: Map<number, number>) => {
    let sum = 0;
    for (const [pid, t] of after) sum += t - (before.get(pid) ?? 0);
    return sum;
  };
  return {
    /** Runs `work` as one measured phase and records the foreign load during it. */
    async phase<T>(name: string, work: () => Promise<T>, servers: readonly string[] = []): Promise<T> {
      const before = snapshot(servers);
      const result = await work();
      const after = snapshot(servers);
      if (before && after) {
        const seconds = (after.at - before.at) / 1000;
        const capacity = seconds * TICKS * cpus().length;
        // A process present at both ends counts its CPU in between; one that ended in between is
        // not counted as foreign (its last ticks are unknown but were the bench's own).
        const own = delta(before.own, after.own);
        const kernel = delta(before.kernel, after.kernel);
        const ended = [...before.own.keys()].some((pid) => !after.own.has(pid));
        const steal = after.steal - before.steal;
        const busy = capacity - (after.idle - before.idle) - steal;
        const foreign = ended ? 0 : Math.max(0, busy - own - kernel);
        const share = (ticks: number) => (capacity > 0 ? ticks / capacity : 0);
        const [foreignShare, stealShare, kernelShare] = [share(foreign), share(steal), share(kernel)];
        phases.push({ phase: name, seconds: Math.round(seconds * 10) / 10, foreignShare, stealShare, kernelShare, disturbed: foreignShare + stealShare > DISTURBED_SHARE });
      }
      return result;
    },
    phases,
    /** The phases that were disturbed, worst first. */
    disturbed: () => phases.filter((p) => p.disturbed).sort((a, b) => b.foreignShare + b.stealShare - a.foreignShare - a.stealShare),
  };
}
