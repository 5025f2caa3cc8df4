/* Real FFT: an n/2-point iterative radix-2 complex FFT plus the real-signal split. */
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
    float *tw;      /* m/2 complex twiddles exp(-2 pi i k / m), interleaved */
    float *split;   /* n/2 complex twiddles exp(-2 pi i k / n), interleaved */
    float *work;    /* m complex values, interleaved */
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
    f->bitrev = malloc(sizeof(int) * (size_t)f->m);
    f->tw = malloc(sizeof(float) * (size_t)f->m);
    f->split = malloc(sizeof(float) * (size_t)n);
    f->work = malloc(sizeof(float) * 2 * (size_t)f->m);
    if (!f->bitrev || !f->tw || !f->split || !f->work) {
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
    for (int k = 0; k < f->m / 2; k++) {
        double a = -2.0 * M_PI * k / f->m;
        f->tw[2 * k] = (float)cos(a);
        f->tw[2 * k + 1] = (float)sin(a);
    }
    for (int k = 0; k < f->m; k++) {
        double a = -2.0 * M_PI * k / n;
        f->split[2 * k] = (float)cos(a);
        f->split[2 * k + 1] = (float)sin(a);
    }
    return f;
}

void es_fft_free(es_fft *f)
{
    if (!f)
        return;
    free(f->bitrev);
    free(f->tw);
    free(f->split);
    free(f->work);
    free(f);
}

int es_fft_size(const es_fft *f) { return f->n; }

/* In-place complex FFT of f->work (already in bit-reversed order). */
static void complex_fft(es_fft *f)
{
    float *w = f->work;
    const int m = f->m;
    for (int len = 2; len <= m; len <<= 1) {
        const int half = len >> 1;
        const int step = m / len;
        for (int start = 0; start < m; start += len) {
            for (int j = 0; j < half; j++) {
                const float wr = f->tw[2 * j * step], wi = f->tw[2 * j * step + 1];
                float *a = w + 2 * (start + j);
                float *b = w + 2 * (start + j + half);
                const float tr = b[0] * wr - b[1] * wi;
                const float ti = b[0] * wi + b[1] * wr;
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
        }
    }
}

/* Load n real samples as n/2 complex values in bit-reversed order, and transform them. */
static void transform_halves(es_fft *f, const float *in)
{
    float *w = f->work;
    for (int i = 0; i < f->m; i++) {
        const int r = f->bitrev[i];
        w[2 * r] = in[2 * i];
        w[2 * r + 1] = in[2 * i + 1];
    }
    complex_fft(f);
}

/* Bin k (0 < k < m) of the real transform from the half-size one:
 * X[k] = (Z[k] + conj Z[m-k]) / 2 - i e^{-2 pi i k/n} (Z[k] - conj Z[m-k]) / 2 */
static void split_bin(const es_fft *f, int k, float *xr, float *xi)
{
    const float *w = f->work;
    const int m = f->m;
    const float zr = w[2 * k], zi = w[2 * k + 1];
    const float cr = w[2 * (m - k)], ci = -w[2 * (m - k) + 1];
    const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
    const float dr = 0.5f * (zr - cr), di = 0.5f * (zi - ci);
    const float tr = f->split[2 * k], ti = f->split[2 * k + 1];
    const float pr = tr * dr - ti * di, pi = tr * di + ti * dr;
    *xr = er + pi;
    *xi = ei - pr;
}

void es_fft_real(es_fft *f, const float *in, float *out)
{
    const int m = f->m;
    const float *w = f->work;
    transform_halves(f, in);
    out[0] = w[0] + w[1];
    out[1] = 0.0f;
    out[2 * m] = w[0] - w[1];
    out[2 * m + 1] = 0.0f;
    for (int k = 1; k < m; k++)
        split_bin(f, k, &out[2 * k], &out[2 * k + 1]);
}

void es_fft_power(es_fft *f, const float *in, float *out)
{
    const int m = f->m;
    const float *w = f->work;
    transform_halves(f, in);
    out[0] = (w[0] + w[1]) * (w[0] + w[1]);
    out[m] = (w[0] - w[1]) * (w[0] - w[1]);
    for (int k = 1; k < m; k++) {
        float xr, xi;
        split_bin(f, k, &xr, &xi);
        out[k] = xr * xr + xi * xi;
    }
}
