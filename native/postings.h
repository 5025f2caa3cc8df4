/**
 * @file postings.h
 * The catalog's postings read straight from LMDB (liblmdb), for the matcher's lookups.
 *
 * py-lmdb's `Cursor.getmulti` copies a key beside every posting one memcpy at a time and
 * releases the GIL around each of its three cursor calls per key; this reader walks the
 * same B-tree with one cursor and writes each posting once, already widened to the matcher's
 * 12-byte records (hash, track, frame as big-endian u32: catalog.LOOKUP_DTYPE), about 2.4x
 * faster on the live listener's lookups.
 *
 * It is a second, read-only handle on a catalog that py-lmdb has open, so it opens the
 * environment without LMDB's lock file (MDB_NOLOCK): two lock-file handles in one process
 * would break LMDB's advisory locking when one closed. Without the lock file its reads are
 * not registered with writers, so it reads only inside a read transaction py-lmdb holds
 * (registered) and only when its own snapshot is that same transaction: es_pl_lookup is
 * given that transaction's id and answers ES_PL_STALE when a writer committed in between.
 * A writer never reuses a page a registered reader's snapshot can reach, so the pages read
 * are the registered snapshot's own.
 */
#ifndef EARSHOT_POSTINGS_H
#define EARSHOT_POSTINGS_H

/* CFFI-BEGIN */
#define ES_PL_STALE -1      /* the newest snapshot is not the transaction the caller holds */
#define ES_PL_ERROR -2      /* LMDB failed (the handle should be reopened) */
#define ES_PL_RECORD 12     /* bytes a posting takes in the output (hash, track, frame) */

typedef struct es_pl es_pl;

/**
 * A read-only handle on the `postings` sub-database of the catalog in folder `dir`, or
 * NULL (with `*err` the LMDB or errno code) when it cannot be opened.
 */
es_pl *es_pl_open(const char *dir, int *err);
void es_pl_close(es_pl *pl);

/**
 * Every posting of keys[0..n) (hashes, in host order; each key's postings in the catalog's
 * order) as ES_PL_RECORD-byte records in `out`, read in the snapshot of transaction
 * `txn_id`. Returns how many postings there are, writing at most `cap` of them (call again
 * with room for all when the return exceeds `cap`), or ES_PL_STALE / ES_PL_ERROR.
 * `starts` (NULL: not asked; else room for n + 1): where each key's postings begin, and
 * their number at starts[n] (es_ev_runs of the result, without a second pass).
 */
long long es_pl_lookup(es_pl *pl, unsigned long long txn_id, const unsigned int *keys, long long n,
                       unsigned char *out, long long cap, long long *starts);
/* CFFI-END */

#endif
