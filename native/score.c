/* The offset histogram's best cell and its null statistics (see score.h). */
#include "score.h"

#include "hit_runs.h"
#include "radix.h"

#include <limits.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#define DENSE_MAX_WINDOW 64     /* ... and windows this short (their sums are 32 bits) */
#define DENSE_CHUNK 256         /* bins a dense scan step windows at once */

/* floor((bin + 2^32) / block_bins): the block index of an offset bin, as the reference. */
static long long block_of(long long bin, int block_bins)
{
    return (long long)((unsigned long long)(bin + (1LL << 32)) / (unsigned long long)block_bins);
}

/* The kept hits: their offset bins in work[0..m) and track words (id and weight) in
 * work[n..n + m), the ranges that fix a histogram's layout, and whether any weighs more than 1. */
typedef struct {
    long long n, m, lo, hi;
    unsigned int max_track, heavy;
} kept_hits;

#define WEIGHT_BITS 4   /* bits of (weight - 1) in a sorting key: ES_EV_MAX_WEIGHT is 16 */

/* The sorting method's first step: the offset bin and track of every hit the filters keep. */
static int collect(const es_ev_hits *hits, double since, long long mute_track, double mute_before,
                   double bin_frames, unsigned long long *work, kept_hits *kh)
{
    const long long n = hit_count(hits);
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;
    const double inv_bin = exact_reciprocal(bin_frames);
    long long m = 0, lo = LLONG_MAX, hi = LLONG_MIN;
    unsigned int max_track = 0, heavy = 0;
    kept_runs k = kept_runs_of(hits, since, mute_track, mute_before);
    kept_run run;
    while (next_kept_run(&k, &run)) {
        for (long long i = run.begin; i < run.end; i++) {
            const unsigned int id = hit_track(track[i]);
            if ((long long)id == run.left_out)
                continue;
            long long bin;
            if (!floor_bin(in_bins((double)t_ref[i] - run.q, inv_bin, bin_frames), &bin))
                return ES_EV_EINVAL;
            lo = bin < lo ? bin : lo;
            hi = bin > hi ? bin : hi;
            max_track = id > max_track ? id : max_track;
            heavy |= track[i] >> ES_EV_TRACK_BITS;
            work[n + m] = track[i];
            work[m++] = (unsigned long long)bin;
        }
    }
    if (heavy >= ES_EV_MAX_WEIGHT)
        return ES_EV_EINVAL;   /* a weight the keys have no room for */
    kh->n = n, kh->m = m, kh->lo = lo, kh->hi = hi, kh->max_track = max_track, kh->heavy = heavy != 0;
    return m ? ES_EV_OK : ES_EV_EMPTY;
}

/* The last step of both methods: the tail of the n_null null maxima, from their histogram
 * hist[0..top] read from the top. */
static void tail_stats(const unsigned int *hist, unsigned long long top, long long n_null, int tail_min,
                       es_ev_result *r)
{
    long long k = n_null / 20 > tail_min ? n_null / 20 : tail_min;
    if (k > n_null)
        k = n_null;
    long long rank = 0, top_sum = 0, u_value = 0;
    for (long long v = (long long)top; v >= 0 && rank <= k; v--) {
        long long h = hist[v];
        if (h == 0)
            continue;
        long long take = k - rank < h ? k - rank : h;
        top_sum += take * v;
        if (rank <= k && k < rank + h)
            u_value = v;
        rank += h;
    }
    r->n_null = n_null;
    r->k = k;
    r->u = k < n_null ? u_value : 0;
    r->top_sum = top_sum;
}

/* The tail of the n_null null maxima in v[0..n_null) when their histogram does not fit (weighted
 * hits: the maxima may exceed the hits): v radix-sorted (scratch of n_null), read from the top. */
static void tail_stats_sorted(unsigned long long *v, unsigned long long *scratch, long long n_null,
                              int tail_min, es_ev_result *r)
{
    const unsigned long long *asc = n_null ? radix_sort(v, scratch, n_null) : v;
    long long k = n_null / 20 > tail_min ? n_null / 20 : tail_min;
    if (k > n_null)
        k = n_null;
    long long top_sum = 0;
    for (long long i = 0; i < k; i++)
        top_sum += (long long)asc[n_null - 1 - i];
    r->n_null = n_null;
    r->k = k;
    r->u = k < n_null ? (long long)asc[n_null - 1 - k] : 0;
    r->top_sum = top_sum;
}

/* The sorting method: keys (track, bin) radix-sorted, counted (each hit its weight), windowed,
 * blocked. */
static int score_sorted(const kept_hits *kh, int window_bins, int block_bins, int tail_min, unsigned long long *work,
                        es_ev_result *r)
{
    const long long n = kh->n, m = kh->m, lo = kh->lo;
    /* key = track << shift | (bin - lo): sorted like the reference's (track, bin) keys, and
     * key + window_bins - 1 never reaches the next track */
    int shift = bit_length((unsigned long long)(kh->hi - lo) + (unsigned long long)window_bins);
    /* weighted hits carry (weight - 1) below the key, so that it travels with it */
    const int wbits = kh->heavy ? WEIGHT_BITS : 0;
    if (shift + bit_length(kh->max_track) + wbits > 64)
        return ES_EV_EINVAL;
    unsigned long long rel_mask = (1ULL << shift) - 1, wmask = (1ULL << wbits) - 1;
    for (long long j = 0; j < m; j++) {
        const unsigned int word = (unsigned int)work[n + j];
        unsigned long long key = ((unsigned long long)hit_track(word) << shift) |
                                 (unsigned long long)((long long)work[j] - lo);
        work[j] = (key << wbits) | (unsigned long long)(hit_weight(word) - 1);
    }

    /* sort; distinct keys (in place) with their weighted counts in the other half */
    unsigned long long *keys = radix_sort(work, work + n, m);
    unsigned long long *other = keys == work ? work + n : work;
    /* branch-free (duplicates are unpredictable): a hit of a new key opens the slot after
     * the last run, one of the same key adds its weight to that run's */
    long long u = 0;
    unsigned long long weight = 0;
    for (long long i = 0; i < m; i++) {
        const unsigned long long key = keys[i] >> wbits, w = (keys[i] & wmask) + 1;
        weight += w;
        const int fresh = u == 0 || key != keys[u - 1];
        u += fresh;
        keys[u - 1] = key;
        other[u - 1] = (other[u - 1] & (0ULL - (unsigned long long)!fresh)) + w;
    }

    /* windows (over the counts, in place) and the best: the first largest in key order.
     * Keys are distinct and ascending, so keys[i + d] - keys[i] >= d: only the next
     * window_bins - 1 keys can fall in key i's window, and each that does is counted. */
    long long best = 0;
    unsigned long long best_window = 0;
    const unsigned long long wb = (unsigned long long)window_bins;
    for (long long i = 0; i < u; i++) {
        unsigned long long w = other[i];
        long long last = i + window_bins - 1 < u - 1 ? i + window_bins - 1 : u - 1;
        for (long long j = i + 1; j <= last; j++)
            w += other[j] & (0ULL - (unsigned long long)(keys[j] - keys[i] < wb));  /* no branch */
        other[i] = w;
        if (w > best_window) {
            best_window = w;
            best = i;
        }
    }
    unsigned int best_track = (unsigned int)(keys[best] >> shift);
    long long best_bin = (long long)(keys[best] & rel_mask) + lo;
    long long own_block = block_of(best_bin, block_bins);

    /* each block's largest window, the best's neighbourhood left out (null sample, in
     * place at the front of `other`) */
    long long n_null = 0;
    const unsigned long long rel_span = 1ULL << shift;
    for (long long i = 0; i < u;) {
        unsigned int t = (unsigned int)(keys[i] >> shift);
        long long blk = block_of((long long)(keys[i] & rel_mask) + lo, block_bins);
        /* the block's end as a relative bin: one division a block, not one a key */
        long long end_bin = (blk + 1) * (long long)block_bins - (1LL << 32);
        unsigned long long end_rel = (unsigned long long)(end_bin - lo);
        if (end_rel > rel_span)
            end_rel = rel_span;
        unsigned long long mx = other[i];
        long long j = i + 1;
        for (; j < u && (unsigned int)(keys[j] >> shift) == t && (keys[j] & rel_mask) < end_rel; j++)
            mx = other[j] > mx ? other[j] : mx;
        long long d = blk - own_block;
        if (!(t == best_track && d >= -1 && d <= 1))
            other[n_null++] = mx;
        i = j;
    }

    /* the tail: a histogram of the null maxima (each <= best_window, which is at most m
     * unless hits weigh more); `keys` is free now and holds 2 n counters of 32 bits */
    if (best_window + 1 <= 2ULL * (unsigned long long)n) {
        unsigned int *hist = (unsigned int *)keys;
        for (unsigned long long v = 0; v <= best_window; v++)
            hist[v] = 0;
        for (long long i = 0; i < n_null; i++)
            hist[other[i]]++;
        tail_stats(hist, best_window, n_null, tail_min, r);
    } else {
        tail_stats_sorted(other, keys, n_null, tail_min, r);
    }
    r->track = best_track;
    r->bin = best_bin;
    r->count = (long long)best_window;
    r->weight = (long long)weight;
    r->method = ES_EV_SORT;
    return ES_EV_OK;
}

/* One chunk of a track's dense counts d[0..len + window_bins - 1): s[c] = the window of
 * bin c (d[c] + .. + d[c + window_bins - 1]) where d[c] > 0, else 0. Returns the largest.
 * Counts of 8 bits, windows of at most 64 of them: 16-bit lanes hold them (8 a vector);
 * loops over whole chunks so that they vectorise. */
static int window_chunk(const unsigned char *d, int len, int window_bins, short *s)
{
    for (int c = 0; c < len; c++)
        s[c] = d[c];
    for (int k = 1; k < window_bins; k++)
        for (int c = 0; c < len; c++)
            s[c] = (short)(s[c] + d[c + k]);
    short mx = 0;
    for (int c = 0; c < len; c++) {
        short v = d[c] ? s[c] : 0;
        s[c] = v;
        mx = v > mx ? v : mx;
    }
    return mx;
}

/* window_chunk's largest window where no window can pass 255 (every count it reads, the
 * chunk's and the window_bins - 1 after it, at most 255 / window_bins: nearly every block
 * of a catalog of hours), in 8-bit lanes: twice the bins a vector and nothing widened.
 * Returns -1 when a count is too large for it or a window is one bin (window_chunk then);
 * the place of the largest is window_chunk's to find. */
static inline int window_chunk_u8(const unsigned char *d, int len, int window_bins)
{
    if (window_bins < 2)
        return -1;
    const int span = len + window_bins - 1;
    unsigned char big = 0;
    for (int c = 0; c < span; c++)
        big = d[c] > big ? d[c] : big;
    if ((int)big * window_bins > 255)
        return -1;
    unsigned char s[DENSE_CHUNK];
    /* the first two bins in one pass (a plain copy would become a slow short memcpy) */
    for (int c = 0; c < len; c++)
        s[c] = (unsigned char)(d[c] + d[c + 1]);
    for (int k = 2; k < window_bins; k++)
        for (int c = 0; c < len; c++)
            s[c] = (unsigned char)(s[c] + d[c + k]);
    unsigned char mx = 0;
    for (int c = 0; c < len; c++) {
        const unsigned char v = (unsigned char)(s[c] & -(d[c] != 0));   /* bins with hits */
        mx = v > mx ? v : mx;
    }
    return mx;
}

/* The dense method's layout: per track (t < n_tracks) its first bin `origin` (a block's
 * start), where its counts begin in the dense array and how many blocks it spans; its
 * counts are followed by window_bins - 1 zeros, so a window never reaches the next track. */
typedef struct {
    long long origin, base, blocks;
} dense_track;

/* The dense method's scratch, in work: the tail's histogram (n + 2 counters of 32 bits:
 * the null maxima are at most m <= n), the tracks, the counts, each block's largest window. */
typedef struct {
    long long n_tracks, cells, blocks, need, n_hist;
    long long t_ref_max;   /* the largest t_ref stored (see int_shift) */
    dense_track *tab;
    unsigned char *cnt;
    unsigned int *bmax, *hist;
} dense_layout;

/* One track's place in a dense layout: the blocks that hold its offsets off_lo .. off_hi
 * (frames), starting at count *c, which moves past them and the window's padding. Returns
 * 0 when a bound's bin is out of range. */
static int place_span(dense_track *e, double off_lo, double off_hi, double inv_bin, double bin_frames,
                      int block_bins, int window_bins, long long *c)
{
    long long lo, hi;
    if (!floor_bin(in_bins(off_lo, inv_bin, bin_frames), &lo) ||
        !floor_bin(in_bins(off_hi, inv_bin, bin_frames), &hi))
        return 0;
    long long first = block_of(lo, block_bins), last = block_of(hi, block_bins);
    e->origin = first * block_bins - (1LL << 32);
    e->base = *c;
    e->blocks = last - first + 1;
    *c += e->blocks * block_bins + window_bins - 1;
    return 1;
}

/* Bounds of the tracks' spans of offset bins (one pass over the hits in integers, no
 * filter: a span is at most the window's spread of t_q wider than that of the kept hits) and
 * the scratch they need. Returns ES_EV_OK, ES_EV_EMPTY (no run kept), or 1 when the dense
 * method is not worth it (more than `limit` bins a hit, unless forced), does not
 * fit in work (d->need says how much it would take), or a bound is out of range. */
static int dense_plan(const es_ev_hits *hits, double since, double bin_frames, int window_bins,
                      int block_bins, int method, long long limit, unsigned long long *work,
                      long long work_len, dense_layout *d)
{
    const long long n = hit_count(hits);
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;
    /* tracks are below the next power of two above their bitwise or (a loop that vectorises) */
    unsigned int any = 0;
    for (long long i = hits->first; i < hits->first + n; i++)
        any |= hit_track(track[i]);
    const long long n_tracks = any ? 1LL << bit_length(any) : 1;
    const long long hist_len = (n + 2 + 1) / 2;
    d->n_tracks = n_tracks, d->need = 0;
    if (window_bins > DENSE_MAX_WINDOW || (method != ES_EV_DENSE && 3 * n_tracks > limit * n))
        return 1;
    if (hist_len + 3 * n_tracks > work_len) {
        d->need = hist_len + 3 * n_tracks;   /* at least */
        return 1;
    }
    dense_track *tab = (dense_track *)(work + hist_len);
    for (long long t = 0; t < n_tracks; t++)
        tab[t].origin = 1LL << 40, tab[t].base = -1, tab[t].blocks = 0;
    /* each track's lowest and highest t_ref (for a moment in origin and base) over every hit
     * stored, in integers: with the kept runs' earliest and latest t_q they bound the bins of
     * the track's kept hits (the offset's rounding, the product and floor are monotone) */
    for (long long i = hits->first; i < hits->first + n; i++) {
        dense_track *e = tab + hit_track(track[i]);
        long long x = t_ref[i];
        e->origin = x < e->origin ? x : e->origin;
        e->base = x > e->base ? x : e->base;
    }
    double q_lo = INFINITY, q_hi = -INFINITY;
    for (long long run = 0; run < hits->n_runs; run++) {
        const double q = (double)hits->run_t[run];
        if (run_kept(q, since)) {
            q_lo = q < q_lo ? q : q_lo;
            q_hi = q > q_hi ? q : q_hi;
        }
    }
    if (!(q_lo <= q_hi))
        return ES_EV_EMPTY;
    const double inv_bin = exact_reciprocal(bin_frames);
    const long long budget = method == ES_EV_DENSE ? (1LL << 40) : limit * n;
    long long c = 0, b = 0;
    d->t_ref_max = -1;
    for (long long t = 0; t < n_tracks; t++) {
        dense_track *e = tab + t;
        if (e->base < 0)
            continue;
        d->t_ref_max = e->base > d->t_ref_max ? e->base : d->t_ref_max;
        if (!place_span(e, (double)e->origin - q_hi, (double)e->base - q_lo, inv_bin, bin_frames,
                        block_bins, window_bins, &c))
            return 1;   /* a bound out of range: sorting checks every hit */
        b += e->blocks;
        if (c + 3 * n_tracks > budget)
            return 1;
    }
    d->cells = c, d->blocks = b;
    d->need = hist_len + 3 * n_tracks + (c + 7) / 8 + (b + 1) / 2;
    if (d->need > work_len)
        return 1;
    d->hist = (unsigned int *)work;
    d->n_hist = n + 2;
    d->tab = tab;
    d->cnt = (unsigned char *)(work + hist_len + 3 * n_tracks);
    d->bmax = (unsigned int *)(work + hist_len + 3 * n_tracks + (c + 7) / 8);
    return ES_EV_OK;
}

/* Offset bins in integers where that is exact: with bin_frames = 2^shift and an integer
 * t_ref, floor((t_ref - q) / bin_frames) = (t_ref - ceil(q)) >> shift (no multiple of
 * bin_frames lies strictly between two integers), and the double arithmetic of the float
 * path (and of the numpy reference) computes that same floor when t_ref - q is exact in a
 * double: t_ref < 2^29 and q a float (run_t) with |q| >= 1 (its lowest bit >= 2^-23) or
 * integral (run_exact_int). Returns the shift, or -1: bins in floating point. */
static int int_shift(double bin_frames, long long t_ref_max)
{
    if (t_ref_max < 0 || t_ref_max >= (1LL << 29))
        return -1;
    for (int s = 0; s < 16; s++)
        if (bin_frames == (double)(1 << s))
            return s;
    return -1;
}

static int run_exact_int(double q)
{
    const double a = fabs(q);
    return a < 1099511627776.0 && (a >= 1.0 || q == floor(q));   /* |q| < 2^40: ceil fits */
}

/* One kept run's hits counted into the dense array with integer bins (see int_shift; cq =
 * ceil(q)); returns their weight, adds their number to *kept, sets *over on a count past
 * 255 or a bin outside the plan. In batches: where each hit counts first (prefetched),
 * then the counts, so that their cache misses overlap (a live window's counts are ~1.3 MB,
 * read at random: ~8 % faster scoring than one loop). */
static long long count_run_int(const unsigned int *track, const unsigned int *t_ref, const kept_run *run,
                               long long cq, int shift, int block_bins, const dense_track *tab,
                               unsigned char *cnt, unsigned int *over, long long *kept)
{
    enum { BATCH = 64 };
    const long long left_out = run->left_out, bin_int = 1LL << shift;
    long long weight = 0, skipped = 0;
    unsigned int ov = 0;
    long long at[BATCH];
    unsigned int wt[BATCH];
    for (long long i0 = run->begin; i0 < run->end; i0 += BATCH) {
        const int len = run->end - i0 < BATCH ? (int)(run->end - i0) : BATCH;
        /* where each hit counts, first (the counts' cache misses then overlap) */
        int k = 0;
        for (int j = 0; j < len; j++) {
            const unsigned int word = track[i0 + j], id = hit_track(word);
            if ((long long)id == left_out)
                continue;
            const dense_track *e = tab + id;
            const unsigned long long rel = (unsigned long long)((long long)t_ref[i0 + j] - cq - e->origin * bin_int);
            if (rel >= ((unsigned long long)(e->blocks * block_bins) << shift)) {   /* never: planned */
                ov = 1;
                continue;
            }
            at[k] = e->base + (long long)(rel >> shift);
            __builtin_prefetch(cnt + at[k], 1);
            wt[k++] = hit_weight(word);
        }
        skipped += len - k;
        for (int j = 0; j < k; j++) {
            const unsigned int v = cnt[at[j]] + wt[j];
            cnt[at[j]] = (unsigned char)v;
            ov |= v > 255;
            weight += wt[j];
        }
    }
    *over |= ov;
    *kept += run->end - run->begin - skipped;
    return weight;
}

/* The dense method's second half, over counts laid out as L says (L->cnt, each track's
 * blocks contiguous and followed by window_bins - 1 zeros): windows and each block's
 * largest (L->bmax, in key order), the first largest, the null maxima's histogram
 * (L->hist, L->n_hist counters) and the tail. Fills r but for kept and weight. Returns
 * ES_EV_OK, or 1 when the best window needs more counters than L->n_hist. */
static int dense_scan(const dense_layout *Lp, int window_bins, int block_bins, int tail_min, es_ev_result *r)
{
    const dense_layout L = *Lp;
    /* windows and each block's largest (bmax, in key order), and the first largest */
    short s[DENSE_CHUNK];
    unsigned int best_window = 0, best_track = 0;
    long long best_bin = 0, own_block = 0, bi = 0;
    for (long long t = 0; t < L.n_tracks; t++) {
        const dense_track *e = L.tab + t;
        for (long long b = 0; b < e->blocks; b++) {
            const unsigned char *d = L.cnt + e->base + b * block_bins;
            unsigned int mx = 0;
            for (int c0 = 0; c0 < block_bins; c0 += DENSE_CHUNK) {
                int len = block_bins - c0 < DENSE_CHUNK ? block_bins - c0 : DENSE_CHUNK;
                /* the default layout (64-bin blocks, 4-bin windows) with its sizes known
                 * to the compiler: its loops unrolled, no remainder */
                int small = len == 64 && window_bins == 4 ? window_chunk_u8(d + c0, 64, 4)
                                                          : window_chunk_u8(d + c0, len, window_bins);
                unsigned int cm = (unsigned int)(small >= 0 ? small : window_chunk(d + c0, len, window_bins, s));
                if (cm > best_window) {
                    if (small >= 0)
                        window_chunk(d + c0, len, window_bins, s);   /* where it is */
                    int c = 0;
                    while ((unsigned int)s[c] != cm)
                        c++;
                    best_window = cm;
                    best_track = (unsigned int)t;
                    best_bin = e->origin + b * block_bins + c0 + c;
                    own_block = block_of(best_bin, block_bins);
                }
                mx = cm > mx ? cm : mx;
            }
            L.bmax[bi++] = mx;
        }
    }

    /* the null maxima's histogram (n + 2 counters: weighted maxima above that are left to
     * sorting): blocks with hits, the best's neighbourhood left out */
    if ((long long)best_window + 1 > L.n_hist)
        return 1;
    for (unsigned int v = 0; v <= best_window; v++)
        L.hist[v] = 0;
    long long n_null = 0;
    bi = 0;
    for (long long t = 0; t < L.n_tracks; t++) {
        const dense_track *e = L.tab + t;
        long long first = e->blocks ? block_of(e->origin, block_bins) : 0;
        for (long long b = 0; b < e->blocks; b++) {
            unsigned int mx = L.bmax[bi++];
            long long dist = first + b - own_block;
            if (mx == 0 || ((unsigned int)t == best_track && dist >= -1 && dist <= 1))
                continue;
            L.hist[mx]++;
            n_null++;
        }
    }
    tail_stats(L.hist, best_window, n_null, tail_min, r);
    r->track = best_track;
    r->bin = best_bin;
    r->count = best_window;
    r->method = ES_EV_DENSE;
    return ES_EV_OK;
}

/* The dense method: counts in an array of bins per track, each block's bins contiguous;
 * windows and block maxima are then short scans, and nothing is sorted or stored per hit.
 * Same results as score_sorted. Returns ES_EV_OK, ES_EV_EMPTY as es_ev_score, or 1 when the
 * dense method cannot be used (see dense_plan; or a bin weighing 256): out-of-range
 * offsets are left to sorting, which finds them hit by hit. */
static int score_dense(const es_ev_hits *hits, double since, long long mute_track, double mute_before,
                       double bin_frames, int window_bins, int block_bins, int tail_min, int method,
                       long long limit, unsigned long long *work, long long work_len, es_ev_result *r)
{
    dense_layout L;
    int rc = dense_plan(hits, since, bin_frames, window_bins, block_bins, method, limit, work,
                        work_len, &L);
    r->dense_need = L.need;
    if (rc != ES_EV_OK)
        return rc;
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;
    const double inv_bin = exact_reciprocal(bin_frames);
    memset(L.cnt, 0, (size_t)L.cells * sizeof *L.cnt);
    unsigned int over = 0;
    long long m = 0, weight = 0;
    kept_runs k = kept_runs_of(hits, since, mute_track, mute_before);
    kept_run run;
    const int shift = int_shift(bin_frames, L.t_ref_max);
    while (next_kept_run(&k, &run)) {
        if (shift >= 0 && run_exact_int(run.q)) {
            weight += count_run_int(track, t_ref, &run, (long long)ceil(run.q), shift, block_bins,
                                    L.tab, L.cnt, &over, &m);
            continue;
        }
        for (long long i = run.begin; i < run.end; i++) {
            const unsigned int word = track[i], id = hit_track(word);
            if ((long long)id == run.left_out)
                continue;
            long long bin = 0;
            floor_bin(in_bins((double)t_ref[i] - run.q, inv_bin, bin_frames), &bin);   /* in range: planned */
            const dense_track *e = L.tab + id;
            unsigned long long at = (unsigned long long)(bin - e->origin);
            if (at >= (unsigned long long)(e->blocks * block_bins)) {   /* never: planned */
                over = 1;
                continue;
            }
            unsigned char *x = L.cnt + e->base + at;
            const unsigned int w = hit_weight(word), v = *x + w;
            *x = (unsigned char)v;
            over |= v > 255;
            weight += w;
            m++;
        }
    }
    if (over)
        return 1;
    if (m == 0)
        return ES_EV_EMPTY;

    rc = dense_scan(&L, window_bins, block_bins, tail_min, r);
    r->kept = m;
    r->weight = weight;
    return rc;
}

int es_ev_score(const es_ev_hits *hits, double since, long long mute_track, double mute_before,
                double bin_frames, int window_bins, int block_bins, int tail_min,
                unsigned long long *work, long long work_len, int method, int dense_limit,
                es_ev_result *out)
{
    if (!out || !runs_ok(hits) || !(bin_frames > 0) || window_bins < 1 || block_bins < 1 ||
        tail_min < 0 || method < ES_EV_AUTO || method > ES_EV_DENSE || dense_limit < 0 ||
        (hits->n_runs > 0 && (!work || work_len < 2 * hit_count(hits))))
        return ES_EV_EINVAL;
    es_ev_result r = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    *out = r;
    if (hit_count(hits) == 0)
        return ES_EV_EMPTY;
    int rc = 1;
    if (method != ES_EV_SORT)
        rc = score_dense(hits, since, mute_track, mute_before, bin_frames, window_bins, block_bins, tail_min,
                         method, dense_limit > 0 ? dense_limit : ES_EV_DENSE_LIMIT, work, work_len, &r);
    if (rc == 1) {
        kept_hits kh;
        rc = collect(hits, since, mute_track, mute_before, bin_frames, work, &kh);
        if (rc == ES_EV_OK) {
            r.kept = kh.m;
            rc = score_sorted(&kh, window_bins, block_bins, tail_min, work, &r);
        }
    }
    if (rc == ES_EV_OK)
        *out = r;
    return rc;
}

long long es_ev_cell_offsets(const es_ev_hits *hits, double since, long long mute_track,
                             double mute_before, double bin_frames, int window_bins, unsigned int cell_track,
                             long long bin, double *out, long long cap)
{
    if (!runs_ok(hits))
        return 0;
    const double inv_bin = exact_reciprocal(bin_frames);
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;
    long long found = 0;
    kept_runs k = kept_runs_of(hits, since, mute_track, mute_before);
    kept_run run;
    while (next_kept_run(&k, &run)) {
        if ((long long)cell_track == run.left_out)
            continue;   /* every hit of the cell's track in this run is left out */
        for (long long i = run.begin; i < run.end; i++) {
            if (hit_track(track[i]) != cell_track)
                continue;
            double off = (double)t_ref[i] - run.q;
            double b = floor(in_bins(off, inv_bin, bin_frames));
            if (b >= (double)bin && b < (double)bin + window_bins) {
                if (found < cap)
                    out[found] = off;
                found++;
            }
        }
    }
    return found;
}


/* -- rolling counts ------------------------------------------------------------------ */

struct es_ev_roll {
    dense_track *tab;
    unsigned char *cnt;
    unsigned int *bmax;
    long long n_tracks, tab_cap, cells, cnt_cap, blocks, bmax_cap;
    long long m, weight;        /* hits held and their weight */
    double bin_frames;
    int window_bins, block_bins, valid;
};

int es_ev_roll_new(es_ev_roll **out)
{
    if (!out)
        return ES_EV_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? ES_EV_OK : ES_EV_EINVAL;
}

void es_ev_roll_free(es_ev_roll *h)
{
    if (!h)
        return;
    free(h->tab), free(h->cnt), free(h->bmax);
    free(h);
}

/* *p holds at least n elements of `size` bytes (capacity in *cap); 0 when out of memory. */
static int grow(void **p, long long *cap, long long n, size_t size)
{
    if (n <= *cap)
        return 1;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return 0;
    *p = q, *cap = n;
    return 1;
}

int es_ev_roll_build(es_ev_roll *h, const es_ev_hits *hits, double since, const unsigned int *track_frames,
                     long long n_known, double q_margin, double bin_frames, int window_bins, int block_bins)
{
    if (!h || !runs_ok(hits) || !(bin_frames > 0) || window_bins < 1 || window_bins > DENSE_MAX_WINDOW ||
        block_bins < 1 || n_known < 0 || n_known > (1LL << ES_EV_TRACK_BITS) || (n_known && !track_frames) ||
        !(q_margin >= 0))
        return ES_EV_EINVAL;
    h->valid = 0;
    const long long n = hit_count(hits);
    if (n == 0)
        return 1;
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;
    unsigned int any = n_known ? (unsigned int)(n_known - 1) : 0;
    for (long long i = hits->first; i < hits->first + n; i++)
        any |= hit_track(track[i]);
    const long long n_tracks = any ? 1LL << bit_length(any) : 1;
    if (!grow((void **)&h->tab, &h->tab_cap, n_tracks, sizeof *h->tab))
        return ES_EV_EINVAL;
    dense_track *tab = h->tab;
    /* each track's highest t_ref (for a moment in base): its length, or a hit's beyond it */
    for (long long t = 0; t < n_tracks; t++)
        tab[t].origin = 0, tab[t].base = t < n_known ? (long long)track_frames[t] : -1, tab[t].blocks = 0;
    for (long long i = hits->first; i < hits->first + n; i++) {
        dense_track *e = tab + hit_track(track[i]);
        e->base = (long long)t_ref[i] > e->base ? (long long)t_ref[i] : e->base;
    }
    double q_lo = INFINITY, q_hi = -INFINITY;
    for (long long run = 0; run < hits->n_runs; run++) {
        const double q = (double)hits->run_t[run];
        q_lo = q < q_lo ? q : q_lo;
        q_hi = q > q_hi ? q : q_hi;
    }
    q_hi += q_margin;
    const double inv_bin = exact_reciprocal(bin_frames);
    long long c = 0, b = 0;
    for (long long t = 0; t < n_tracks; t++) {
        dense_track *e = tab + t;
        if (e->base < 0)
            continue;
        if (!place_span(e, 0.0 - q_hi, (double)e->base - q_lo, inv_bin, bin_frames, block_bins,
                        window_bins, &c))
            return 1;
        b += e->blocks;
        if (c > ES_EV_DENSE_LIMIT * n)
            return 1;   /* not worth it: sorting the hits is cheaper than scanning this */
    }
    if (!grow((void **)&h->cnt, &h->cnt_cap, c > 0 ? c : 1, 1) ||
        !grow((void **)&h->bmax, &h->bmax_cap, b > 0 ? b : 1, sizeof *h->bmax))
        return ES_EV_EINVAL;
    memset(h->cnt, 0, (size_t)c);
    h->n_tracks = n_tracks, h->cells = c, h->blocks = b;
    h->m = 0, h->weight = 0;
    h->bin_frames = bin_frames, h->window_bins = window_bins, h->block_bins = block_bins;
    h->valid = 1;
    return es_ev_roll_apply(h, hits, 1, since, INFINITY);
}

int es_ev_roll_apply(es_ev_roll *h, const es_ev_hits *hits, int sign, double q_from, double q_to)
{
    if (!h || !runs_ok(hits) || (sign != 1 && sign != -1) || q_from != q_from || q_to != q_to)
        return ES_EV_EINVAL;
    if (!h->valid)
        return 1;
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;
    const double bin_frames = h->bin_frames, inv_bin = exact_reciprocal(bin_frames);
    const long long span_bins = h->block_bins;
    long long dm = 0, dw = 0, i = hits->first;
    int bad = 0;
    for (long long run = 0; run < hits->n_runs; run++) {
        const double q = (double)hits->run_t[run];
        const long long end = hits->run_end[run];
        if (!(q >= q_from && q < q_to))
            i = end;
        for (; i < end; i++) {
            const unsigned int word = track[i], id = hit_track(word);
            long long bin;
            if ((long long)id >= h->n_tracks || !floor_bin(in_bins((double)t_ref[i] - q, inv_bin, bin_frames), &bin)) {
                bad = 1;
                continue;
            }
            const dense_track *e = h->tab + id;
            const unsigned long long at = (unsigned long long)(bin - e->origin);
            if (at >= (unsigned long long)(e->blocks * span_bins)) {
                bad = 1;
                continue;
            }
            unsigned char *x = h->cnt + e->base + (long long)at;
            const int w = (int)hit_weight(word), v = (int)*x + sign * w;
            if (v < 0 || v > 255) {
                bad = 1;
                continue;
            }
            *x = (unsigned char)v;
            dm += sign;
            dw += sign * w;
        }
    }
    h->m += dm, h->weight += dw;
    if (bad)
        h->valid = 0;
    return bad ? 1 : ES_EV_OK;
}

int es_ev_roll_score(es_ev_roll *h, int tail_min, unsigned long long *work, long long work_len,
                     es_ev_result *out)
{
    if (!h || !out || tail_min < 0 || work_len < 0 || (work_len && !work))
        return ES_EV_EINVAL;
    es_ev_result r = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    *out = r;
    if (!h->valid)
        return 1;
    if (h->m == 0)
        return ES_EV_EMPTY;
    dense_layout L;
    memset(&L, 0, sizeof L);
    L.n_tracks = h->n_tracks, L.tab = h->tab, L.cnt = h->cnt, L.bmax = h->bmax;
    L.hist = (unsigned int *)work, L.n_hist = 2 * work_len;
    int rc = dense_scan(&L, h->window_bins, h->block_bins, tail_min, &r);
    if (rc != ES_EV_OK)
        return rc;
    r.kept = h->m, r.weight = h->weight;
    *out = r;
    return ES_EV_OK;
}
