/* Walking a window's hits (es_ev_hits) as every evidence kernel does: the runs the filters
 * keep, and exact offset bins. Internal to native/ (evidence.c and score.c), not part of the
 * extension's interface. */
#ifndef EARSHOT_HIT_RUNS_H
#define EARSHOT_HIT_RUNS_H

#include "evidence.h"

#include <math.h>

#define BIN_LIMIT 4294967296.0 /* |offset bin| < 2^32: the numpy reference's key layout */

/* Whether the runs are well formed: ends ascending from `first`, hits fewer than 2^32. */
static inline int runs_ok(const es_ev_hits *h)
{
    if (!h || h->n_runs < 0 || h->first < 0)
        return 0;
    if (h->n_runs == 0)
        return 1;
    if (!h->track || !h->t_ref || !h->run_t || !h->run_end)
        return 0;
    long long at = h->first;
    for (long long r = 0; r < h->n_runs; r++) {
        if ((long long)h->run_end[r] < at)
            return 0;
        at = h->run_end[r];
    }
    return at - h->first < (1LL << 32);
}

/* A track word's id and weight (see evidence.h). */
static inline unsigned int hit_track(unsigned int word)
{
    return word & ((1u << ES_EV_TRACK_BITS) - 1);
}

static inline unsigned int hit_weight(unsigned int word)
{
    return (word >> ES_EV_TRACK_BITS) + 1;
}

static inline long long hit_count(const es_ev_hits *h)
{
    return h->n_runs ? (long long)h->run_end[h->n_runs - 1] - h->first : 0;
}

/* Whether the hits of run r are scored at all (at or after `since`), and whether the mute
 * applies to them (before mute_before: then hits of mute_track are left out). */
static inline int run_kept(double q, double since)
{
    return q >= since;
}

static inline int run_muted(double q, long long mute_track, double mute_before)
{
    return mute_track >= 0 && q < mute_before;
}

/* The runs the filters keep, one at a time: every kernel walks the hits so. */
typedef struct {
    const es_ev_hits *hits;
    double since, mute_before;
    long long mute_track, run, next; /* the next run, and its first hit */
} kept_runs;

static inline kept_runs kept_runs_of(const es_ev_hits *hits, double since, long long mute_track, double mute_before)
{
    kept_runs k = {hits, since, mute_before, mute_track, 0, hits->first};
    return k;
}

/* One kept run: hits [begin, end) with anchor time q; left_out is the track whose hits the
 * mute leaves out of it (mute_track), or -1 (no track: tracks are unsigned). */
typedef struct {
    long long begin, end, left_out;
    double q;
} kept_run;

/* The next run at or after `since` in *run; 0 when none is left. */
static inline int next_kept_run(kept_runs *k, kept_run *run)
{
    while (k->run < k->hits->n_runs) {
        const long long a = k->next, e = k->hits->run_end[k->run];
        const double t = (double)k->hits->run_t[k->run];
        k->run++;
        k->next = e;
        if (run_kept(t, k->since)) {
            run->begin = a, run->end = e, run->q = t;
            run->left_out = run_muted(t, k->mute_track, k->mute_before) ? k->mute_track : -1;
            return 1;
        }
    }
    return 0;
}

/* 1 / x when that is exact (x a power of two), else 0: x * (1 / x) then rounds exactly as
 * a division by x (both are the correctly rounded value of the same real number). */
static inline double exact_reciprocal(double x)
{
    int e;
    if (!(x > 0.0) || frexp(x, &e) != 0.5)
        return 0.0;
    double r = ldexp(1.0, 1 - e);
    return isnormal(r) && r * x == 1.0 ? r : 0.0;
}

/* floor(x) in *bin when |floor(x)| < 2^32 (the reference's key range; returns 1), else 0.
 * A truncation and a comparison: without SSE4.1, floor() is a sequence with branches. */
static inline int floor_bin(double x, long long *bin)
{
    if (!(x >= -(BIN_LIMIT - 1.0) && x < BIN_LIMIT))
        return 0;
    long long t = (long long)x;
    *bin = t - ((double)t > x);
    return 1;
}

/* off / bin_frames, by the exact reciprocal inv_bin when there is one (exact_reciprocal):
 * the same value either way, a multiplication instead of a division per hit. */
static inline double in_bins(double off, double inv_bin, double bin_frames)
{
    return inv_bin > 0.0 ? off * inv_bin : off / bin_frames;
}

#endif
