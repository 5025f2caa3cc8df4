/* Spectral-peak extraction (streaming) and peak-pair hashing. */
#include "fingerprint.h"

#include "fft.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define MAX_FANOUT 64
#define IN_HOPS 32

struct es_fp {
    es_fp_params p;
    es_fft *fft;
    float *window;   /* n_fft */
    float *inbuf;    /* input samples: the frame being filled starts at `start` */
    int in_cap;      /* inbuf size: n_fft + IN_HOPS hops, so it moves once every IN_HOPS frames */
    int start;       /* where the next frame starts in inbuf */
    int filled;      /* samples in inbuf */
    float *power;    /* n_fft/2+1 */
    int lo, nb;      /* first bin in band, bins in band */
    int ring;        /* frames kept */
    float *level;    /* ring x nb: dB */
    float *fmax;     /* ring x nb: max over the frequency neighbourhood */
    double *csum;    /* ring x (nb+1): prefix sums of level, for salience */
    long frames;     /* frames computed so far */
    long final;      /* frames whose peaks were emitted */
    float *scratch;  /* 2 x nb, for the max filter */
    es_fp_peak *cand; /* candidates of one frame */
    const float **nrow; /* ring: the time neighbours' fmax rows of the frame being emitted */
    char *nlater;       /* ring: whether that neighbour is later (ties then let a peak stand) */
    int cand_cap;
};

void es_fp_default_params(es_fp_params *p)
{
    p->sample_rate = 8000;
    p->n_fft = 1024;
    p->hop = 128;
    p->fmin_hz = 100.0f;
    p->fmax_hz = 3600.0f;
    p->freq_radius = 8;
    p->time_radius = 10;
    p->salience_radius = 24;
    p->min_salience_db = 6.0f;
    p->floor_db = -90.0f;
    p->max_peaks_per_frame = 1;
}

void es_hash_default_params(es_hash_params *hp)
{
    hp->fmin_hz = 100.0f;
    hp->f1_per_octave = 12;
    hp->df_per_octave = 24;
    hp->max_doct = 1.5f;
    hp->dt_min = 2;
    hp->dt_max = 48;
    hp->fanout = 3;
    hp->dt_step = 1.0f;
    hp->dt_tolerance = 0.0f;
}

int es_fp_new(const es_fp_params *p, es_fp **out)
{
    *out = NULL;
    if (p->sample_rate <= 0 || p->hop <= 0 || p->hop > p->n_fft || p->freq_radius < 1 ||
        p->time_radius < 1 || p->salience_radius < 1 || p->max_peaks_per_frame < 1 ||
        !(p->fmin_hz > 0.0f) || !(p->fmax_hz > p->fmin_hz))
        return ES_FP_EINVAL;
    es_fp *fp = calloc(1, sizeof *fp);
    if (!fp)
        return ES_FP_ENOMEM;
    fp->p = *p;
    fp->fft = es_fft_new(p->n_fft);
    if (!fp->fft) {
        free(fp);
        return ES_FP_EINVAL;
    }
    const float bin_hz = (float)p->sample_rate / p->n_fft;
    int lo = (int)ceilf(p->fmin_hz / bin_hz);
    int hi = (int)floorf(p->fmax_hz / bin_hz);
    if (lo < 1)
        lo = 1;
    if (hi > p->n_fft / 2 - 1)
        hi = p->n_fft / 2 - 1;
    if (hi - lo < 2 * p->freq_radius + 2) {
        es_fp_free(fp);
        return ES_FP_EINVAL;
    }
    fp->lo = lo;
    fp->nb = hi - lo + 1;
    fp->ring = 2 * p->time_radius + 2;
    fp->cand_cap = fp->nb / 2 + 1;
    fp->window = malloc(sizeof(float) * (size_t)p->n_fft);
    fp->in_cap = p->n_fft + IN_HOPS * p->hop;
    fp->inbuf = malloc(sizeof(float) * (size_t)fp->in_cap);
    fp->power = malloc(sizeof(float) * (size_t)(p->n_fft / 2 + 1));
    fp->level = malloc(sizeof(float) * (size_t)fp->ring * fp->nb);
    fp->fmax = malloc(sizeof(float) * (size_t)fp->ring * fp->nb);
    fp->csum = malloc(sizeof(double) * (size_t)fp->ring * (fp->nb + 1));
    fp->cand = malloc(sizeof(es_fp_peak) * (size_t)fp->cand_cap);
    fp->scratch = malloc(sizeof(float) * 2 * (size_t)fp->nb);
    fp->nrow = malloc(sizeof(*fp->nrow) * (size_t)fp->ring);
    fp->nlater = malloc((size_t)fp->ring);
    if (!fp->window || !fp->inbuf || !fp->power || !fp->level || !fp->fmax ||
        !fp->csum || !fp->cand || !fp->scratch || !fp->nrow || !fp->nlater) {
        es_fp_free(fp);
        return ES_FP_ENOMEM;
    }
    /* periodic Hann, scaled so a full-scale sine reads about 0 dB */
    double wsum = 0.0;
    for (int i = 0; i < p->n_fft; i++) {
        fp->window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / p->n_fft));
        wsum += fp->window[i];
    }
    for (int i = 0; i < p->n_fft; i++)
        fp->window[i] = (float)(fp->window[i] * 2.0 / wsum);
    es_fp_reset(fp);
    *out = fp;
    return ES_FP_OK;
}

void es_fp_free(es_fp *fp)
{
    if (!fp)
        return;
    es_fft_free(fp->fft);
    free(fp->window);
    free(fp->inbuf);
    free(fp->power);
    free(fp->level);
    free(fp->fmax);
    free(fp->csum);
    free(fp->cand);
    free(fp->scratch);
    free(fp->nrow);
    free(fp->nlater);
    free(fp);
}

void es_fp_reset(es_fp *fp)
{
    fp->start = 0;
    fp->filled = 0;
    fp->frames = 0;
    fp->final = 0;
}

long es_fp_frames_final(const es_fp *fp) { return fp->final; }

int es_fp_peaks_per_frame_max(const es_fp *fp) { return fp->p.max_peaks_per_frame; }

static float *row(float *base, const es_fp *fp, long t) { return base + (size_t)(t % fp->ring) * fp->nb; }

/*
 * Sliding maximum over [b - r, b + r] (clipped at the edges) in O(n): the running
 * maxima of blocks of 2r+1 from the left and from the right, combined per position.
 */
static void max_filter(const float *x, float *out, int n, int r, float *scratch)
{
    const int w = 2 * r + 1;
    float *left = scratch, *right = scratch + n;
    for (int bs = 0; bs < n; bs += w) {
        const int be = bs + w < n ? bs + w - 1 : n - 1;
        left[bs] = x[bs];
        for (int i = bs + 1; i <= be; i++)
            left[i] = x[i] > left[i - 1] ? x[i] : left[i - 1];
        right[be] = x[be];
        for (int i = be - 1; i >= bs; i--)
            right[i] = x[i] > right[i + 1] ? x[i] : right[i + 1];
    }
    /* [a, e] spans at most two blocks: right[a] covers a..block end, left[e] block start..e.
     * Positions [r, n - r) are clipped at neither edge: that loop has no branch and
     * vectorises; the edges take the general one. */
    const int mid_lo = r < n ? r : n;
    const int mid_hi = n - r > mid_lo ? n - r : mid_lo;
    for (int b = 0; b < mid_lo; b++) {
        const int e = b + r >= n ? n - 1 : b + r;
        const float m1 = right[0], m2 = left[e];
        out[b] = m1 > m2 ? m1 : m2;
    }
    for (int b = mid_lo; b < mid_hi; b++) {
        const float m1 = right[b - r], m2 = left[b + r];
        out[b] = m1 > m2 ? m1 : m2;
    }
    for (int b = mid_hi; b < n; b++) {
        const int a = b - r < 0 ? 0 : b - r;
        const float m1 = right[a], m2 = left[n - 1];
        out[b] = m1 > m2 ? m1 : m2;
    }
}

/*
 * log2 of a positive normal float from its exponent and a polynomial in the mantissa
 * (max error about 1e-4, i.e. 0.0003 dB): the dB conversion is most of a frame's cost
 * otherwise. Exact IEEE arithmetic, so every platform gives the same values.
 */
static float fast_log2(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int e = (int)((bits >> 23) & 0xff) - 127;
    bits = (bits & 0x007fffffu) | 0x3f800000u; /* mantissa in [1, 2) */
    float m;
    memcpy(&m, &bits, sizeof m);
    /* minimax-style fit of log2(m) on [1, 2), degree 5 */
    const float t = m - 1.0f;
    const float p = t * (1.4425449f + t * (-0.7181452f + t * (0.4575485f + t * (-0.2779042f + t * (0.1217970f + t * -0.0258411f)))));
    return (float)e + p;
}

/* Spectrum of the frame at inbuf[start] into ring slot `frames`. */
static void analyse_frame(es_fp *fp)
{
    const es_fp_params *p = &fp->p;
    es_fft_power_windowed(fp->fft, fp->inbuf + fp->start, fp->window, fp->power);
    float *lv = row(fp->level, fp, fp->frames);
    float *mx = row(fp->fmax, fp, fp->frames);
    double *cs = fp->csum + (size_t)(fp->frames % fp->ring) * (fp->nb + 1);
    const float floor_db = p->floor_db;
    const float *pw = fp->power + fp->lo;
    for (int b = 0; b < fp->nb; b++) {
        float db = 3.0102999566f * fast_log2(pw[b] + 1e-12f);
        lv[b] = db < floor_db ? floor_db : db;
    }
    cs[0] = 0.0;
    for (int b = 0; b < fp->nb; b++)
        cs[b + 1] = cs[b] + lv[b];
    max_filter(lv, mx, fp->nb, p->freq_radius, fp->scratch);
    fp->frames++;
}

static int by_salience_desc(const void *a, const void *b)
{
    const es_fp_peak *x = a, *y = b;
    if (x->salience != y->salience)
        return x->salience < y->salience ? 1 : -1;
    return x->freq < y->freq ? -1 : (x->freq > y->freq ? 1 : 0);
}

static int by_freq(const void *a, const void *b)
{
    const es_fp_peak *x = a, *y = b;
    return x->freq < y->freq ? -1 : (x->freq > y->freq ? 1 : 0);
}

static float parabola(float a, float b, float c)
{
    const float d = a - 2.0f * b + c;
    if (d >= 0.0f)
        return 0.0f;
    float x = 0.5f * (a - c) / d;
    return x < -0.5f ? -0.5f : (x > 0.5f ? 0.5f : x);
}

/*
 * Peaks of frame t, given frames [t - time_radius, last] exist (later ones may be missing
 * at the end of the stream, treated as lower). Ties: a value must beat earlier/lower
 * neighbours strictly and equal-or-beat later/higher ones, so flat regions give nothing.
 */
static int emit_frame(es_fp *fp, long t, es_fp_peak *out)
{
    const es_fp_params *p = &fp->p;
    const int nb = fp->nb, rf = p->freq_radius, rt = p->time_radius;
    const float *lv = row(fp->level, fp, t);
    const double *cs = fp->csum + (size_t)(t % fp->ring) * (nb + 1);
    const float bin_hz = (float)p->sample_rate / p->n_fft;
    int nc = 0;
    const float *mx = row(fp->fmax, fp, t);
    /* the time neighbours present, nearest first: most candidates fail on the nearest */
    int nn = 0;
    for (int d = 1; d <= rt; d++) {
        if (t - d >= 0) {
            fp->nrow[nn] = row(fp->fmax, fp, t - d);
            fp->nlater[nn++] = 0;
        }
        if (t + d <= fp->frames - 1) {
            fp->nrow[nn] = row(fp->fmax, fp, t + d);
            fp->nlater[nn++] = 1;
        }
    }
    for (int b = 1; b < nb - 1; b++) {
        const float v = lv[b];
        if (v <= p->floor_db || v < mx[b])
            continue;
        /* local maximum along frequency, with the tie rule */
        int ok = 1;
        for (int k = (b - rf < 0 ? 0 : b - rf); k <= (b + rf >= nb ? nb - 1 : b + rf) && ok; k++) {
            if (k < b && lv[k] >= v)
                ok = 0;
            else if (k > b && lv[k] > v)
                ok = 0;
        }
        if (!ok)
            continue;
        for (int k = 0; k < nn && ok; k++) {
            const float m = fp->nrow[k][b];
            if (fp->nlater[k] ? m > v : m >= v)
                ok = 0;
        }
        if (!ok)
            continue;
        const int sa = b - p->salience_radius < 0 ? 0 : b - p->salience_radius;
        const int se = b + p->salience_radius >= nb ? nb - 1 : b + p->salience_radius;
        const float mean = (float)((cs[se + 1] - cs[sa]) / (se - sa + 1));
        const float sal = v - mean;
        if (sal < p->min_salience_db)
            continue;
        const float df = parabola(lv[b - 1], v, lv[b + 1]);
        float dt = 0.0f;
        if (t >= 1 && t + 1 < fp->frames)
            dt = parabola(row(fp->level, fp, t - 1)[b], v, row(fp->level, fp, t + 1)[b]);
        if (nc < fp->cand_cap) {
            fp->cand[nc].time = (float)t + dt;
            fp->cand[nc].freq = log2f((fp->lo + b + df) * bin_hz);
            fp->cand[nc].salience = sal;
            nc++;
        }
    }
    if (nc > p->max_peaks_per_frame) {
        qsort(fp->cand, (size_t)nc, sizeof *fp->cand, by_salience_desc);
        nc = p->max_peaks_per_frame;
    }
    qsort(fp->cand, (size_t)nc, sizeof *fp->cand, by_freq);
    memcpy(out, fp->cand, sizeof *out * (size_t)nc);
    return nc;
}

int es_fp_process(es_fp *fp, const float *x, int n, es_fp_peak *out, int cap, int *n_out)
{
    const es_fp_params *p = &fp->p;
    int used = 0, written = 0;
    while (used < n) {
        if (cap - written < p->max_peaks_per_frame)
            break;
        if (fp->start + p->n_fft > fp->in_cap) {
            /* no room for the frame: move its samples so far to the front */
            memmove(fp->inbuf, fp->inbuf + fp->start, sizeof(float) * (size_t)(fp->filled - fp->start));
            fp->filled -= fp->start;
            fp->start = 0;
        }
        int take = fp->start + p->n_fft - fp->filled;
        if (take > n - used)
            take = n - used;
        memcpy(fp->inbuf + fp->filled, x + used, sizeof(float) * (size_t)take);
        fp->filled += take;
        used += take;
        if (fp->filled < fp->start + p->n_fft)
            break;
        analyse_frame(fp);
        fp->start += p->hop;
        /* frame t is final once t + time_radius + 1 exists (interpolation needs t + 1) */
        long t = fp->frames - 1 - p->time_radius;
        if (t >= 0) {
            written += emit_frame(fp, t, out + written);
            fp->final = t + 1;
        }
    }
    *n_out = written;
    return used;
}

int es_fp_flush(es_fp *fp, es_fp_peak *out, int cap)
{
    int written = 0;
    while (fp->final < fp->frames && cap - written >= fp->p.max_peaks_per_frame) {
        written += emit_frame(fp, fp->final, out + written);
        fp->final++;
    }
    return written;
}

static int hash_params_ok(const es_hash_params *hp)
{
    return hp->fanout >= 1 && hp->fanout <= MAX_FANOUT && hp->dt_min >= 1 &&
           hp->dt_min <= hp->dt_max && hp->dt_step >= 1.0f && hp->dt_step <= 16.0f &&
           lrintf(hp->dt_max / hp->dt_step) <= 63 && hp->dt_tolerance >= 0.0f &&
           hp->dt_tolerance <= 4.0f * hp->dt_step;
}

int es_fp_hashes_per_pair_max(const es_hash_params *hp)
{
    if (!hash_params_ok(hp))
        return ES_FP_EINVAL;
    return 2 + (int)ceilf(2.0f * hp->dt_tolerance / hp->dt_step);
}

/* What every anchor's hashing shares: the parameters in the units it computes with. */
typedef struct {
    int u_min, u_max, nd;
    float base, shift;
} hash_frame;

static hash_frame hash_frame_of(const es_hash_params *hp, float speed)
{
    hash_frame f;
    f.u_min = (int)lrintf(hp->dt_min / hp->dt_step);
    f.u_max = (int)lrintf(hp->dt_max / hp->dt_step);
    f.base = log2f(hp->fmin_hz);
    f.shift = log2f(speed);
    f.nd = (int)(2.0f * hp->max_doct * hp->df_per_octave);
    return f;
}

/* The hashes of anchor i (peaks[i] with its fanout most salient targets) appended at
 * hashes[*written..], times alike, at most cap in all. Returns 0 when cap was reached. */
static int hash_anchor(const es_hash_params *hp, const hash_frame *f, const es_fp_peak *peaks, int n_peaks,
                       int i, float speed, unsigned int *hashes, float *times, int cap, int *written)
{
    const es_fp_peak *a = &peaks[i];
    int sel[MAX_FANOUT];
    int ns = 0;
    for (int j = i + 1; j < n_peaks; j++) {
        const es_fp_peak *b = &peaks[j];
        const float dt = (b->time - a->time) * speed;
        if (dt >= hp->dt_max + 0.5f)
            break;
        if (dt < hp->dt_min - 0.5f)
            continue;
        const float df = b->freq - a->freq;
        if (df <= -hp->max_doct || df >= hp->max_doct)
            continue;
        /* keep the fanout most salient, in a small sorted list (earliest wins ties) */
        int pos = ns;
        while (pos > 0 && peaks[sel[pos - 1]].salience < b->salience)
            pos--;
        if (pos >= hp->fanout)
            continue;
        int last = ns < hp->fanout ? ns : hp->fanout - 1;
        for (int k = last; k > pos; k--)
            sel[k] = sel[k - 1];
        sel[pos] = j;
        if (ns < hp->fanout)
            ns++;
    }
    int q1 = (int)floorf((a->freq - f->shift - f->base) * hp->f1_per_octave);
    if (q1 < 0)
        q1 = 0;
    if (q1 > 127)
        q1 = 127;
    for (int k = 0; k < ns; k++) {
        const es_fp_peak *b = &peaks[sel[k]];
        int qd = (int)floorf((b->freq - a->freq + hp->max_doct) * hp->df_per_octave);
        if (qd < 0)
            qd = 0;
        if (qd >= f->nd)
            qd = f->nd - 1;
        const float gap = (b->time - a->time) * speed;
        int u0 = (int)lrintf((gap - hp->dt_tolerance) / hp->dt_step);
        int u1 = (int)lrintf((gap + hp->dt_tolerance) / hp->dt_step);
        u0 = u0 < f->u_min ? f->u_min : (u0 > f->u_max ? f->u_max : u0);
        u1 = u1 < f->u_min ? f->u_min : (u1 > f->u_max ? f->u_max : u1);
        for (int qt = u0; qt <= u1; qt++) {
            if (*written >= cap)
                return 0;
            hashes[*written] = ((unsigned)q1 << 14) | ((unsigned)qd << 6) | (unsigned)qt;
            times[*written] = a->time * speed;
            (*written)++;
        }
    }
    return 1;
}

int es_fp_hash(const es_hash_params *hp, const es_fp_peak *peaks, int n_peaks, int first,
               int end, float speed, unsigned int *hashes, float *times, int cap)
{
    if (!hash_params_ok(hp) || !(speed > 0.0f) || first < 0 || end > n_peaks)
        return ES_FP_EINVAL;
    const hash_frame f = hash_frame_of(hp, speed);
    int written = 0;
    for (int i = first; i < end; i++)
        if (!hash_anchor(hp, &f, peaks, n_peaks, i, speed, hashes, times, cap, &written))
            break;
    return written;
}

int es_fp_hash_picked(const es_hash_params *hp, const es_fp_peak *peaks, int n_peaks, const int *anchors,
                      int n_anchors, float speed, unsigned int *hashes, float *times, int cap)
{
    if (!hash_params_ok(hp) || !(speed > 0.0f) || n_anchors < 0 || (n_anchors > 0 && !anchors))
        return ES_FP_EINVAL;
    for (int k = 0; k < n_anchors; k++)
        if (anchors[k] < 0 || anchors[k] >= n_peaks || (k > 0 && anchors[k] <= anchors[k - 1]))
            return ES_FP_EINVAL;
    const hash_frame f = hash_frame_of(hp, speed);
    int written = 0;
    for (int k = 0; k < n_anchors; k++)
        if (!hash_anchor(hp, &f, peaks, n_peaks, anchors[k], speed, hashes, times, cap, &written))
            break;
    return written;
}
