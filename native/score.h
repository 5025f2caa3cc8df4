/**
 * @file score.h
 * The evidence's score: the best (track, offset) cell of a window's hits and the null
 * model's statistics.
 *
 * Scoring counts hits per (track, offset bin) cell, each hit its weight (evidence.h), sums each cell with the next
 * window_bins - 1 bins of the same track, and takes the best; the null model's sample is
 * the best window of every block of block_bins bins (the best cell's own block and its two
 * neighbours left out), whose upper tail the caller fits (see daemon/earshot/matcher.py,
 * `null_log_p`, the numpy reference that this kernel reproduces exactly).
 *
 * Why C: a live window holds a few hundred thousand hits per speed hypothesis and is
 * scored twice a second; counting them in a dense array, or a radix sort over the few bits
 * that vary, is several times cheaper than numpy's comparison sort, and nothing is copied
 * to get there.
 */
#ifndef EARSHOT_SCORE_H
#define EARSHOT_SCORE_H

#include "evidence.h"

/* CFFI-BEGIN */
/* es_ev_score's methods (the same results): choose, sort the keys, count in a dense array */
#define ES_EV_AUTO 0
#define ES_EV_SORT 1
#define ES_EV_DENSE 2
/* ES_EV_AUTO's limit for the dense method, bins a kept hit, when the caller gives 0 */
#define ES_EV_DENSE_LIMIT 16

/** What es_ev_score found. Bins are floor((t_ref - t_q) / bin_frames). */
typedef struct {
    unsigned int track;         /**< the best cell's track */
    long long bin;              /**< its first offset bin */
    long long count;            /**< its window's hits (bin .. bin + window_bins - 1), weighted */
    long long n_null;           /**< null blocks (blocks with hits, the best's neighbourhood left out) */
    long long k;                /**< tail size: min(n_null, max(tail_min, n_null / 20)) */
    long long u;                /**< the null maxima's value at descending rank k (0 when k == n_null) */
    long long top_sum;          /**< sum of the k largest null maxima */
    long long kept;             /**< hits scored (after the filters), not weighted */
    long long weight;           /**< their weights' sum (kept when every hit weighs 1) */
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
 * takes the dense method when the spans hold at most dense_limit bins a kept hit (0:
 * ES_EV_DENSE_LIMIT; a live window's sparse evidence sorts faster beyond 16, a whole
 * query's screened sample of tens of thousands of hits counts faster up to 32) and it fits
 * in work_len; either falls back to sorting (method ES_EV_SORT in the result) when the dense
 * one cannot be used: no room, windows over 64 bins, a bin whose hits weigh 256 or more (a
 * loud clean match: found after the counting, which is then wasted), or a best window
 * weighing more than n + 1.
 *
 * Returns ES_EV_OK, ES_EV_EMPTY when no hit is left, ES_EV_EINVAL on bad arguments
 * (bin_frames <= 0, window_bins < 1, block_bins < 1, offsets out of range, run ends out of
 * order, work_len < 2 * n, an unknown method, dense_limit < 0). Never allocates.
 */
int es_ev_score(const es_ev_hits *hits, double since, long long mute_track, double mute_before,
                double bin_frames, int window_bins, int block_bins, int tail_min,
                unsigned long long *work, long long work_len, int method, int dense_limit,
                es_ev_result *out);

/**
 * The offsets t_ref - t_q (double) of the hits es_ev_score counted in one cell: same
 * filters, track id == cell_track, bin in [bin, bin + window_bins). Writes at most cap;
 * returns how many hits there are (not their weight: at most the cell's count).
 */
long long es_ev_cell_offsets(const es_ev_hits *hits, double since, long long mute_track,
                             double mute_before, double bin_frames, int window_bins, unsigned int cell_track,
                             long long bin, double *out, long long cap);

/**
 * Rolling counts: a window's dense histogram kept between scorings, so that a window
 * scored every half second (a listener waiting for a song) counts each hit twice in its
 * life (when it joins, when it leaves) instead of at every scoring. Scored, it gives what
 * es_ev_score gives on exactly the hits it holds (the dense method's scan of the same counts:
 * the same fields). Its layout covers every track id below n_known (its
 * bins for t_ref from 0 to track_frames[t], or higher when a hit says so) and anchor times
 * up to q_margin past the latest at the build; a hit outside it, a count leaving 0..255
 * or a track id past the layout makes it invalid (build it again).
 */
typedef struct es_ev_roll es_ev_roll;

/** A new, invalid histogram (ES_EV_OK, or ES_EV_EINVAL when out of memory). */
int es_ev_roll_new(es_ev_roll **out);
void es_ev_roll_free(es_ev_roll *h);

/**
 * Lay out and count the hits of the runs of `hits` with t_q >= since (the layout from all
 * of them). Returns ES_EV_OK; 1 when not worth it (more than ES_EV_DENSE_LIMIT bins a hit,
 * as es_ev_score's automatic choice), a bound out of range or a count past 255 (invalid
 * then); ES_EV_EINVAL on bad arguments or out of memory.
 */
int es_ev_roll_build(es_ev_roll *h, const es_ev_hits *hits, double since, const unsigned int *track_frames,
                     long long n_known, double q_margin, double bin_frames, int window_bins, int block_bins);

/**
 * Add (sign 1) or take away (sign -1) every hit of the runs of `hits` whose anchor time t_q
 * is in [q_from, q_to). Returns ES_EV_OK; 1 when the histogram is or becomes invalid (a hit
 * it cannot hold); ES_EV_EINVAL on bad arguments.
 */
int es_ev_roll_apply(es_ev_roll *h, const es_ev_hits *hits, int sign, double q_from, double q_to);

/**
 * Score the hits held, as es_ev_score would (method ES_EV_DENSE); `work`: scratch for the
 * null maxima's histogram (2 counters an element). Returns ES_EV_OK, ES_EV_EMPTY (no hit
 * held), 1 when invalid or the best window needs more counters than work holds, or
 * ES_EV_EINVAL.
 */
int es_ev_roll_score(es_ev_roll *h, int tail_min, unsigned long long *work, long long work_len,
                     es_ev_result *out);

/* CFFI-END */

#endif
