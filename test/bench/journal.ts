/**
 * The bench references' durable record: an append-only file, written and fdatasync'd on the event
 * loop once per turn for everything queued during it (group commit). No thread-pool hop on the
 * way, the lowest latency this machine allows; the loop blocks meanwhile.
 */
import { fdatasyncSync, openSync, writeSync } from 'node:fs';

/** Appends `record` to `file`; resolves once it is on disk. */
export function journal(file: string): (record: Buffer) => Promise<void> {
  const fd = openSync(file, 'a');
  let queued: { record: Buffer; done: () => void }[] = [];
  const flush = () => {
    const batch = queued;
    queued = [];
    writeSync(fd, Buffer.concat(batch.map((b) => b.record)));
    fdatasyncSync(fd);
    for (const b of batch) b.done();
  };
  return (record) => new Promise<void>((done) => {
    if (queued.push({ record, done }) === 1) setImmediate(flush);
  });
}
