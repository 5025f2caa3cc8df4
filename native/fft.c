/* Real FFT: an n/2-point iterative radix-2 complex FFT plus the real-signal split.
 *
 * Speed without changing a bit: the work array is kept as separate real and imaginary
 * rows, and each stage reads its twiddles from a contiguous table (the same float values
 * as exp(-2 pi i j step / m) in the one table before), so the butterflies of a stage are
 * independent lanes the compiler vectorises. Every output value is computed by the same
 * operations in the same order as the plain radix-2 algorithm, so results are identical
 * on every platform (no fast-math, no FMA contraction under -std=c99).
 */
#include "fft.h"

#include <math.h>
#include <stdlib.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

struct es_fft {
    int n;          /* real size */
    int m;          /* complex size n/2 */
    int *bitrev;    /* m entries */
    float *twr;     /* stage twiddles, real parts: stage with half-size h at [h - 1, 2h - 1) */
    float *twi;     /* stage twiddles, imaginary parts */
    float *sr;      /* split twiddles exp(-2 pi i k / n), real parts (m entries) */
    float *si;      /* split twiddles, imaginary parts */
    float *re;      /* m complex values, real parts */
    float *im;      /* imaginary parts */
};

static int is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

es_fft *es_fft_new(int n)
{
    if (!is_pow2(n) || n < 8 || n > 65536)
        return NULL;
    es_fft *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->n = n;
    f->m = n / 2;
    const size_t m = (size_t)f->m;
    f->bitrev = malloc(sizeof(int) * m);
    f->twr = malloc(sizeof(float) * m);
    f->twi = malloc(sizeof(float) * m);
    f->sr = malloc(sizeof(float) * m);
    f->si = malloc(sizeof(float) * m);
    f->re = malloc(sizeof(float) * m);
    f->im = malloc(sizeof(float) * m);
    if (!f->bitrev || !f->twr || !f->twi || !f->sr || !f->si || !f->re || !f->im) {
        es_fft_free(f);
        return NULL;
    }
    int bits = 0;
    while ((1 << bits) < f->m)
        bits++;
    for (int i = 0; i < f->m; i++) {
        int r = 0;
        for (int b = 0; b < bits; b++)
            if (i & (1 << b))
                r |= 1 << (bits - 1 - b);
        f->bitrev[i] = r;
    }
    /* stage of butterfly span 2h uses exp(-2 pi i j (m / 2h) / m) for j < h */
    for (int h = 1; h < f->m; h <<= 1) {
        const int step = f->m / (2 * h);
        for (int j = 0; j < h; j++) {
            double a = -2.0 * M_PI * (j * step) / f->m;
            f->twr[h - 1 + j] = (float)cos(a);
            f->twi[h - 1 + j] = (float)sin(a);
        }
    }
    for (int k = 0; k < f->m; k++) {
        double a = -2.0 * M_PI * k / n;
        f->sr[k] = (float)cos(a);
        f->si[k] = (float)sin(a);
    }
    return f;
}

void es_fft_free(es_fft *f)
{
    if (!f)
        return;
    free(f->bitrev);
    free(f->twr);
    free(f->twi);
    free(f->sr);
    free(f->si);
    free(f->re);
    free(f->im);
    free(f);
}

int es_fft_size(const es_fft *f) { return f->n; }

/* The butterflies of one block: a[j], b[j] <- a[j] + w[j] b[j], a[j] - w[j] b[j]. */
static void butterflies(float *restrict ar, float *restrict ai, float *restrict br,
                        float *restrict bi, const float *restrict wr, const float *restrict wi,
                        int h)
{
    for (int j = 0; j < h; j++) {
        const float tr = br[j] * wr[j] - bi[j] * wi[j];
        const float ti = br[j] * wi[j] + bi[j] * wr[j];
        br[j] = ar[j] - tr;
        bi[j] = ai[j] - ti;
        ar[j] += tr;
        ai[j] += ti;
    }
}

/* In-place complex FFT of (re, im), already in bit-reversed order. */
static void complex_fft(es_fft *f)
{
    float *re = f->re, *im = f->im;
    const int m = f->m;
    /* spans 2 and 4: blocks too short to vectorise within, so across blocks instead */
    {
        const float w0r = f->twr[0], w0i = f->twi[0];
        for (int s = 0; s < m; s += 2) {
            const float tr = re[s + 1] * w0r - im[s + 1] * w0i;
            const float ti = re[s + 1] * w0i + im[s + 1] * w0r;
            re[s + 1] = re[s] - tr;
            im[s + 1] = im[s] - ti;
            re[s] += tr;
            im[s] += ti;
        }
    }
    if (m >= 4) {
        const float *wr = f->twr + 1, *wi = f->twi + 1;
        for (int s = 0; s < m; s += 4) {
            for (int j = 0; j < 2; j++) {
                const int a = s + j, b = s + j + 2;
                const float tr = re[b] * wr[j] - im[b] * wi[j];
                const float ti = re[b] * wi[j] + im[b] * wr[j];
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
    for (int h = 4; h < m; h <<= 1) {
        const float *wr = f->twr + h - 1, *wi = f->twi + h - 1;
        for (int s = 0; s < m; s += 2 * h)
            butterflies(re + s, im + s, re + s + h, im + s + h, wr, wi, h);
    }
}

/* Load n real samples (times a window, when given) as n/2 complex values in bit-reversed
 * order, and transform them. */
static void transform_halves(es_fft *f, const float *in, const float *window)
{
    float *re = f->re, *im = f->im;
    const int *rev = f->bitrev;
    if (window) {
        for (int i = 0; i < f->m; i++) {
            re[rev[i]] = in[2 * i] * window[2 * i];
            im[rev[i]] = in[2 * i + 1] * window[2 * i + 1];
        }
    } else {
        for (int i = 0; i < f->m; i++) {
            re[rev[i]] = in[2 * i];
            im[rev[i]] = in[2 * i + 1];
        }
    }
    complex_fft(f);
}

/* Bins 0 < k < m of the real transform from the half-size one:
 * X[k] = (Z[k] + conj Z[m-k]) / 2 - i e^{-2 pi i k/n} (Z[k] - conj Z[m-k]) / 2
 * Written per bin k with the same operations as always; `power` selects |X|^2 into
 * out[k], else interleaved (re, im) into out[2k], out[2k+1]. */
static inline void split(const es_fft *f, float *restrict out, int power)
{
    const float *re = f->re, *im = f->im, *sr = f->sr, *si = f->si;
    const int m = f->m;
    for (int k = 1; k < m; k++) {
        const float zr = re[k], zi = im[k];
        const float cr = re[m - k], ci = -im[m - k];
        const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
        const float dr = 0.5f * (zr - cr), di = 0.5f * (zi - ci);
        const float tr = sr[k], ti = si[k];
        const float pr = tr * dr - ti * di, pi = tr * di + ti * dr;
        const float xr = er + pi, xi = ei - pr;
        if (power) {
            out[k] = xr * xr + xi * xi;
        } else {
            out[2 * k] = xr;
            out[2 * k + 1] = xi;
        }
    }
}

void es_fft_real(es_fft *f, const float *in, float *out)
{
    const int m = f->m;
    transform_halves(f, in, NULL);
    out[0] = f->re[0] + f->im[0];
    out[1] = 0.0f;
    out[2 * m] = f->re[0] - f->im[0];
    out[2 * m + 1] = 0.0f;
    split(f, out, 0);
}

static void power_of_halves(es_fft *f, float *out)
{
    const int m = f->m;
    const float r0 = f->re[0], i0 = f->im[0];
    out[0] = (r0 + i0) * (r0 + i0);
    out[m] = (r0 - i0) * (r0 - i0);
    split(f, out, 1);
}

void es_fft_power(es_fft *f, const float *in, float *out)
{
    transform_halves(f, in, NULL);
    power_of_halves(f, out);
}

void es_fft_power_windowed(es_fft *f, const float *in, const float *window, float *out)
{
    transform_halves(f, in, window);
    power_of_halves(f, out);
}

void es_fft_power_frames(es_fft *f, const float *in, int hop, int frames, const float *window,
                         float *out)
{
    const size_t bins = (size_t)es_fft_size(f) / 2 + 1;
    for (int i = 0; i < frames; i++)
        es_fft_power_windowed(f, in + (size_t)i * (size_t)hop, window, out + (size_t)i * bins);
}
