/**
 * @file evidence.h
 * The matcher's evidence: postings that matched query hashes ("hits").
 *
 * A hit is (track, t_ref, t_q): a catalog posting's track and frame, and the query
 * anchor's frame on the catalog's time scale. A true match piles its hits up on one
 * offset t_ref - t_q; coincidences scatter. The scoring is in score.h; this header has the
 * hits' layout, the join that makes them from LMDB's postings, and the lookup of one
 * track's hits near an offset.
 *
 * Hits are stored in runs of one anchor time (es_ev_hits): every posting of every hash of
 * one query anchor shares its t_q, a few hundred hits a run on a 10-hour catalog, so t_q
 * is kept once a run and a hit costs 8 bytes instead of 12.
 *
 * A hit may weigh more than one: how much its hash says (a hash with few postings is rarely a
 * coincidence). The weight rides in the track word's top bits, beside the catalog's 24-bit
 * track id: track word = id | (weight - 1) << ES_EV_TRACK_BITS, so a plain id weighs 1.
 */
#ifndef EARSHOT_EVIDENCE_H
#define EARSHOT_EVIDENCE_H

#include <stdint.h>
#include <string.h>

/* CFFI-BEGIN */
#define ES_EV_OK 0
#define ES_EV_EINVAL -1
#define ES_EV_EMPTY -3
#define ES_EV_TRACK_BITS 24     /* a hit's track id: the track word's low bits */
#define ES_EV_MAX_WEIGHT 16     /* a hit's weight: 1 .. this, (weight - 1) in the top bits */

/**
 * A window's hits in runs of one anchor time: run r holds the hits [start_r, run_end[r]) of
 * track and t_ref, with start_0 = first and start_r = run_end[r - 1], and all of them have
 * t_q = run_t[r]. Indices are into track and t_ref (a window's whole buffers).
 */
typedef struct {
    const unsigned int *track;      /**< the postings' tracks */
    const unsigned int *t_ref;      /**< the postings' frames */
    const float *run_t;             /**< each run's anchor time t_q */
    const unsigned int *run_end;    /**< one past each run's last hit */
    long long n_runs;
    long long first;                /**< the first run's first hit */
} es_ev_hits;

/**
 * Where each looked-up hash's postings are: posting j is the 12 bytes at postings + 12 * j,
 * (hash, track, frame) as big-endian 32-bit words (the catalog's LMDB layout, any alignment),
 * grouped by hash in ascending order; keys[0..n_keys) are the hashes looked up, ascending.
 * Writes starts[0..n_keys]: key i's postings are [starts[i], starts[i + 1]). One pass.
 * Returns ES_EV_OK, or ES_EV_EINVAL when the postings hold a hash not in keys or are not
 * grouped in key order.
 */
int es_ev_runs(const unsigned char *postings, long long n_postings, const unsigned int *keys,
               long long n_keys, long long *starts);

/**
 * Widen n catalog records as LMDB's getmulti returns them (10 bytes each: hash u32, track
 * u24, frame u24, all big-endian, any alignment) into the 12-byte postings es_ev_runs
 * reads (hash, track, frame as big-endian u32 words) at out. One pass, no allocation.
 */
void es_ev_widen(const unsigned char *raw, long long n, unsigned char *out);

/**
 * How far the anchor times t[0..n) fall below an earlier one (or below `*latest`, the largest
 * time seen before them), at most: max over i of (max(*latest, t[0..i)) - t[i]), and at
 * least `*disorder` as given. Updates *disorder and *latest (the running maximum) in place.
 * The evidence window's cuts by time are conservative by this much (evidence.py).
 */
void es_ev_disorder(const float *t, long long n, double *latest, double *disorder);

/**
 * The distinct values of in[0..n), ascending, written to out (room for n); work is scratch
 * of 2 n 64-bit values. Returns how many there are. The kernels' radix sort (radix.h):
 * linear in n (numpy's unique sorted by comparison, several times slower on a query's
 * hashes). in may not overlap out or work.
 */
long long es_ev_unique(const unsigned int *in, long long n, unsigned int *out,
                       unsigned long long *work);

/**
 * A hash table over n_keys distinct keys for es_ev_join: slots[0 .. 2^bits) must be zero on
 * entry and receive, by linear probing from the top `bits` bits of key * 2^32/phi, each
 * key's index + 1. bits (1 .. 31) must leave room: n_keys < 2^bits (a load of at most a half
 * keeps probes short). ES_EV_EINVAL when it does not, or when a key repeats.
 */
int es_ev_key_table(const unsigned int *keys, long long n_keys, unsigned int *slots, int bits);

/**
 * Join query hashes with those postings (keys and starts as es_ev_runs gave them, slots as
 * es_ev_key_table gave them for those keys, found in one probe or two): for each
 * query hash i (in order) and each posting of that hash, one hit (track, frame, times[i]),
 * unless the hash has more than max_postings postings (0: no limit). A hash with df postings
 * gives its hits the weight weights[min(df, n_weights - 1)] (1 .. ES_EV_MAX_WEIGHT; weights
 * NULL or n_weights 0: all weigh 1), stored in the track word. The hits go to
 * out_track and out_t_ref, in runs of one time (consecutive hashes with the same time share
 * a run) to out_run_t and out_run_end, whose ends are `base` + the hit's index in out_*.
 * Returns how many hits there are and sets *n_runs to how many runs; writes them all only
 * when both fit (at most cap hits, run_cap runs): count first with caps of 0.
 */
long long es_ev_join(const unsigned char *postings, const unsigned int *keys,
                     const unsigned int *slots, int slot_bits, const long long *starts,
                     const unsigned int *hashes, const float *times,
                     long long n_hashes, long long max_postings, const unsigned char *weights,
                     long long n_weights, unsigned int *out_track,
                     unsigned int *out_t_ref, float *out_run_t, unsigned int *out_run_end,
                     long long base, long long cap, long long run_cap, long long *n_runs);

/**
 * One track's hits near one offset, without copying the window: among hits with
 * t_q >= since and track id == track_id (whatever their weight), those with |t_ref - t_q - offset| <= tolerance
 * have their t_q written to out (at most cap, in order). Returns how many are near; *of_track
 * receives how many hits of the track there are in all (since `since`).
 */
long long es_ev_near(const es_ev_hits *hits, double since, unsigned int track_id, double offset,
                     double tolerance, double *out, long long cap, long long *of_track);
/* CFFI-END */

/**
 * One stored posting (track u24, frame u24, big-endian: 6 bytes at `posting`) of the 4-byte
 * big-endian hash at `key`, as the 12-byte record es_ev_runs reads, at `out`: the layout
 * es_ev_widen and the catalog's C reader (postings.c) both write.
 */
static inline void es_ev_posting_record(unsigned char *out, const unsigned char *key,
                                        const unsigned char *posting)
{
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* three 4-byte moves instead of twelve byte stores (the catalog's lookups write one
     * record per posting). Bytes [0, t0, t1, t2] are the word t0..t3 read in memory order,
     * shifted up a byte; [0, f0, f1, f2] are the word read one byte before f0 with its
     * lowest byte cleared. Both reads stay within the posting's 6 bytes. */
    uint32_t track, frame;
    memcpy(&track, posting, 4);
    memcpy(&frame, posting + 2, 4);
    track <<= 8;
    frame &= 0xFFFFFF00u;
    memcpy(out, key, 4);
    memcpy(out + 4, &track, 4);
    memcpy(out + 8, &frame, 4);
#else
    out[0] = key[0], out[1] = key[1], out[2] = key[2], out[3] = key[3];
    out[4] = 0, out[5] = posting[0], out[6] = posting[1], out[7] = posting[2];
    out[8] = 0, out[9] = posting[3], out[10] = posting[4], out[11] = posting[5];
#endif
}

#endif
