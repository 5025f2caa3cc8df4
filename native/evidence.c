/* The matcher's evidence: postings joined to query hashes, and one track's hits near an
 * offset (see evidence.h; the scoring is in score.c). */
#include "evidence.h"

#include "hit_runs.h"
#include "radix.h"

#include <math.h>

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
    for (long long i = 0; i < n; i++, raw += 10, out += 12)
        es_ev_posting_record(out, raw, raw + 4);
}

void es_ev_disorder(const float *t, long long n, double *latest, double *disorder)
{
    double top = *latest, worst = *disorder;
    for (long long i = 0; i < n; i++) {
        double x = (double)t[i];
        if (top - x > worst)
            worst = top - x;
        if (x > top)
            top = x;
    }
    *latest = top;
    *disorder = worst;
}

long long es_ev_unique(const unsigned int *in, long long n, unsigned int *out,
                       unsigned long long *work)
{
    for (long long i = 0; i < n; i++)
        work[i] = in[i];
    const unsigned long long *asc = radix_sort(work, work + n, n);
    long long m = 0;
    for (long long i = 0; i < n; i++)
        if (m == 0 || out[m - 1] != (unsigned int)asc[i])
            out[m++] = (unsigned int)asc[i];
    return m;
}

/* Fibonacci hashing: the top `bits` bits of h times 2^32 / phi spread even the catalog's
 * structured hash values (band, interval, gap fields) over the table. */
static unsigned int key_slot(unsigned int h, int bits)
{
    return (unsigned int)(h * 2654435769u) >> (32 - bits);
}

int es_ev_key_table(const unsigned int *keys, long long n_keys, unsigned int *slots, int bits)
{
    if (bits < 1 || bits > 31 || n_keys < 0 || n_keys >= ((long long)1 << bits))
        return ES_EV_EINVAL;
    const unsigned int mask = (1u << bits) - 1;
    for (long long i = 0; i < n_keys; i++) {
        unsigned int s = key_slot(keys[i], bits);
        while (slots[s]) {
            if (keys[slots[s] - 1] == keys[i])
                return ES_EV_EINVAL;   /* not distinct */
            s = (s + 1) & mask;
        }
        slots[s] = (unsigned int)(i + 1);
    }
    return ES_EV_OK;
}

/* Index of hash h among the keys (es_ev_key_table's slots), or -1. */
static long long find_key(const unsigned int *keys, const unsigned int *slots, int bits,
                          unsigned int h)
{
    const unsigned int mask = (1u << bits) - 1;
    for (unsigned int s = key_slot(h, bits);; s = (s + 1) & mask) {
        unsigned int v = slots[s];
        if (!v)
            return -1;
        if (keys[v - 1] == h)
            return (long long)v - 1;
    }
}

long long es_ev_join(const unsigned char *postings, const unsigned int *keys,
                     const unsigned int *slots, int slot_bits, const long long *starts,
                     const unsigned int *hashes, const float *times,
                     long long n_hashes, long long max_postings, const unsigned char *weights,
                     long long n_weights, unsigned int *out_track,
                     unsigned int *out_t_ref, float *out_run_t, unsigned int *out_run_end,
                     long long base, long long cap, long long run_cap, long long *n_runs)
{
    long long found = 0, runs = 0;
    float last = 0.0f;
    for (long long i = 0; i < n_hashes; i++) {
        long long k = find_key(keys, slots, slot_bits, hashes[i]);
        if (k < 0)
            continue;
        long long a = starts[k], b = starts[k + 1];
        if (b <= a || (max_postings > 0 && b - a > max_postings))
            continue;
        int fresh = runs == 0 || !(times[i] == last);   /* a NaN time is a run of its own */
        runs += fresh;
        last = times[i];
        if (found + (b - a) <= cap && runs <= run_cap) {
            unsigned int w = 1;
            if (weights && n_weights > 0) {
                w = weights[b - a < n_weights ? b - a : n_weights - 1];
                w = w < 1 ? 1 : w > ES_EV_MAX_WEIGHT ? ES_EV_MAX_WEIGHT : w;
            }
            const unsigned int heavy = (w - 1) << ES_EV_TRACK_BITS;
            for (long long j = a; j < b; j++) {
                out_track[found + j - a] = hit_track(be32(postings + 12 * j + 4)) | heavy;
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
        kept_runs k = kept_runs_of(hits, since, -1, 0.0);
        kept_run run;
        while (next_kept_run(&k, &run)) {
            for (long long i = run.begin; i < run.end; i++) {
                if (hit_track(track[i]) != track_id)
                    continue;
                all++;
                if (fabs(((double)t_ref[i] - run.q) - offset) <= tolerance) {
                    if (near < cap)
                        out[near] = run.q;
                    near++;
                }
            }
        }
    }
    if (of_track)
        *of_track = all;
    return near;
}
