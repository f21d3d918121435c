// The audit store's write statements, shared by the writer thread (sqlite-writer.mjs) and a
// store's own connection (an in-memory database). Plain JavaScript, so the writer thread loads it
// without the TypeScript loader.

const GENESIS = { seq: 0, hash: '0'.repeat(64) };

/**
 * `append(expected, rows)` commits the rows in one BEGIN IMMEDIATE transaction if the chain head
 * is still `expected`, else commits nothing and returns the head it found. Rows come as
 * [column values in `columns` order (seq first), subjects].
 */
export function prepareWrites(db, columns) {
  const insertEntry = db.prepare(`INSERT INTO audit_entries (${columns.join(',')}) VALUES (${columns.map(() => '?').join(',')})`);
  const insertSubject = db.prepare('INSERT OR IGNORE INTO audit_subjects (subject, seq) VALUES (?, ?)');
  const insertCheckpoint = db.prepare('INSERT OR IGNORE INTO audit_checkpoints (seq, hash, time, jws) VALUES (@seq, @hash, @time, @jws)');
  const readHead = db.prepare('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
  // About a batch's worth of pages, committed (and fsync'd) like a batch, outside the chain.
  const writeProbe = db.prepare("INSERT OR REPLACE INTO audit_write_probe (id, written_at, pad) VALUES (1, ?, randomblob(131072))");
  const transaction = db.transaction((expected, rows) => {
    const head = readHead.get() ?? GENESIS;
    if (head.seq !== expected.seq || head.hash !== expected.hash) return head;
    for (const [values, subjects] of rows) {
      insertEntry.run(values);
      for (const subject of subjects) insertSubject.run(subject, values[0]);
    }
    return null;
  });
  const probe = db.transaction(() => { writeProbe.run(new Date().toISOString()); });
  return {
    append: (expected, rows) => transaction.immediate(expected, rows),
    saveCheckpoint: (checkpoint) => { insertCheckpoint.run(checkpoint); },
    probe: () => { probe.immediate(); },
  };
}
