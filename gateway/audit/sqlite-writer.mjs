// The SQLite store's writer thread. Plain JavaScript: worker threads do not inherit the
// TypeScript loader. It owns the one write connection, so a durable commit (fsync) never blocks
// the gateway's event loop; the main thread chains and hashes entries and keeps a read connection.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const columns = workerData.columns;
const insertEntry = db.prepare(`INSERT INTO audit_entries (${columns.join(',')}) VALUES (${columns.map((c) => '@' + c).join(',')})`);
const insertSubject = db.prepare('INSERT OR IGNORE INTO audit_subjects (subject, seq) VALUES (?, ?)');
const insertCheckpoint = db.prepare('INSERT OR IGNORE INTO audit_checkpoints (seq, hash, time, jws) VALUES (@seq, @hash, @time, @jws)');

const append = db.transaction((rows) => {
  for (const row of rows) {
    insertEntry.run(row);
    for (const subject of JSON.parse(row.subjects)) insertSubject.run(subject, row.seq);
  }
});

parentPort.on('message', (m) => {
  try {
    if (m.op === 'append') append(m.rows);
    else if (m.op === 'checkpoint') insertCheckpoint.run(m.checkpoint);
    else if (m.op === 'close') db.close();
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } });
  }
});
