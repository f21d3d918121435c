// The SQLite store's writer thread. Plain JavaScript: worker threads do not inherit the
// TypeScript loader. It owns the write connection, so a durable commit (fsync) never blocks the
// gateway's event loop; the main thread chains and hashes the entries. Each batch commits only
// if the chain head is still the one it was chained after, checked inside BEGIN IMMEDIATE, so
// two processes on one file never fork the chain: a stale batch is sent back to be re-chained.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const columns = workerData.columns;
// Rows come as [column values in `columns` order (seq first), subjects].
const insertEntry = db.prepare(`INSERT INTO audit_entries (${columns.join(',')}) VALUES (${columns.map(() => '?').join(',')})`);
const insertSubject = db.prepare('INSERT OR IGNORE INTO audit_subjects (subject, seq) VALUES (?, ?)');
const insertCheckpoint = db.prepare('INSERT OR IGNORE INTO audit_checkpoints (seq, hash, time, jws) VALUES (@seq, @hash, @time, @jws)');
const readHead = db.prepare('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
const GENESIS = { seq: 0, hash: '0'.repeat(64) };

const append = db.transaction((expected, rows) => {
  const head = readHead.get() ?? GENESIS;
  if (head.seq !== expected.seq || head.hash !== expected.hash) return head;
  for (const [values, subjects] of rows) {
    insertEntry.run(values);
    for (const subject of subjects) insertSubject.run(subject, values[0]);
  }
  return null;
});

parentPort.on('message', (m) => {
  try {
    let stale = null;
    if (m.op === 'append') stale = append.immediate(m.expected, m.rows);
    else if (m.op === 'checkpoint') insertCheckpoint.run(m.checkpoint);
    else if (m.op === 'close') db.close();
    parentPort.postMessage({ id: m.id, stale });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } });
  }
});
