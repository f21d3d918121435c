/**
 * One archiver at a time. PostgreSQL uses an advisory lock (archive-index.ts); a SQLite file, a
 * lock file beside it: created exclusively, holding the owner's pid and host. A SIGKILLed
 * archiver leaves its lock file behind; the next one on the same host sees that pid gone and
 * takes the lock over, so a pass resumes without an operator. In one process the lock is also
 * held in memory, so two passes started together cannot both run.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

export type Exclusive = <T>(fn: () => Promise<T>) => Promise<{ ran: true; value: T } | { ran: false }>;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Whether the lock file names a process of this host that is gone (or was cut off before it said who it is). */
function stale(path: string): boolean {
  let holder: { pid?: unknown; host?: unknown } | null = null;
  try {
    holder = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
  }
  if (!holder || typeof holder.pid !== 'number') return true;
  return holder.host === hostname() && !alive(holder.pid);
}

function acquire(path: string): boolean {
  const me = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, me, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!stale(path)) return false;
    rmSync(path, { force: true });
  }
  return false;
}

/** The in-process part: a flag. */
export function inProcessLock(): Exclusive {
  let held = false;
  return async (fn) => {
    if (held) return { ran: false };
    held = true;
    try {
      return { ran: true, value: await fn() };
    } finally {
      held = false;
    }
  };
}

/** A lock file at `path`, beside the in-process flag. */
export function lockFile(path: string): Exclusive {
  const local = inProcessLock();
  return (fn) => local(async () => {
    if (!acquire(path)) return { ran: false } as const;
    try {
      return { ran: true, value: await fn() } as const;
    } finally {
      rmSync(path, { force: true });
    }
  }).then((r) => (r.ran ? r.value : r));
}
