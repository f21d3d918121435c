// Walks one seq range of the SQLite audit chain on a worker thread (plain JavaScript: worker
// threads do not inherit the TypeScript loader). Each row arrives with its canonical JSON already
// assembled by SQLite (see chainSql in sqlite-store.ts); the row is accepted only when that text
// hashes to the stored hash and holds no backslash. At the first row that is not plainly
// intact it stops and says so: the main thread then re-walks the range with the full check, so
// the verdict never rests on this shortcut.
import { parentPort, workerData } from 'node:worker_threads';
import { createHash, hash as oneShot } from 'node:crypto';
import Database from 'better-sqlite3';

const sha256 = oneShot ? (s) => oneShot('sha256', s, 'hex') : (s) => createHash('sha256').update(s).digest('hex');
const { file, sql, from, to, checkpoints } = workerData;
const cps = new Map(checkpoints);
const db = new Database(file, { readonly: true, fileMustExist: true });
const select = db.prepare(sql).raw();

function walk() {
  let count = 0;
  let firstPrevHash = null;
  let lastSeq = from - 1;
  let lastHash = null;
  const page = 10_000;
  for (let next = from; next <= to; next += page) {
    for (const [seq, prevHash, hash, canonical] of select.all(next, Math.min(to, next + page - 1))) {
      if (seq !== lastSeq + 1 || sha256(canonical) !== hash || canonical.includes('\\')) return { anomaly: seq };
      if (count === 0) firstPrevHash = prevHash;
      else if (prevHash !== lastHash) return { anomaly: seq };
      const cp = cps.get(seq);
      if (cp !== undefined && cp !== hash) return { anomaly: seq };
      count++;
      lastSeq = seq;
      lastHash = hash;
    }
  }
  return { count, firstSeq: count ? from : null, firstPrevHash, lastSeq, lastHash };
}

try {
  parentPort.postMessage(walk());
} finally {
  db.close();
}
