/**
 * Which of SQLite's WAL locks a process holds on a database, read from /proc/locks. In WAL mode
 * SQLite takes POSIX byte-range locks on the `-shm` file: byte 120 is the write lock (held from
 * BEGIN IMMEDIATE until the commit is done), byte 121 the checkpoint lock (held while the WAL is
 * copied back into the database). Linux only.
 */
import { readFileSync, statSync } from 'node:fs';

const WAL_LOCK_BASE = 120;
export const WAL_WRITE_LOCK = WAL_LOCK_BASE;
export const WAL_CHECKPOINT_LOCK = WAL_LOCK_BASE + 1;

/** The exclusive WAL lock bytes `pid` holds on `database`'s shared-memory file. */
export function heldWalLocks(pid: number, database: string): Set<number> {
  let inode: number;
  try {
    inode = statSync(`${database}-shm`).ino;
  } catch {
    return new Set();
  }
  const held = new Set<number>();
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 3806 fe:00:1466766 120 120"
    const f = line.trim().split(/\s+/);
    if (f[1] !== 'POSIX' || f[3] !== 'WRITE' || Number(f[4]) !== pid) continue;
    if (Number(f[5]!.split(':')[2]) !== inode) continue;
    const [start, end] = [Number(f[6]), f[7] === 'EOF' ? Infinity : Number(f[7])];
    for (const byte of [WAL_WRITE_LOCK, WAL_CHECKPOINT_LOCK]) if (start <= byte && byte <= end) held.add(byte);
  }
  return held;
}

/**
 * Kills `pid` with SIGKILL at a moment it holds `lock`: polls /proc/locks, stops the process
 * (SIGSTOP freezes every thread at once) when the lock shows, and kills it only if the lock is
 * still held while it is stopped; otherwise it lets it run on and looks again. Resolves true once
 * killed so, false if `deadline` passes first.
 */
export async function killHolding(pid: number, database: string, lock: number, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    if (heldWalLocks(pid, database).has(lock)) {
      process.kill(pid, 'SIGSTOP');
      if (heldWalLocks(pid, database).has(lock)) {
        process.kill(pid, 'SIGKILL');
        return true;
      }
      process.kill(pid, 'SIGCONT');
    }
    await new Promise((r) => setImmediate(r));
  }
  return false;
}
