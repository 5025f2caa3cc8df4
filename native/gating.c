/* The gates over a growing set of energies (gating.h): exact while every value is kept,
 * then from the 0.01 LU histogram with an error bound. */
#include "gating.h"
#include "loudness.h"

#include <stdlib.h>
#include <string.h>

#define NBINS 10000      /* 0.01 LU bins from -70 LUFS to +30 LUFS */
#define BIN_PER_LU 100.0

int es_gate_init(es_gate *gt, uint64_t raw_cap, double *bytes)
{
    gt->raw_cap = raw_cap;
    gt->n = 0;
    gt->raw = raw_cap ? malloc(sizeof(double) * raw_cap) : NULL;
    gt->bins = malloc(sizeof(es_gbin) * NBINS);
    *bytes += sizeof(double) * (double)raw_cap + sizeof(es_gbin) * (double)NBINS;
    if ((raw_cap && !gt->raw) || !gt->bins) return ES_LOUD_ENOMEM;
    memset(gt->bins, 0, sizeof(es_gbin) * NBINS);
    if (raw_cap) es_commit_pages(gt->raw, sizeof(double) * raw_cap);
    return ES_LOUD_OK;
}

void es_gate_clear(es_gate *gt)
{
    gt->n = 0;
    memset(gt->bins, 0, sizeof(es_gbin) * NBINS);
}

void es_gate_free(es_gate *gt)
{
    free(gt->raw);
    free(gt->bins);
}

static int bin_of(double energy)
{
    double b = floor((es_lufs(energy) - ES_GATE_ABS_LUFS) * BIN_PER_LU);
    if (b < 0.0) return 0;
    if (b >= NBINS) return NBINS - 1;
    return (int)b;
}

void es_gate_add(es_gate *gt, double z)
{
    if (!(z > es_abs_gate_energy()) || !(es_lufs(z) > ES_GATE_ABS_LUFS)) return;
    if (gt->n < gt->raw_cap) gt->raw[gt->n] = z;
    gt->n++;
    es_gbin *b = &gt->bins[bin_of(z)];
    double t = b->sum + z;
    b->comp += fabs(b->sum) >= z ? (b->sum - t) + z : (z - t) + b->sum;
    b->sum = t;
    if (b->count == 0 || z < b->lo) b->lo = z;
    if (b->count == 0 || z > b->hi) b->hi = z;
    b->count++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentiles (fractions q) of sorted energies, interpolated in LUFS. */
static double sorted_percentile(const double *v, size_t n, double q)
{
    double r = q * (double)(n - 1);
    size_t i = (size_t)floor(r);
    if (i + 1 >= n) return es_lufs(v[n - 1]);
    double f = r - (double)i;
    return es_lufs(v[i]) + f * (es_lufs(v[i + 1]) - es_lufs(v[i]));
}

/* Values given verbatim: gated mean (rel = 0.1 for -10 LU) and optional percentiles. */
int es_gate_exact_stats(const double *v, size_t n, double rel, double *mean, double *scratch,
                        double *lra)
{
    double s = 0.0;
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 0.0) { s += v[i]; na++; }
    if (na == 0) return ES_LOUD_ENODATA;
    double zr = s / (double)na * rel, sg = 0.0;
    size_t ng = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 0.0 && v[i] > zr) {
            sg += v[i];
            if (scratch) scratch[ng] = v[i];
            ng++;
        }
    if (ng == 0) return ES_LOUD_ENODATA;
    if (mean) *mean = sg / (double)ng;
    if (lra) {
        qsort(scratch, ng, sizeof(double), cmp_double);
        *lra = sorted_percentile(scratch, ng, 0.95) - sorted_percentile(scratch, ng, 0.10);
    }
    return ES_LOUD_OK;
}

typedef struct {
    double n, s;      /* count and sum of the bins fully above the threshold */
    int straddle;     /* the bin holding the threshold with values on both sides, or -1 */
    double zr;
} hist_split;

static int hist_gate(const es_gate *gt, double rel, hist_split *hs)
{
    double na = 0.0, sa = 0.0;
    for (int i = 0; i < NBINS; i++)
        if (gt->bins[i].count) {
            na += (double)gt->bins[i].count;
            sa += gt->bins[i].sum + gt->bins[i].comp;
        }
    if (na == 0.0) return ES_LOUD_ENODATA;
    hs->zr = sa / na * rel;
    hs->n = hs->s = 0.0;
    hs->straddle = -1;
    for (int i = 0; i < NBINS; i++) {
        const es_gbin *b = &gt->bins[i];
        if (!b->count || b->hi <= hs->zr) continue;
        if (b->lo > hs->zr) {
            hs->n += (double)b->count;
            hs->s += b->sum + b->comp;
        } else {
            hs->straddle = i;
        }
    }
    return ES_LOUD_OK;
}

/* Estimated count and sum of the straddling bin's values above the threshold. */
static void straddle_share(const es_gbin *b, double zr, double *k, double *s)
{
    double f = b->hi > b->lo ? (b->hi - zr) / (b->hi - b->lo) : 1.0;
    *k = (double)b->count * f;
    *s = *k * 0.5 * (zr + b->hi);
}

int es_gate_integrated(const es_gate *gt, double *mean, double *err_lu)
{
    if (gt->n <= gt->raw_cap) {
        if (err_lu) *err_lu = 0.0;
        return es_gate_exact_stats(gt->raw, (size_t)gt->n, 0.1, mean, NULL, NULL);
    }
    hist_split hs;
    int rc = hist_gate(gt, 0.1, &hs);
    if (rc) return rc;
    double k = 0.0, s = 0.0, err = 0.0;
    if (hs.straddle >= 0) {
        const es_gbin *b = &gt->bins[hs.straddle];
        straddle_share(b, hs.zr, &k, &s);
        double est = (hs.s + s) / (hs.n + k), c = (double)b->count;
        double cand[3] = {hs.n > 0 ? hs.s / hs.n : est, (hs.s + c * hs.zr) / (hs.n + c),
                          (hs.s + c * b->hi) / (hs.n + c)};
        for (int i = 0; i < 3; i++) {
            double d = fabs(10.0 * log10(cand[i] / est));
            if (d > err) err = d;
        }
    }
    if (hs.n + k <= 0.0) return ES_LOUD_ENODATA;
    *mean = (hs.s + s) / (hs.n + k);
    if (err_lu) *err_lu = err;
    return ES_LOUD_OK;
}

/* Loudness at rank r (0-based, fractional) among the gated values of a histogram. */
static double hist_rank(const es_gate *gt, const hist_split *hs, double r)
{
    double cum = 0.0;
    for (int i = 0; i < NBINS; i++) {
        const es_gbin *b = &gt->bins[i];
        double c, lo;
        if (!b->count || b->hi <= hs->zr) continue;
        if (i == hs->straddle) {
            double s;
            straddle_share(b, hs->zr, &c, &s);
            lo = hs->zr;
        } else {
            if (b->lo <= hs->zr) continue;
            c = (double)b->count;
            lo = b->lo;
        }
        if (cum + c > r) {
            double f = c > 1.0 ? (r - cum) / (c - 1.0) : 0.0;
            if (f > 1.0) f = 1.0;
            return es_lufs(lo) + f * (es_lufs(b->hi) - es_lufs(lo));
        }
        cum += c;
    }
    return NAN;
}

int es_gate_range(const es_gate *gt, double *lra, double *scratch)
{
    if (gt->n <= gt->raw_cap)
        return es_gate_exact_stats(gt->raw, (size_t)gt->n, 0.01, NULL, scratch, lra);
    hist_split hs;
    int rc = hist_gate(gt, 0.01, &hs);
    if (rc) return rc;
    double k = 0.0, s = 0.0;
    if (hs.straddle >= 0) straddle_share(&gt->bins[hs.straddle], hs.zr, &k, &s);
    double n = hs.n + k;
    if (n <= 0.0) return ES_LOUD_ENODATA;
    double n_int = floor(n + 0.5);
    if (n_int < 1.0) n_int = 1.0;
    *lra = hist_rank(gt, &hs, 0.95 * (n_int - 1.0)) - hist_rank(gt, &hs, 0.10 * (n_int - 1.0));
    return isnan(*lra) ? ES_LOUD_ENODATA : ES_LOUD_OK;
}
