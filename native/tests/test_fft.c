/* es_fft: the real FFT against a naive DFT in double, and inputs with known spectra. */
#include "../fft.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* The larger of two deviations. (Written out rather than fmax(): in a loop, fmax reductions
 * crash Debian 12's aarch64 cross GCC 12.2 with -ftree-vectorize, an internal compiler error.) */
static double worse(double a, double b) { return a > b ? a : b; }

/* Largest |FFT - DFT| over all bins, relative to the largest DFT magnitude. */
static double dft_error(int n, const float *x, const float *out)
{
    /* exp(-2 pi i j / n) for every j, in double; bin k of sample i uses (i * k) mod n */
    double *c = malloc(sizeof(double) * n), *s = malloc(sizeof(double) * n);
    for (int j = 0; j < n; j++) {
        c[j] = cos(2.0 * M_PI * j / n);
        s[j] = -sin(2.0 * M_PI * j / n);
    }
    double worst = 0.0, scale = 0.0;
    for (int k = 0; k <= n / 2; k++) {
        double re = 0.0, im = 0.0;
        for (int i = 0, j = 0; i < n; i++, j = (j + k) % n) {
            re += x[i] * c[j];
            im += x[i] * s[j];
        }
        double dr = out[2 * k] - re, di = out[2 * k + 1] - im;
        double e = sqrt(dr * dr + di * di), mag = sqrt(re * re + im * im);
        if (e > worst) worst = e;
        if (mag > scale) scale = mag;
    }
    free(c);
    free(s);
    return worst / scale;
}

static void test_against_dft(void)
{
    rng r = {12345};
    for (int n = 8; n <= 4096; n *= 2) {
        es_fft *f = es_fft_new(n);
        CHECK(f != NULL, "es_fft_new(%d)", n);
        if (!f) continue;
        CHECK(es_fft_size(f) == n, "size of a %d-point transform", n);
        float *x = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * (n + 2));
        float *pw = malloc(sizeof(float) * (n / 2 + 1));
        for (int i = 0; i < n; i++) x[i] = (float)rng_uniform(&r);
        es_fft_real(f, x, out);
        double err = dft_error(n, x, out);
        /* single precision radix-2: error grows like log2(n) * 2^-24 */
        CHECK(err < 2e-6 * log2(n), "n=%d: relative error %.3g vs the naive DFT", n, err);
        CHECK(out[1] == 0.0f && out[n + 1] == 0.0f, "n=%d: DC and Nyquist bins are real", n);
        /* the power spectrum is |X|^2 of the same transform */
        es_fft_power(f, x, pw);
        double perr = 0.0, pmax = 0.0;
        for (int k = 0; k <= n / 2; k++) {
            double p = (double)out[2 * k] * out[2 * k] + (double)out[2 * k + 1] * out[2 * k + 1];
            if (fabs(p - pw[k]) > perr) perr = fabs(p - pw[k]);
            if (p > pmax) pmax = p;
        }
        CHECK(perr <= 1e-6 * pmax, "n=%d: power vs |X|^2 differ by %.3g", n, perr);
        char name[64];
        snprintf(name, sizeof name, "dft_rel_error_n%d", n);
        report_value(name, err);
        snprintf(name, sizeof name, "power_checksum_n%d", n);
        report_digest(name, fnv1a(FNV_START, pw, sizeof(float) * (n / 2 + 1)));
        free(x);
        free(out);
        free(pw);
        es_fft_free(f);
    }
}

static void test_known_spectra(void)
{
    const int n = 1024;
    es_fft *f = es_fft_new(n);
    float *x = calloc(n, sizeof(float)), *out = malloc(sizeof(float) * (n + 2));
    /* a unit impulse at 0 has a flat spectrum of ones */
    x[0] = 1.0f;
    es_fft_real(f, x, out);
    double dev = 0.0;
    for (int k = 0; k <= n / 2; k++)
        dev = worse(dev, worse(fabs(out[2 * k] - 1.0), fabs(out[2 * k + 1])));
    CHECK(dev < 1e-6, "impulse: spectrum deviates from 1 by %.3g", dev);
    /* a constant: everything in bin 0, which reads n */
    for (int i = 0; i < n; i++) x[i] = 0.5f;
    es_fft_real(f, x, out);
    CHECK_NEAR("constant 0.5: bin 0", out[0], 0.5 * n, 1e-3);
    double rest = 0.0;
    for (int k = 1; k <= n / 2; k++) rest = worse(rest, hypot(out[2 * k], out[2 * k + 1]));
    CHECK(rest < 1e-3, "constant: other bins up to %.3g", rest);
    /* a cosine on bin 37: n/2 at bin 37, nothing elsewhere */
    for (int i = 0; i < n; i++) x[i] = (float)cos(2.0 * M_PI * 37 * i / n);
    es_fft_real(f, x, out);
    CHECK_NEAR("cosine on bin 37: real part", out[2 * 37], n / 2.0, 1e-3);
    CHECK_NEAR("cosine on bin 37: imaginary part", out[2 * 37 + 1], 0.0, 1e-3);
    rest = 0.0;
    for (int k = 0; k <= n / 2; k++)
        if (k != 37) rest = worse(rest, hypot(out[2 * k], out[2 * k + 1]));
    CHECK(rest < 1e-3, "cosine: leakage up to %.3g", rest);
    report_value("cosine_bin37_re", out[2 * 37]);
    /* a sine at Nyquist/2 phase: -n/2 i at its bin */
    for (int i = 0; i < n; i++) x[i] = (float)sin(2.0 * M_PI * 100 * i / n);
    es_fft_real(f, x, out);
    CHECK_NEAR("sine on bin 100: imaginary part", out[2 * 100 + 1], -n / 2.0, 1e-3);
    /* the alternating sequence is all Nyquist */
    for (int i = 0; i < n; i++) x[i] = (i & 1) ? -1.0f : 1.0f;
    es_fft_real(f, x, out);
    CHECK_NEAR("alternating: Nyquist bin", out[n], (double)n, 1e-3);
    free(x);
    free(out);
    es_fft_free(f);
}

static void test_bad_sizes(void)
{
    const int bad[] = {0, -8, 4, 7, 12, 1000, 131072};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(es_fft_new(bad[i]) == NULL, "es_fft_new(%d) must refuse", bad[i]);
    es_fft *f = es_fft_new(65536);
    CHECK(f != NULL, "the largest size, 65536, is accepted");
    es_fft_free(f);
    es_fft_free(NULL);
}

/* Frames in one call give each frame's own windowed power spectrum, bit for bit. */
static void test_frames_in_one_call(void)
{
    const int n = 256, hop = 100, frames = 7, bins = n / 2 + 1;
    const int len = (frames - 1) * hop + n;
    float *x = malloc(sizeof(float) * len), *w = malloc(sizeof(float) * n);
    float *all = malloc(sizeof(float) * bins * frames), *one = malloc(sizeof(float) * bins);
    for (int i = 0; i < len; i++) x[i] = (float)sin(0.05 * i) + 0.25f * (float)((i * 7919) % 13) / 13.0f;
    for (int i = 0; i < n; i++) w[i] = 0.5f - 0.5f * (float)cos(2.0 * M_PI * i / n);
    es_fft *f = es_fft_new(n);
    es_fft_power_frames(f, x, hop, frames, w, all);
    int same = 1;
    for (int i = 0; i < frames; i++) {
        es_fft_power_windowed(f, x + i * hop, w, one);
        same &= memcmp(one, all + i * bins, sizeof(float) * bins) == 0;
    }
    CHECK(same, "es_fft_power_frames equals es_fft_power_windowed frame by frame");
    es_fft_free(f);
    free(x);
    free(w);
    free(all);
    free(one);
}

int main(void)
{
    test_against_dft();
    test_known_spectra();
    test_bad_sizes();
    test_frames_in_one_call();
    return check_finish("test_fft");
}
