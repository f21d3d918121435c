// The archiver's one write to the SQLite audit store (ArchiveIndex.dropThrough in store.ts): it
// runs on the writer thread (sqlite-writer.mjs), which owns writes to audit_entries, so the
// delete never races a batch and never blocks the event loop. Plain JavaScript, like the writer.

const GENESIS_HASH = '0'.repeat(64);

/** A segment the hot store cannot drop as asked: nothing was changed. */
const refused = (why) => Object.assign(new Error(`archive segment refused: ${why}`), { name: 'ArchiveRefused', code: 'ARCHIVE_REFUSED' });

export function prepareArchiveWrites(db) {
  const lastSegment = db.prepare('SELECT last_seq, last_hash FROM audit_archive_segments ORDER BY first_seq DESC LIMIT 1');
  const segmentAt = db.prepare('SELECT last_seq, file_sha256 FROM audit_archive_segments WHERE first_seq = ?');
  const rangeCount = db.prepare('SELECT count(*) AS n FROM audit_entries WHERE seq BETWEEN ? AND ?');
  const linkAt = db.prepare('SELECT prev_hash, hash FROM audit_entries WHERE seq = ?');
  const entryAfter = db.prepare('SELECT 1 FROM audit_entries WHERE seq > ? LIMIT 1');
  const insert = db.prepare(`INSERT INTO audit_archive_segments (first_seq, last_seq, prev_hash, last_hash, file, file_sha256, entries, sealed_at)
    VALUES (@firstSeq, @lastSeq, @prevHash, @lastHash, @file, @fileSha256, @entries, @sealedAt)`);
  const drop = db.prepare('DELETE FROM audit_entries WHERE seq BETWEEN ? AND ?');
  const transaction = db.transaction((s) => {
    const known = segmentAt.get(s.firstSeq);
    if (known) {
      if (known.last_seq === s.lastSeq && known.file_sha256 === s.fileSha256) return 'already';
      throw refused(`another segment starting at seq ${s.firstSeq} is recorded`);
    }
    const last = lastSegment.get();
    if ((last?.last_seq ?? 0) + 1 !== s.firstSeq || (last?.last_hash ?? GENESIS_HASH) !== s.prevHash) throw refused(`it does not follow the last segment (seq ${last?.last_seq ?? 0})`);
    if (s.entries !== s.lastSeq - s.firstSeq + 1 || rangeCount.get(s.firstSeq, s.lastSeq).n !== s.entries) throw refused(`the hot store does not hold exactly seqs ${s.firstSeq}..${s.lastSeq}`);
    if (linkAt.get(s.firstSeq)?.prev_hash !== s.prevHash || linkAt.get(s.lastSeq)?.hash !== s.lastHash) throw refused('its hashes differ from the hot store\'s');
    if (!entryAfter.get(s.lastSeq)) throw refused('the chain\'s head entry stays in the hot store');
    insert.run(s);
    drop.run(s.firstSeq, s.lastSeq);
    return 'dropped';
  });
  return { dropThrough: (segment) => transaction.immediate(segment) };
}
