// The SQLite store's writer thread. Plain JavaScript: worker threads do not inherit the
// TypeScript loader. It owns the write connection, so a durable commit (fsync) never blocks the
// gateway's event loop; the main thread chains and hashes the entries. Each batch commits only
// if the chain head is still the one it was chained after, checked inside BEGIN IMMEDIATE, so
// two processes on one file never fork the chain: a stale batch is sent back to be re-chained.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { prepareWrites } from './sqlite-writes.mjs';
import { prepareArchiveWrites } from './sqlite-archive-writes.mjs';

const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const writes = prepareWrites(db, workerData.columns);
const archive = prepareArchiveWrites(db);

parentPort.on('message', (m) => {
  try {
    let stale = null;
    if (m.op === 'append') stale = writes.append(m.expected, JSON.parse(m.rows));
    else if (m.op === 'checkpoint') writes.saveCheckpoint(m.checkpoint);
    else if (m.op === 'probe') writes.probe();
    else if (m.op === 'dropThrough') stale = archive.dropThrough(m.segment);
    else if (m.op === 'close') db.close();
    parentPort.postMessage({ id: m.id, stale });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } });
  }
});
