/* Streaming BS.1770 / EBU R128 loudness meter. The contract and the reasoning behind the
 * gating structure are in loudness.h. */
#include "loudness.h"
#include "fft.h"
#include "gating.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define TP_TAPS 24       /* taps per polyphase branch */
#define TP_BETA 7.0      /* Kaiser window shape */
#define TP_CENTRE 4      /* central taps of a branch, bounded apart (see true_peak_chunk) */
#define TP_BLOCK 8       /* interpolated outputs computed together */
#define TP_CENTRE_LO (TP_TAPS / 2 - TP_CENTRE / 2)
/* Added to a bound before it excuses work: among subnormal floats rounding errs by an
 * absolute amount, which the bounds' relative 1e-4 does not cover (an output of 32 * 2^-149
 * from samples bounding it at 31 * 2^-149 was skipped). Digital silence is excused apart. */
#define TP_SUBNORMAL_SLACK 0x1p-140f
#define NONE -1.0        /* "no value" for energies, which are never negative */

typedef struct {
    es_gate blocks, shorts;
    double max_m, max_s; /* energies, NONE when no window was complete */
    double *spk, *tpk;   /* per channel, linear */
    double band[ES_LOUD_BANDS];
    uint64_t band_n;
    double frames;
    uint64_t since_step; /* steps completed since the scope started */
} scope;

struct es_loud {
    int rate, ch, os, g, k, hop, flags;
    double w[ES_LOUD_MAX_CHANNELS];
    double kw[10];
    double *kst;          /* KSTATE filter states per channel */
    double *ch_acc;       /* per channel: sum of squares in the current step */
    float *buf;           /* per channel: TP_TAPS-1 history + g new samples */
    int buf_len;
    int mark_lag;         /* interpolated outputs still made of samples from before the mark */
    float *taps;          /* os * TP_TAPS */
    float tap_l1;         /* largest absolute tap sum of a branch */
    float tap_lc, tap_lo; /* ... of its TP_CENTRE central taps, and of the others (see true_peak_chunk) */
    float *tp_bmax;       /* true_peak_chunk's scratch: the largest magnitude of each 8 samples */
    double *steps;        /* ring of the last 30 * k step energies */
    int nsteps_ring;
    uint64_t n_steps;
    int step_fill;
    /* bands */
    es_fft *fft;
    int n_fft;
    float *fft_in, *fft_pow, *hann; /* fft_in: the mono mix of the hop's last n_fft frames */
    int band_lo[ES_LOUD_BANDS], band_hi[ES_LOUD_BANDS];
    double wsum;
    /* per hop */
    double hop_maxm, hop_maxs;
    float *hop_spk, *hop_tpk;
    scope all, mark;
    /* WINDOW scope: one entry per hop */
    int wcap, wpos;
    uint64_t wn;
    double *w_block, *w_short, *w_maxm, *w_maxs;
    float *w_spk, *w_tpk, *w_band;
    double *scratch;
    size_t scratch_cap;
    double bytes;
};

/* ---- K-weighting: bilinear transform of BS.1770's analog prototype for this rate ---- */

static void kweights(int rate, double *c)
{
    /* stage 1: high shelf (+4 dB above ~1.7 kHz) */
    double f0 = 1681.974450955533, gain_db = 3.999843853973347, q = 0.7071752369554196;
    double K = tan(M_PI * f0 / rate);
    double vh = pow(10.0, gain_db / 20.0), vb = pow(vh, 0.4996667741545416);
    double a0 = 1.0 + K / q + K * K;
    c[0] = (vh + vb * K / q + K * K) / a0;
    c[1] = 2.0 * (K * K - vh) / a0;
    c[2] = (vh - vb * K / q + K * K) / a0;
    c[3] = 2.0 * (K * K - 1.0) / a0;
    c[4] = (1.0 - K / q + K * K) / a0;
    /* stage 2: RLB high pass (~38 Hz) */
    f0 = 38.13547087602444;
    q = 0.5003270373238773;
    K = tan(M_PI * f0 / rate);
    a0 = 1.0 + K / q + K * K;
    c[5] = 1.0;
    c[6] = -2.0;
    c[7] = 1.0;
    c[8] = 2.0 * (K * K - 1.0) / a0;
    c[9] = (1.0 - K / q + K * K) / a0;
}

/* K-filter state per channel: direct form I, x1 x2 y1 y2 of each stage (8 doubles).
 * Direct form I keeps one multiply-add on each stage's recursion path, and two channels
 * are run in the same loop, so the two recursions overlap in the pipeline. Squares are
 * added to *sum in sample order (the sum does not depend on how input was split). */
#define KSTATE 8

static inline double kstep(const double *c, double *s, double v)
{
    double u = c[0] * v + c[1] * s[0] + c[2] * s[1] - c[3] * s[2] - c[4] * s[3];
    s[1] = s[0]; s[0] = v; s[3] = s[2]; s[2] = u;
    double o = (u - 2.0 * s[4] + s[5]) - c[8] * s[6] - c[9] * s[7];
    s[5] = s[4]; s[4] = u; s[7] = s[6]; s[6] = o;
    return o;
}

static void kflush(double *s)
{
    int tiny = 1; /* vanishing states become zeros, so silence never runs into denormals */
    for (int i = 0; i < KSTATE; i++) tiny &= fabs(s[i]) < 1e-30;
    if (tiny) memset(s, 0, sizeof(double) * KSTATE);
}

static void kfilter(const double *c, double *s, const float *x, int n, double *sum)
{
    double st[KSTATE], acc = *sum;
    memcpy(st, s, sizeof st);
    for (int i = 0; i < n; i++) {
        double o = kstep(c, st, x[i]);
        acc += o * o;
    }
    memcpy(s, st, sizeof st);
    kflush(s);
    *sum = acc;
}

/* Two channels in lock-step: the same operations on pairs, which compilers turn into
 * two-lane vector instructions where the target has them. */
static void kfilter2(const double *c, double *sa, double *sb, const float *xa, const float *xb,
                     int n, double *suma, double *sumb)
{
    double x1[2], x2[2], u1[2], u2[2], o1[2], o2[2], acc[2] = {*suma, *sumb};
    const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4], d1 = c[8], d2 = c[9];
    const double *s2[2] = {sa, sb};
    for (int k = 0; k < 2; k++) {
        x1[k] = s2[k][0]; x2[k] = s2[k][1]; u1[k] = s2[k][2]; u2[k] = s2[k][3];
        o1[k] = s2[k][6]; o2[k] = s2[k][7];
    }
    for (int i = 0; i < n; i++) {
        double v[2] = {xa[i], xb[i]}, u[2], o[2];
        for (int k = 0; k < 2; k++) {
            u[k] = b0 * v[k] + b1 * x1[k] + b2 * x2[k] - a1 * u1[k] - a2 * u2[k];
            o[k] = (u[k] - 2.0 * u1[k] + u2[k]) - d1 * o1[k] - d2 * o2[k];
            x2[k] = x1[k]; x1[k] = v[k]; u2[k] = u1[k]; u1[k] = u[k];
            o2[k] = o1[k]; o1[k] = o[k];
            acc[k] += o[k] * o[k];
        }
    }
    double *d2s[2] = {sa, sb};
    for (int k = 0; k < 2; k++) {
        /* stage 2's input history is stage 1's output history */
        d2s[k][0] = x1[k]; d2s[k][1] = x2[k]; d2s[k][2] = u1[k]; d2s[k][3] = u2[k];
        d2s[k][4] = u1[k]; d2s[k][5] = u2[k]; d2s[k][6] = o1[k]; d2s[k][7] = o2[k];
    }
    kflush(sa);
    kflush(sb);
    *suma = acc[0];
    *sumb = acc[1];
}

/* ---- true-peak interpolator ---- */

static double bessel_i0(double x)
{
    double sum = 1.0, term = 1.0;
    for (int k = 1; k < 50; k++) {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

/* The branches' taps, and bounds on what a branch can make of samples no larger than 1 in
 * magnitude: the largest absolute tap sum of a branch (l1), and of an interpolating branch
 * (p >= 1) the largest sum over its TP_CENTRE central taps (lc) and over the rest (lo).
 * Each a hair over (1e-4: the float sums' rounding stays under it). */
static void design_taps(int os, float *taps, float *l1_out, float *lc_out, float *lo_out)
{
    float l1max = 0.0f, lcmax = 0.0f, lomax = 0.0f;
    for (int p = 0; p < os; p++) {
        double h[TP_TAPS], total = 0.0, l1 = 0.0, lc = 0.0;
        for (int i = 0; i < TP_TAPS; i++) {
            double x = (double)p / os - (i - TP_TAPS / 2 + 1); /* distance to the tap */
            double r = x / (TP_TAPS / 2.0);
            double win = r * r < 1.0 ? bessel_i0(TP_BETA * sqrt(1.0 - r * r)) / bessel_i0(TP_BETA) : 0.0;
            double sinc = fabs(x) < 1e-12 ? 1.0 : sin(M_PI * x) / (M_PI * x);
            h[i] = sinc * win;
            total += h[i];
        }
        for (int i = 0; i < TP_TAPS; i++) {
            taps[p * TP_TAPS + i] = (float)(h[i] / total);
            l1 += fabs(h[i] / total);
            if (i >= TP_CENTRE_LO && i < TP_CENTRE_LO + TP_CENTRE) lc += fabs(h[i] / total);
        }
        if ((float)l1 > l1max) l1max = (float)l1;
        if (p >= 1 && (float)lc > lcmax) lcmax = (float)lc;
        if (p >= 1 && (float)(l1 - lc) > lomax) lomax = (float)(l1 - lc);
    }
    *l1_out = l1max * 1.0001f;
    *lc_out = lcmax * 1.0001f;
    *lo_out = lomax * 1.0001f;
}

static float abs_max(const float *x, int n)
{
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float v = fabsf(x[i + l]);
            lane[l] = v > lane[l] ? v : lane[l];
        }
    float m = 0.0f;
    for (int l = 0; l < 8; l++) m = lane[l] > m ? lane[l] : m;
    for (; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* The larger of `floor` and the largest interpolated magnitude between the samples
 * b[TP_TAPS/2-1 ..] over n outputs.
 * Eight outputs at a time, tap by tap: their sums stay in registers (two vectors of four
 * floats on SSE2 and NEON) instead of going through memory once a tap, and each output is
 * still summed in tap order, so the result is bit for bit that of the plain convolution
 * (no FMA contraction: the kernels build with -std=c99). 1.5x faster than a whole chunk per
 * tap, which had loaded and stored every output 24 times.
 * Unless `every`, eight outputs are skipped when none can beat both the largest value yet
 * and `moot` (a value the caller's readings already hold, which no output at or below it can
 * change): none exceeds lc times the largest sample under its central taps plus lo times the
 * largest under all of them, read from the maxima of the samples eight at a time (a little
 * looser: a sample or two more on either side). Music's samples mostly sit well below the
 * peak of the 100 ms around them; every reading stays the same, bit for bit. */
static float true_peak_chunk(es_loud *st, const float *b, int n, float floor, float moot, int every)
{
    float r = floor, m = moot > floor ? moot : floor;   /* the result; the bar a skip must be under */
    const int groups = n / TP_BLOCK;
    float *bm = st->tp_bmax;
    if (!every) {
        /* outputs 8g .. 8g+7 read samples 8g .. 8g+30 (blocks g .. g+3), their central taps
         * samples 8g+10 .. 8g+20 (blocks g+1, g+2) */
        const int blocks = groups ? groups + 3 : 0;
        for (int j = 0; j < blocks; j++) {
            const float *x = b + j * TP_BLOCK;
            const int len = (j + 1) * TP_BLOCK <= n + TP_TAPS - 1 ? TP_BLOCK : n + TP_TAPS - 1 - j * TP_BLOCK;
            float v = 0.0f;
            for (int l = 0; l < len; l++) v = fabsf(x[l]) > v ? fabsf(x[l]) : v;
            bm[j] = v;
        }
    }
    for (int g = 0; g < groups; g++) {
        const int i = g * TP_BLOCK;
        if (!every) {
            float centre = bm[g + 1] > bm[g + 2] ? bm[g + 1] : bm[g + 2];
            float all = bm[g] > bm[g + 3] ? bm[g] : bm[g + 3];
            all = centre > all ? centre : all;
            if (all == 0.0f || centre * st->tap_lc + all * st->tap_lo + TP_SUBNORMAL_SLACK <= m) continue;
        }
        float lane[TP_BLOCK] = {0};
        for (int p = 1; p < st->os; p++) {
            const float *h = st->taps + p * TP_TAPS;
            float acc[TP_BLOCK];
            for (int l = 0; l < TP_BLOCK; l++) acc[l] = h[0] * b[i + l];
            for (int t = 1; t < TP_TAPS; t++) {
                const float ht = h[t];
                const float *bt = b + i + t;
                for (int l = 0; l < TP_BLOCK; l++) acc[l] += ht * bt[l];
            }
            for (int l = 0; l < TP_BLOCK; l++) {
                float v = fabsf(acc[l]);
                lane[l] = v > lane[l] ? v : lane[l];
            }
        }
        for (int l = 0; l < TP_BLOCK; l++) r = lane[l] > r ? lane[l] : r;
        m = r > m ? r : m;
    }
    for (int i = groups * TP_BLOCK; i < n; i++) {   /* the last outputs, one at a time, in the same order */
        for (int p = 1; p < st->os; p++) {
            const float *h = st->taps + p * TP_TAPS;
            float y = h[0] * b[i];
            for (int t = 1; t < TP_TAPS; t++) y += h[t] * b[i + t];
            float v = fabsf(y);
            r = v > r ? v : r;
        }
    }
    return r;
}

/* ---- scopes ---- */

static int scope_init(scope *sc, int ch, uint64_t raw_cap, double *bytes)
{
    int rc = es_gate_init(&sc->blocks, raw_cap, bytes);
    if (!rc) rc = es_gate_init(&sc->shorts, raw_cap, bytes);
    sc->spk = calloc((size_t)ch, sizeof(double));
    sc->tpk = calloc((size_t)ch, sizeof(double));
    *bytes += 2.0 * sizeof(double) * ch;
    if (!sc->spk || !sc->tpk) rc = ES_LOUD_ENOMEM;
    return rc;
}

static void scope_clear(scope *sc, int ch)
{
    es_gate_clear(&sc->blocks);
    es_gate_clear(&sc->shorts);
    sc->max_m = sc->max_s = NONE;
    memset(sc->spk, 0, sizeof(double) * (size_t)ch);
    memset(sc->tpk, 0, sizeof(double) * (size_t)ch);
    memset(sc->band, 0, sizeof sc->band);
    sc->band_n = 0;
    sc->frames = 0.0;
    sc->since_step = 0;
}

static void scope_free(scope *sc)
{
    es_gate_free(&sc->blocks);
    es_gate_free(&sc->shorts);
    free(sc->spk);
    free(sc->tpk);
}

/* ---- life cycle ---- */

/* Hop (100 ms) and step (<= 10 ms, dividing the hop). Rates that are multiples of 10
 * get an exact 100 ms hop when it has a divisor between 2.5 and 10 ms; any other rate
 * (e.g. 11025 Hz) uses a step of floor(rate / 100) frames and a hop of ten steps, which
 * keeps the windows within 0.1% of their nominal length. */
static void pick_grid(int rate, int *hop, int *step)
{
    if (rate % 10 == 0) {
        int h = rate / 10, best = 0;
        for (int d = 1; d <= h && d * 100 <= rate; d++)
            if (h % d == 0) best = d;
        if (best * 400 >= rate) {
            *hop = h;
            *step = best;
            return;
        }
    }
    *step = rate / 100;
    *hop = 10 * *step;
}

static void *track(es_loud *st, size_t n, size_t size)
{
    st->bytes += (double)n * (double)size;
    void *p = calloc(n ? n : 1, size);
    if (p) es_commit_pages(p, (n ? n : 1) * size);
    return p;
}

int es_loud_new(int rate, int channels, const double *weights, const double *band_edges,
                int window_s, int exact_blocks, int flags, es_loud **out)
{
    if (!out) return ES_LOUD_EINVAL;
    *out = NULL;
    if (rate < 8000 || rate > 768000 || channels < 1 || channels > ES_LOUD_MAX_CHANNELS ||
        window_s < 0 || window_s > 86400 || exact_blocks < 0 || exact_blocks > 100000000 ||
        !band_edges)
        return ES_LOUD_EINVAL;
    for (int b = 0; b < ES_LOUD_BANDS; b++)
        if (!(band_edges[b] >= 0.0 && band_edges[b] < band_edges[b + 1])) return ES_LOUD_EINVAL;
    for (int c = 0; weights && c < channels; c++)
        if (!(weights[c] >= 0.0 && weights[c] <= 100.0)) return ES_LOUD_EINVAL;

    es_loud *st = calloc(1, sizeof *st);
    if (!st) return ES_LOUD_ENOMEM;
    st->bytes = sizeof *st;
    st->rate = rate;
    st->ch = channels;
    st->flags = flags;
    pick_grid(rate, &st->hop, &st->g);
    st->k = st->hop / st->g;
    st->os = (192000 + rate - 1) / rate;
    st->wsum = 0.0;
    for (int c = 0; c < channels; c++) {
        st->w[c] = weights ? weights[c] : 1.0;
        st->wsum += st->w[c];
    }
    kweights(rate, st->kw);

    st->buf_len = TP_TAPS - 1 + st->g;
    st->kst = track(st, (size_t)channels * KSTATE, sizeof(double));
    st->ch_acc = track(st, (size_t)channels, sizeof(double));
    st->buf = track(st, (size_t)channels * st->buf_len, sizeof(float));
    st->taps = track(st, (size_t)st->os * TP_TAPS, sizeof(float));
    st->tp_bmax = track(st, (size_t)st->buf_len / TP_BLOCK + 1, sizeof(float));
    st->nsteps_ring = 30 * st->k;
    st->steps = track(st, (size_t)st->nsteps_ring, sizeof(double));
    st->hop_spk = track(st, (size_t)channels, sizeof(float));
    st->hop_tpk = track(st, (size_t)channels, sizeof(float));

    st->n_fft = 8;
    while (st->n_fft < rate / 25) st->n_fft *= 2;
    st->fft = es_fft_new(st->n_fft);
    st->bytes += 6.0 * sizeof(float) * st->n_fft; /* the FFT's own tables */
    st->fft_in = track(st, (size_t)st->n_fft, sizeof(float));
    st->fft_pow = track(st, (size_t)st->n_fft / 2 + 1, sizeof(float));
    st->hann = track(st, (size_t)st->n_fft, sizeof(float));

    st->wcap = window_s * 10;
    size_t wc = (size_t)st->wcap;
    st->w_block = track(st, wc, sizeof(double));
    st->w_short = track(st, wc, sizeof(double));
    st->w_maxm = track(st, wc, sizeof(double));
    st->w_maxs = track(st, wc, sizeof(double));
    st->w_spk = track(st, wc * channels, sizeof(float));
    st->w_tpk = track(st, wc * channels, sizeof(float));
    st->w_band = track(st, wc * ES_LOUD_BANDS, sizeof(float));
    st->scratch_cap = (size_t)exact_blocks > wc ? (size_t)exact_blocks : wc;
    st->scratch = track(st, st->scratch_cap, sizeof(double));

    int rc = scope_init(&st->all, channels, (uint64_t)exact_blocks, &st->bytes);
    if (!rc) rc = scope_init(&st->mark, channels, (uint64_t)exact_blocks, &st->bytes);
    if (!rc && (!st->kst || !st->ch_acc || !st->buf || !st->taps || !st->tp_bmax || !st->steps || !st->hop_spk ||
                !st->hop_tpk || !st->fft || !st->fft_in || !st->fft_pow ||
                !st->hann || !st->w_block || !st->w_short || !st->w_maxm || !st->w_maxs ||
                !st->w_spk || !st->w_tpk || !st->w_band || !st->scratch))
        rc = ES_LOUD_ENOMEM;
    if (rc) {
        es_loud_free(st);
        return rc;
    }
    design_taps(st->os, st->taps, &st->tap_l1, &st->tap_lc, &st->tap_lo);
    for (int i = 0; i < st->n_fft; i++)
        st->hann[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / st->n_fft));
    for (int b = 0; b < ES_LOUD_BANDS; b++) {
        double lo = band_edges[b] * st->n_fft / rate, hi = band_edges[b + 1] * st->n_fft / rate;
        int half = st->n_fft / 2;
        st->band_lo[b] = (int)ceil(lo) < 1 ? 1 : (int)ceil(lo);
        st->band_hi[b] = (int)ceil(hi) > half + 1 ? half + 1 : (int)ceil(hi);
    }
    es_loud_reset(st);
    *out = st;
    return ES_LOUD_OK;
}

void es_loud_free(es_loud *st)
{
    if (!st) return;
    free(st->kst); free(st->ch_acc); free(st->buf); free(st->taps); free(st->tp_bmax); free(st->steps);
    free(st->hop_spk); free(st->hop_tpk);
    es_fft_free(st->fft);
    free(st->fft_in); free(st->fft_pow); free(st->hann);
    free(st->w_block); free(st->w_short); free(st->w_maxm); free(st->w_maxs);
    free(st->w_spk); free(st->w_tpk); free(st->w_band); free(st->scratch);
    if (st->all.blocks.bins) scope_free(&st->all);
    if (st->mark.blocks.bins) scope_free(&st->mark);
    free(st);
}

void es_loud_reset(es_loud *st)
{
    int ch = st->ch;
    memset(st->kst, 0, sizeof(double) * KSTATE * (size_t)ch);
    memset(st->ch_acc, 0, sizeof(double) * (size_t)ch);
    memset(st->buf, 0, sizeof(float) * (size_t)ch * st->buf_len);
    memset(st->steps, 0, sizeof(double) * (size_t)st->nsteps_ring);
    memset(st->fft_in, 0, sizeof(float) * (size_t)st->n_fft);
    memset(st->hop_spk, 0, sizeof(float) * (size_t)ch);
    memset(st->hop_tpk, 0, sizeof(float) * (size_t)ch);
    st->n_steps = 0;
    st->step_fill = 0;
    st->mark_lag = 0;
    st->hop_maxm = st->hop_maxs = NONE;
    st->wpos = 0;
    st->wn = 0;
    scope_clear(&st->all, ch);
    scope_clear(&st->mark, ch);
}

void es_loud_mark(es_loud *st)
{
    scope_clear(&st->mark, st->ch);
    st->mark_lag = TP_TAPS / 2;
}

/* ---- processing ---- */

static double window_energy(const es_loud *st, int steps)
{
    if (st->n_steps < (uint64_t)steps) return NAN;
    double s = 0.0;
    int r = st->nsteps_ring;
    int start = (int)((st->n_steps - (uint64_t)steps) % (uint64_t)r);
    for (int i = 0; i < steps; i++) {
        int j = start + i;
        s += st->steps[j >= r ? j - r : j];
    }
    return s / ((double)steps * st->g);
}

static void add_bands(scope *sc, const double *p)
{
    for (int b = 0; b < ES_LOUD_BANDS; b++) sc->band[b] += p[b];
    sc->band_n++;
}

static void end_hop(es_loud *st, double em, double es)
{
    uint64_t need_m = 4 * (uint64_t)st->k, need_s = 30 * (uint64_t)st->k;
    int audible = !isnan(em) && em > es_abs_gate_energy() && es_lufs(em) > ES_GATE_ABS_LUFS;
    double bands[ES_LOUD_BANDS] = {0};
    if (!isnan(em)) es_gate_add(&st->all.blocks, em);
    if (!isnan(es)) es_gate_add(&st->all.shorts, es);
    if (!isnan(em) && st->mark.since_step >= need_m) es_gate_add(&st->mark.blocks, em);
    if (!isnan(es) && st->mark.since_step >= need_s) es_gate_add(&st->mark.shorts, es);
    if (audible) {
        for (int i = 0; i < st->n_fft; i++) st->fft_in[i] *= st->hann[i];
        es_fft_power(st->fft, st->fft_in, st->fft_pow);
        for (int b = 0; b < ES_LOUD_BANDS; b++)
            for (int i = st->band_lo[b]; i < st->band_hi[b]; i++) bands[b] += st->fft_pow[i];
        add_bands(&st->all, bands);
        if (st->mark.since_step >= need_m) add_bands(&st->mark, bands);
    }
    if (st->wcap) {
        int w = st->wpos, ch = st->ch;
        st->w_block[w] = audible ? em : NONE;
        st->w_short[w] = !isnan(es) && es > es_abs_gate_energy() && es_lufs(es) > ES_GATE_ABS_LUFS ? es : NONE;
        st->w_maxm[w] = st->hop_maxm;
        st->w_maxs[w] = st->hop_maxs;
        for (int c = 0; c < ch; c++) {
            st->w_spk[(size_t)w * ch + c] = st->hop_spk[c];
            st->w_tpk[(size_t)w * ch + c] = st->hop_tpk[c];
        }
        for (int b = 0; b < ES_LOUD_BANDS; b++)
            st->w_band[(size_t)w * ES_LOUD_BANDS + b] = audible ? (float)bands[b] : -1.0f;
        st->wpos = w + 1 == st->wcap ? 0 : w + 1;
        st->wn++;
    }
    st->hop_maxm = st->hop_maxs = NONE;
    memset(st->hop_spk, 0, sizeof(float) * (size_t)st->ch);
    memset(st->hop_tpk, 0, sizeof(float) * (size_t)st->ch);
}

static void raise_max(double *m, double v)
{
    if (!isnan(v) && v > *m) *m = v;
}

static double to_lufs(double e)
{
    if (isnan(e)) return NAN;
    return e > 0.0 ? es_lufs(e) : -INFINITY;
}

static void end_step(es_loud *st, double *mom, double *sto, int cap, int *nout)
{
    double e = 0.0;
    for (int c = 0; c < st->ch; c++) {
        e += st->w[c] * st->ch_acc[c];
        st->ch_acc[c] = 0.0;
    }
    st->steps[st->n_steps % (uint64_t)st->nsteps_ring] = e;
    st->step_fill = 0;
    st->n_steps++;
    st->all.since_step++;
    st->mark.since_step++;
    uint64_t need_m = 4 * (uint64_t)st->k, need_s = 30 * (uint64_t)st->k;
    double em = window_energy(st, (int)need_m), es = window_energy(st, (int)need_s);
    raise_max(&st->all.max_m, em);
    raise_max(&st->all.max_s, es);
    if (st->mark.since_step >= need_m) raise_max(&st->mark.max_m, em);
    if (st->mark.since_step >= need_s) raise_max(&st->mark.max_s, es);
    raise_max(&st->hop_maxm, em);
    raise_max(&st->hop_maxs, es);
    if (*nout < cap) {
        if (mom) mom[*nout] = to_lufs(em);
        if (sto) sto[*nout] = to_lufs(es);
    }
    (*nout)++;
    if (st->n_steps % (uint64_t)st->k == 0) end_hop(st, em, es);
}

static void note_peak(double *a, double *b, float *c, float v)
{
    if (v > *a) *a = v;
    if (b && v > *b) *b = v;
    if (v > *c) *c = v;
}

/* The mono mix feeds the band FFT, which only looks at the last n_fft frames of each hop:
 * mix just those, straight into the FFT input in time order. */
static void mono_mix(es_loud *st, int pos_in_hop, int len)
{
    const int hist = TP_TAPS - 1, first = st->hop - st->n_fft;
    int skip = first - pos_in_hop;
    if (skip >= len) return;
    if (skip < 0) skip = 0;
    float *out = st->fft_in + (pos_in_hop + skip - first);
    int n = len - skip;
    double norm = st->wsum > 0.0 ? 1.0 / st->wsum : 1.0;
    for (int i = 0; i < n; i++) out[i] = 0.0f;
    for (int c = 0; c < st->ch; c++) {
        const float wc = (float)(st->w[c] * norm);
        const float *b = st->buf + (size_t)c * st->buf_len + hist + skip;
        if (wc != 0.0f)
            for (int i = 0; i < n; i++) out[i] += wc * b[i];
    }
}

static void process_chunk(es_loud *st, const float *f, int len)
{
    const int ch = st->ch, hist = TP_TAPS - 1;
    const int every = (st->flags & ES_LOUD_TP_EXHAUSTIVE) != 0;
    const int may_skip = !every && st->wcap == 0;
    const int lag = st->mark_lag;
    for (int c = 0; c < ch; c++) {
        float *b = st->buf + (size_t)c * st->buf_len;
        for (int i = 0; i < len; i++) b[hist + i] = f[(size_t)i * ch + c];
    }
    for (int c = 0; c < ch;) { /* K-weighting, two channels at a time */
        int d = c + 1;
        while (d < ch && st->w[d] <= 0.0) d++;
        if (st->w[c] <= 0.0) { c++; continue; }
        float *bc = st->buf + (size_t)c * st->buf_len + hist;
        if (d < ch) {
            float *bd = st->buf + (size_t)d * st->buf_len + hist;
            kfilter2(st->kw, st->kst + KSTATE * c, st->kst + KSTATE * d, bc, bd, len,
                     &st->ch_acc[c], &st->ch_acc[d]);
            c = d + 1;
        } else {
            kfilter(st->kw, st->kst + KSTATE * c, bc, len, &st->ch_acc[c]);
            c = d;
        }
    }
    for (int c = 0; c < ch; c++) { /* peaks */
        float *b = st->buf + (size_t)c * st->buf_len;
        float sp = abs_max(b + hist, len), tp = 0.0f;
        note_peak(&st->all.spk[c], &st->mark.spk[c], &st->hop_spk[c], sp);
        /* an output no larger than the hop's and the mark's true peak so far changes no reading
         * (the whole's is at least the hop's); mark.tpk holds floats, exactly */
        const float moot = st->hop_tpk[c] < (float)st->mark.tpk[c] ? st->hop_tpk[c] : (float)st->mark.tpk[c];
        int excused = 0;   /* (the whole-file scope:) no output of the chunk can raise the peak */
        if (may_skip) {
            const float near = abs_max(b, hist + len);
            excused = near == 0.0f || near * st->tap_l1 + TP_SUBNORMAL_SLACK <= st->mark.tpk[c];
        }
        if (st->os > 1 && !excused)
            tp = true_peak_chunk(st, b, len, sp, moot, every);
        if (lag) { /* right after a mark: only outputs made of samples after it count there */
            float tm = lag < len && st->os > 1
                ? true_peak_chunk(st, b + lag, len - lag, sp, (float)st->mark.tpk[c], every) : 0.0f;
            float v = tm > sp ? tm : sp;
            if (v > st->mark.tpk[c]) st->mark.tpk[c] = v;
        }
        note_peak(&st->all.tpk[c], lag ? NULL : &st->mark.tpk[c], &st->hop_tpk[c], tp > sp ? tp : sp);
    }
    mono_mix(st, (int)(st->n_steps % (uint64_t)st->k) * st->g + st->step_fill, len);
    for (int c = 0; c < ch; c++) {
        float *b = st->buf + (size_t)c * st->buf_len;
        memmove(b, b + len, sizeof(float) * hist);
    }
    st->mark_lag = lag > len ? lag - len : 0;
    st->all.frames += len;
    st->mark.frames += len;
}

int es_loud_process(es_loud *st, const float *frames, int n_frames, double *mom,
                    double *st_out, int cap, int *n_steps)
{
    int nout = 0;
    if (n_steps) *n_steps = 0;
    if (!st || n_frames < 0 || (n_frames > 0 && !frames)) return ES_LOUD_EINVAL;
    int pos = 0;
    while (pos < n_frames) {
        int len = st->g - st->step_fill;
        if (len > n_frames - pos) len = n_frames - pos;
        process_chunk(st, frames + (size_t)pos * st->ch, len);
        st->step_fill += len;
        pos += len;
        if (st->step_fill == st->g) end_step(st, mom, st_out, cap, &nout);
    }
    if (n_steps) *n_steps = nout;
    return ES_LOUD_OK;
}

/* ---- readings ---- */

int es_loud_step_frames(const es_loud *st) { return st->g; }

int es_loud_oversampling(const es_loud *st) { return st->os; }

static uint64_t window_hops(const es_loud *st)
{
    return st->wn < (uint64_t)st->wcap ? st->wn : (uint64_t)st->wcap;
}

double es_loud_frames(const es_loud *st, int scope_id)
{
    if (scope_id == ES_LOUD_ALL) return st->all.frames;
    if (scope_id == ES_LOUD_MARK) return st->mark.frames;
    if (scope_id == ES_LOUD_WINDOW && st->wcap)
        return (double)window_hops(st) * st->hop +
               (double)(st->n_steps % (uint64_t)st->k) * st->g + st->step_fill;
    return 0.0;
}

double es_loud_get_momentary(const es_loud *st) { return to_lufs(window_energy(st, 4 * st->k)); }

double es_loud_get_short_term(const es_loud *st) { return to_lufs(window_energy(st, 30 * st->k)); }

static const scope *pick(const es_loud *st, int scope_id)
{
    if (scope_id == ES_LOUD_ALL) return &st->all;
    if (scope_id == ES_LOUD_MARK) return &st->mark;
    return NULL;
}

int es_loud_get_max(const es_loud *st, int scope_id, double *max_momentary, double *max_short_term)
{
    double m, s;
    const scope *sc = pick(st, scope_id);
    if (sc) {
        m = sc->max_m;
        s = sc->max_s;
    } else if (scope_id == ES_LOUD_WINDOW && st->wcap) {
        m = st->hop_maxm;
        s = st->hop_maxs;
        for (uint64_t i = 0; i < window_hops(st); i++) {
            raise_max(&m, st->w_maxm[i]);
            raise_max(&s, st->w_maxs[i]);
        }
    } else {
        return ES_LOUD_EINVAL;
    }
    if (max_momentary) *max_momentary = m > 0.0 ? es_lufs(m) : NAN;
    if (max_short_term) *max_short_term = s > 0.0 ? es_lufs(s) : NAN;
    return m > 0.0 ? ES_LOUD_OK : ES_LOUD_ENODATA;
}

int es_loud_get_integrated(es_loud *st, int scope_id, double *out, double *err_lu)
{
    double mean = 0.0;
    int rc;
    const scope *sc = pick(st, scope_id);
    if (sc) {
        rc = es_gate_integrated(&sc->blocks, &mean, err_lu);
    } else if (scope_id == ES_LOUD_WINDOW && st->wcap) {
        if (err_lu) *err_lu = 0.0;
        rc = es_gate_exact_stats(st->w_block, (size_t)window_hops(st), 0.1, &mean, NULL, NULL);
    } else {
        return ES_LOUD_EINVAL;
    }
    if (rc == ES_LOUD_OK && out) *out = es_lufs(mean);
    return rc;
}

int es_loud_get_range(es_loud *st, int scope_id, double *lra)
{
    double v = 0.0;
    int rc;
    const scope *sc = pick(st, scope_id);
    if (sc)
        rc = es_gate_range(&sc->shorts, &v, st->scratch);
    else if (scope_id == ES_LOUD_WINDOW && st->wcap)
        rc = es_gate_exact_stats(st->w_short, (size_t)window_hops(st), 0.01, NULL, st->scratch, &v);
    else
        return ES_LOUD_EINVAL;
    if (rc == ES_LOUD_OK && lra) *lra = v;
    return rc;
}

int es_loud_get_peaks(const es_loud *st, int scope_id, int ch, double *sample_peak,
                      double *true_peak)
{
    if (ch < -1 || ch >= st->ch) return ES_LOUD_EINVAL;
    const scope *sc = pick(st, scope_id);
    if (!sc && !(scope_id == ES_LOUD_WINDOW && st->wcap)) return ES_LOUD_EINVAL;
    double sp = 0.0, tp = 0.0;
    int c0 = ch < 0 ? 0 : ch, c1 = ch < 0 ? st->ch : ch + 1;
    for (int c = c0; c < c1; c++) {
        if (sc) {
            if (sc->spk[c] > sp) sp = sc->spk[c];
            if (sc->tpk[c] > tp) tp = sc->tpk[c];
            continue;
        }
        if (st->hop_spk[c] > sp) sp = st->hop_spk[c];
        if (st->hop_tpk[c] > tp) tp = st->hop_tpk[c];
        for (uint64_t i = 0; i < window_hops(st); i++) {
            size_t j = (size_t)i * st->ch + c;
            if (st->w_spk[j] > sp) sp = st->w_spk[j];
            if (st->w_tpk[j] > tp) tp = st->w_tpk[j];
        }
    }
    if (sample_peak) *sample_peak = sp;
    if (true_peak) *true_peak = tp > sp ? tp : sp;
    return ES_LOUD_OK;
}

int es_loud_get_bands(const es_loud *st, int scope_id, double *out)
{
    double sum[ES_LOUD_BANDS] = {0};
    double n = 0.0;
    const scope *sc = pick(st, scope_id);
    if (sc) {
        for (int b = 0; b < ES_LOUD_BANDS; b++) sum[b] = sc->band[b];
        n = (double)sc->band_n;
    } else if (scope_id == ES_LOUD_WINDOW && st->wcap) {
        for (uint64_t i = 0; i < window_hops(st); i++) {
            const float *v = st->w_band + (size_t)i * ES_LOUD_BANDS;
            if (v[0] < 0.0f) continue;
            for (int b = 0; b < ES_LOUD_BANDS; b++) sum[b] += v[b];
            n += 1.0;
        }
    } else {
        return ES_LOUD_EINVAL;
    }
    if (n == 0.0) return ES_LOUD_ENODATA;
    for (int b = 0; b < ES_LOUD_BANDS; b++) out[b] = sum[b] / n;
    return ES_LOUD_OK;
}

double es_loud_state_bytes(const es_loud *st) { return st->bytes; }

void es_loud_kweights(const es_loud *st, double *out10) { memcpy(out10, st->kw, sizeof st->kw); }
