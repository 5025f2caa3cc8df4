/**
 * @file evidence.h
 * The matcher's evidence: postings that matched query hashes ("hits"), joined and scored.
 *
 * A hit is (track, t_ref, t_q): a catalog posting's track and frame, and the query
 * anchor's frame on the catalog's time scale. A true match piles its hits up on one
 * offset t_ref - t_q; coincidences scatter. Scoring counts hits per (track, offset bin)
 * cell, sums each cell with the next window_bins - 1 bins of the same track, and takes the
 * best; the null model's sample is the best window of every block of block_bins bins
 * (the best cell's own block and its two neighbours left out), whose upper tail the
 * caller fits (see daemon/earshot/matcher.py, `null_log_p`, the numpy reference that this
 * kernel reproduces exactly).
 *
 * Why C: a live window holds a few hundred thousand hits per speed hypothesis and is
 * scored twice a second; a radix sort over the few bits that vary is several times
 * cheaper than numpy's comparison sort, and nothing is copied to get there.
 *
 * Hits are stored in runs of one anchor time (es_ev_hits): every posting of every hash of
 * one query anchor shares its t_q, a few hundred hits a run on a 10-hour catalog, so t_q
 * is kept once a run and a hit costs 8 bytes instead of 12.
 */
#ifndef EARSHOT_EVIDENCE_H
#define EARSHOT_EVIDENCE_H

/* CFFI-BEGIN */
#define ES_EV_OK 0
#define ES_EV_EINVAL -1
#define ES_EV_EMPTY -3

/* es_ev_score's methods (the same results): choose, sort the keys, count in a dense array */
#define ES_EV_AUTO 0
#define ES_EV_SORT 1
#define ES_EV_DENSE 2

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

/** What es_ev_score found. Bins are floor((t_ref - t_q) / bin_frames). */
typedef struct {
    unsigned int track;         /**< the best cell's track */
    long long bin;              /**< its first offset bin */
    long long count;            /**< hits in its window (bin .. bin + window_bins - 1) */
    long long n_null;           /**< null blocks (blocks with hits, the best's neighbourhood left out) */
    long long k;                /**< tail size: min(n_null, max(tail_min, n_null / 20)) */
    long long u;                /**< the null maxima's value at descending rank k (0 when k == n_null) */
    long long top_sum;          /**< sum of the k largest null maxima */
    long long kept;             /**< hits scored (after the filters) */
    int method;                 /**< the method that scored: ES_EV_SORT or ES_EV_DENSE */
    long long dense_need;       /**< work elements the dense method needs for these hits (a
                                     lower bound when more than work_len; 0: not worth it) */
} es_ev_result;

/**
 * Score the hits with t_q >= since, leaving out those with track == mute_track and
 * t_q < mute_before (mute_track < 0: none). `work` is scratch of work_len elements, at least
 * 2 * n, n the hits in `hits`.
 *
 * Two methods give the same result. ES_EV_SORT radix-sorts the hits' (track, bin) keys and
 * counts runs of equal keys. ES_EV_DENSE counts hits in an array of 8-bit counters over
 * each track's span of bins (per block, the bins contiguous, the windows' sums in 16-bit
 * lanes), and windows and block maxima are then short vectorised scans: faster when the
 * spans hold few bins per hit, as a live window on a catalog of hours does (~6), and it
 * needs dense_need elements of work (there, less than the 2 n sorting takes). ES_EV_AUTO
 * takes the dense method when the spans hold at most 16 bins a kept hit and it fits in
 * work_len; either falls back to sorting (method ES_EV_SORT in the result) when the dense
 * one cannot be used: no room, windows over 64 bins, or a cell of 256 hits or more (a loud
 * clean match: found after the counting, which is then wasted).
 *
 * Returns ES_EV_OK, ES_EV_EMPTY when no hit is left, ES_EV_EINVAL on bad arguments
 * (bin_frames <= 0, window_bins < 1, block_bins < 1, offsets out of range, run ends out of
 * order, work_len < 2 * n, an unknown method). Never allocates.
 */
int es_ev_score(const es_ev_hits *hits, double since, long long mute_track, double mute_before,
                double bin_frames, int window_bins, int block_bins, int tail_min,
                unsigned long long *work, long long work_len, int method, es_ev_result *out);

/**
 * The offsets t_ref - t_q (double) of the hits es_ev_score counted in one cell: same
 * filters, track == cell_track, bin in [bin, bin + window_bins). Writes at most cap;
 * returns how many there are.
 */
long long es_ev_cell_offsets(const es_ev_hits *hits, double since, long long mute_track,
                             double mute_before, double bin_frames, int window_bins, unsigned int cell_track,
                             long long bin, double *out, long long cap);

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
 * Join query hashes with those postings (keys and starts as es_ev_runs gave them): for each
 * query hash i (in order) and each posting of that hash, one hit (track, frame, times[i]),
 * unless the hash has more than max_postings postings (0: no limit). The hits go to
 * out_track and out_t_ref, in runs of one time (consecutive hashes with the same time share
 * a run) to out_run_t and out_run_end, whose ends are `base` + the hit's index in out_*.
 * Returns how many hits there are and sets *n_runs to how many runs; writes them all only
 * when both fit (at most cap hits, run_cap runs): count first with caps of 0.
 */
long long es_ev_join(const unsigned char *postings, const unsigned int *keys, long long n_keys,
                     const long long *starts, const unsigned int *hashes, const float *times,
                     long long n_hashes, long long max_postings, unsigned int *out_track,
                     unsigned int *out_t_ref, float *out_run_t, unsigned int *out_run_end,
                     long long base, long long cap, long long run_cap, long long *n_runs);

/**
 * One track's hits near one offset, without copying the window: among hits with
 * t_q >= since and track == track_id, those with |t_ref - t_q - offset| <= tolerance
 * have their t_q written to out (at most cap, in order). Returns how many are near; *of_track
 * receives how many hits of the track there are in all (since `since`).
 */
long long es_ev_near(const es_ev_hits *hits, double since, unsigned int track_id, double offset,
                     double tolerance, double *out, long long cap, long long *of_track);
/* CFFI-END */

#endif
