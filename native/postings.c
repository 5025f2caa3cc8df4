/* The catalog's postings read straight from LMDB: see postings.h. */
#include "postings.h"

#include "evidence.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#define POSTING_BYTES 6  /* a stored posting: track u24, frame u24, big-endian */

struct es_pl {
    MDB_env *env;
    MDB_dbi dbi;
};

/* The postings' keys are 4-byte big-endian hashes, stored in memcmp order; that is their
 * order as unsigned integers, compared here in registers without a call per comparison (a
 * lookup's descent makes ~20). Other sizes keep LMDB's own rule (memcmp, then length). */
static int key_cmp(const MDB_val *a, const MDB_val *b)
{
    if (a->mv_size == 4 && b->mv_size == 4) {
        const unsigned char *x = a->mv_data, *y = b->mv_data;
        const unsigned int u = ((unsigned int)x[0] << 24) | ((unsigned int)x[1] << 16) |
                               ((unsigned int)x[2] << 8) | x[3];
        const unsigned int v = ((unsigned int)y[0] << 24) | ((unsigned int)y[1] << 16) |
                               ((unsigned int)y[2] << 8) | y[3];
        return (u > v) - (u < v);
    }
    const size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    const int c = memcmp(a->mv_data, b->mv_data, n);
    return c ? c : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

es_pl *es_pl_open(const char *dir, int *err)
{
    es_pl *pl = calloc(1, sizeof *pl);
    MDB_txn *txn = NULL;
    int rc;
    if (!pl) {
        *err = ENOMEM;
        return NULL;
    }
    if ((rc = mdb_env_create(&pl->env)) != 0)
        goto fail;
    if ((rc = mdb_env_set_maxdbs(pl->env, 8)) != 0
        || (rc = mdb_env_open(pl->env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS | MDB_NORDAHEAD, 0644)) != 0
        || (rc = mdb_txn_begin(pl->env, NULL, MDB_RDONLY, &txn)) != 0
        || (rc = mdb_dbi_open(txn, "postings", 0, &pl->dbi)) != 0
        || (rc = mdb_set_compare(txn, pl->dbi, key_cmp)) != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0) {  /* a read transaction's commit keeps the handle */
        txn = NULL;
        goto fail;
    }
    return pl;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (pl->env)
        mdb_env_close(pl->env);
    free(pl);
    *err = rc;
    return NULL;
}

void es_pl_close(es_pl *pl)
{
    if (!pl)
        return;
    mdb_env_close(pl->env);
    free(pl);
}

/* A read transaction on the newest snapshot, following the map when a writer grew it. */
static int begin(es_pl *pl, MDB_txn **txn)
{
    int rc = mdb_txn_begin(pl->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {   /* no transaction of this handle is open: remap */
        if ((rc = mdb_env_set_mapsize(pl->env, 0)) != 0)
            return rc;
        rc = mdb_txn_begin(pl->env, NULL, MDB_RDONLY, txn);
    }
    return rc;
}

long long es_pl_lookup(es_pl *pl, unsigned long long txn_id, const unsigned int *keys, long long n,
                       unsigned char *out, long long cap, long long *starts)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    long long found = 0;
    if (begin(pl, &txn) != 0)
        return ES_PL_ERROR;
    if ((unsigned long long)mdb_txn_id(txn) != txn_id) {
        mdb_txn_abort(txn);
        return ES_PL_STALE;
    }
    if (mdb_cursor_open(txn, pl->dbi, &cur) != 0) {
        mdb_txn_abort(txn);
        return ES_PL_ERROR;
    }
    for (long long i = 0; i < n; i++) {
        if (starts)
            starts[i] = found;
        unsigned int h = keys[i];
        unsigned char key[4] = {(unsigned char)(h >> 24), (unsigned char)(h >> 16),
                                (unsigned char)(h >> 8), (unsigned char)h};
        MDB_val k = {sizeof key, key}, v;
        int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc == 0)  /* a page of the key's postings at a time */
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_MULTIPLE);
        while (rc == 0) {
            long long m = (long long)(v.mv_size / POSTING_BYTES);
            const unsigned char *p = v.mv_data;
            for (long long j = 0; j < m && found + j < cap; j++)
                es_ev_posting_record(out + ES_PL_RECORD * (found + j), key, p + POSTING_BYTES * j);
            found += m;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_MULTIPLE);
        }
        if (rc != MDB_NOTFOUND) {
            found = ES_PL_ERROR;
            break;
        }
    }
    if (starts && found >= 0)
        starts[n] = found;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return found;
}
