/* The matcher's evidence: join and score (see evidence.h). */
#include "evidence.h"

#include <math.h>

#define BIN_LIMIT 4294967296.0 /* |offset bin| < 2^32: the numpy reference's key layout */
#define RADIX_MAX_BITS 12

/* Whether the runs are well formed: ends ascending from `first`, hits fewer than 2^32. */
static int runs_ok(const es_ev_hits *h)
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

static long long hit_count(const es_ev_hits *h)
{
    return h->n_runs ? (long long)h->run_end[h->n_runs - 1] - h->first : 0;
}

/* Whether the hits of run r are scored at all (at or after `since`), and whether the mute
 * applies to them (before mute_before: then hits of mute_track are left out). */
static int run_kept(double q, double since)
{
    return q >= since;
}

static int run_muted(double q, long long mute_track, double mute_before)
{
    return mute_track >= 0 && q < mute_before;
}

static int bit_length(unsigned long long v)
{
    int b = 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}

/* LSD radix sort of a[0..n) over the digits where the keys differ; b is scratch of n.
 * Returns the buffer holding the sorted keys (a or b). */
static unsigned long long *radix_sort(unsigned long long *a, unsigned long long *b, long long n)
{
    unsigned long long diff = 0;
    for (long long i = 1; i < n; i++)
        diff |= a[i] ^ a[0];
    int bits = bit_length(diff);
    if (bits == 0)
        return a;
    int passes = (bits + RADIX_MAX_BITS - 1) / RADIX_MAX_BITS;
    int width = (bits + passes - 1) / passes;
    unsigned long long mask = (1ULL << width) - 1;
    long long count[1 << RADIX_MAX_BITS];
    for (int shift = 0; shift < bits; shift += width) {
        if (((diff >> shift) & mask) == 0)
            continue;
        for (unsigned long long d = 0; d <= mask; d++)
            count[d] = 0;
        for (long long i = 0; i < n; i++)
            count[(a[i] >> shift) & mask]++;
        long long pos = 0;
        for (unsigned long long d = 0; d <= mask; d++) {
            long long c = count[d];
            count[d] = pos;
            pos += c;
        }
        for (long long i = 0; i < n; i++)
            b[count[(a[i] >> shift) & mask]++] = a[i];
        unsigned long long *t = a;
        a = b;
        b = t;
    }
    return a;
}

/* 1 / x when that is exact (x a power of two), else 0: x * (1 / x) then rounds exactly as
 * a division by x (both are the correctly rounded value of the same real number). */
static double exact_reciprocal(double x)
{
    int e;
    if (!(x > 0.0) || frexp(x, &e) != 0.5)
        return 0.0;
    double r = ldexp(1.0, 1 - e);
    return isnormal(r) && r * x == 1.0 ? r : 0.0;
}

/* floor((bin + 2^32) / block_bins): the block index of an offset bin, as the reference. */
static long long block_of(long long bin, int block_bins)
{
    return (long long)((unsigned long long)(bin + (1LL << 32)) / (unsigned long long)block_bins);
}

int es_ev_score(const es_ev_hits *hits, double since, long long mute_track, double mute_before,
                double bin_frames, int window_bins, int block_bins, int tail_min,
                unsigned long long *work, es_ev_result *out)
{
    if (!out || !runs_ok(hits) || !(bin_frames > 0) || window_bins < 1 || block_bins < 1 ||
        tail_min < 0 || (hits->n_runs > 0 && !work))
        return ES_EV_EINVAL;
    es_ev_result r = {0, 0, 0, 0, 0, 0, 0, 0};
    *out = r;
    const long long n = hit_count(hits);
    const unsigned int *track = hits->track, *t_ref = hits->t_ref;

    /* 1. the offset bin of every kept hit (and its track, in the other half), and the
     * ranges that fix the key layout */
    const double inv_bin = exact_reciprocal(bin_frames);
    long long m = 0, lo = 0, hi = 0;
    unsigned int max_track = 0;
    for (long long run = 0, i = hits->first; run < hits->n_runs; run++) {
        const long long end = hits->run_end[run];
        const double q = (double)hits->run_t[run];
        if (!run_kept(q, since)) {
            i = end;
            continue;
        }
        const int muted = run_muted(q, mute_track, mute_before);
        for (; i < end; i++) {
            if (muted && (long long)track[i] == mute_track)
                continue;
            double off = (double)t_ref[i] - q;
            double bin_f = floor(inv_bin > 0.0 ? off * inv_bin : off / bin_frames);
            if (!(fabs(bin_f) < BIN_LIMIT))
                return ES_EV_EINVAL;
            long long bin = (long long)bin_f;
            if (m == 0 || bin < lo)
                lo = bin;
            if (m == 0 || bin > hi)
                hi = bin;
            if (track[i] > max_track)
                max_track = track[i];
            work[n + m] = track[i];
            work[m++] = (unsigned long long)bin;
        }
    }
    if (m == 0)
        return ES_EV_EMPTY;
    /* key = track << shift | (bin - lo): sorted like the reference's (track, bin) keys, and
     * key + window_bins - 1 never reaches the next track */
    int shift = bit_length((unsigned long long)(hi - lo) + (unsigned long long)window_bins);
    if (shift + bit_length(max_track) > 64)
        return ES_EV_EINVAL;
    unsigned long long rel_mask = (1ULL << shift) - 1;
    for (long long j = 0; j < m; j++)
        work[j] = (work[n + j] << shift) | (unsigned long long)((long long)work[j] - lo);

    /* 2. sort; distinct keys (in place) with their counts in the other half */
    unsigned long long *keys = radix_sort(work, work + n, m);
    unsigned long long *other = keys == work ? work + n : work;
    /* branch-free (duplicates are unpredictable): each run's key is written over the slot
     * after the last run, with its first index; the counts are then the starts' gaps */
    long long u = 0;
    for (long long i = 0; i < m; i++) {
        unsigned long long key = keys[i];
        int fresh = u == 0 || key != keys[u - 1];
        keys[u] = key;
        other[u] = (unsigned long long)i;
        u += fresh;
    }
    for (long long r = 0; r < u; r++)
        other[r] = (r + 1 < u ? other[r + 1] : (unsigned long long)m) - other[r];

    /* 3. windows (over the counts, in place) and the best: the first largest in key order.
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

    /* 4. each block's largest window, the best's neighbourhood left out (null sample, in
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

    /* 5. the tail: a histogram of the null maxima (each <= best_window <= m), read from the
     * top; `keys` is free now and holds at least m + 1 counters of 32 bits */
    long long k = n_null / 20 > tail_min ? n_null / 20 : tail_min;
    if (k > n_null)
        k = n_null;
    unsigned int *hist = (unsigned int *)keys;
    for (unsigned long long v = 0; v <= best_window; v++)
        hist[v] = 0;
    for (long long i = 0; i < n_null; i++)
        hist[other[i]]++;
    long long rank = 0, top_sum = 0, u_value = 0;
    for (long long v = (long long)best_window; v >= 0 && rank <= k; v--) {
        long long h = hist[v];
        if (h == 0)
            continue;
        long long take = k - rank < h ? k - rank : h;
        top_sum += take * v;
        if (rank <= k && k < rank + h)
            u_value = v;
        rank += h;
    }
    r.track = best_track;
    r.bin = best_bin;
    r.count = (long long)best_window;
    r.n_null = n_null;
    r.k = k;
    r.u = k < n_null ? u_value : 0;
    r.top_sum = top_sum;
    r.kept = m;
    *out = r;
    return ES_EV_OK;
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
    for (long long run = 0, i = hits->first; run < hits->n_runs; run++) {
        const long long end = hits->run_end[run];
        const double q = (double)hits->run_t[run];
        int muted = run_muted(q, mute_track, mute_before) && (long long)cell_track == mute_track;
        if (!run_kept(q, since) || muted) {
            i = end;
            continue;
        }
        for (; i < end; i++) {
            if (track[i] != cell_track)
                continue;
            double off = (double)t_ref[i] - q;
            double b = floor(inv_bin > 0.0 ? off * inv_bin : off / bin_frames);
            if (b >= (double)bin && b < (double)bin + window_bins) {
                if (found < cap)
                    out[found] = off;
                found++;
            }
        }
    }
    return found;
}

static unsigned int be32(const unsigned char *p)
{
    return ((unsigned int)p[0] << 24) | ((unsigned int)p[1] << 16) | ((unsigned int)p[2] << 8) |
           (unsigned int)p[3];
}

int es_ev_runs(const unsigned char *postings, long long n_postings, const unsigned int *keys,
               long long n_keys, long long *starts)
{
    long long j = 0;
    for (long long i = 0; i < n_keys; i++) {
        starts[i] = j;
        while (j < n_postings && be32(postings + 12 * j) == keys[i])
            j++;
    }
    starts[n_keys] = j;
    return j == n_postings ? ES_EV_OK : ES_EV_EINVAL;
}

void es_ev_widen(const unsigned char *raw, long long n, unsigned char *out)
{
    for (long long i = 0; i < n; i++, raw += 10, out += 12) {
        out[0] = raw[0], out[1] = raw[1], out[2] = raw[2], out[3] = raw[3];
        out[4] = 0, out[5] = raw[4], out[6] = raw[5], out[7] = raw[6];
        out[8] = 0, out[9] = raw[7], out[10] = raw[8], out[11] = raw[9];
    }
}

/* Index of hash h in keys[0..n) (ascending), or -1. */
static long long find_key(const unsigned int *keys, long long n, unsigned int h)
{
    long long lo = 0, hi = n;
    while (lo < hi) {
        long long mid = lo + (hi - lo) / 2;
        if (keys[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && keys[lo] == h ? lo : -1;
}

long long es_ev_join(const unsigned char *postings, const unsigned int *keys, long long n_keys,
                     const long long *starts, const unsigned int *hashes, const float *times,
                     long long n_hashes, long long max_postings, unsigned int *out_track,
                     unsigned int *out_t_ref, float *out_run_t, unsigned int *out_run_end,
                     long long base, long long cap, long long run_cap, long long *n_runs)
{
    long long found = 0, runs = 0;
    float last = 0.0f;
    for (long long i = 0; i < n_hashes; i++) {
        long long k = find_key(keys, n_keys, hashes[i]);
        if (k < 0)
            continue;
        long long a = starts[k], b = starts[k + 1];
        if (b <= a || (max_postings > 0 && b - a > max_postings))
            continue;
        int fresh = runs == 0 || !(times[i] == last);   /* a NaN time is a run of its own */
        runs += fresh;
        last = times[i];
        if (found + (b - a) <= cap && runs <= run_cap) {
            for (long long j = a; j < b; j++) {
                out_track[found + j - a] = be32(postings + 12 * j + 4);
                out_t_ref[found + j - a] = be32(postings + 12 * j + 8);
            }
            out_run_t[runs - 1] = times[i];
            out_run_end[runs - 1] = (unsigned int)(base + found + (b - a));
        }
        found += b - a;
    }
    if (n_runs)
        *n_runs = runs;
    return found;
}

long long es_ev_near(const es_ev_hits *hits, double since, unsigned int track_id, double offset,
                     double tolerance, double *out, long long cap, long long *of_track)
{
    long long near = 0, all = 0;
    if (runs_ok(hits)) {
        const unsigned int *track = hits->track, *t_ref = hits->t_ref;
        for (long long run = 0, i = hits->first; run < hits->n_runs; run++) {
            const long long end = hits->run_end[run];
            const double q = (double)hits->run_t[run];
            if (!run_kept(q, since)) {
                i = end;
                continue;
            }
            for (; i < end; i++) {
                if (track[i] != track_id)
                    continue;
                all++;
                if (fabs(((double)t_ref[i] - q) - offset) <= tolerance) {
                    if (near < cap)
                        out[near] = q;
                    near++;
                }
            }
        }
    }
    if (of_track)
        *of_track = all;
    return near;
}
