/* Rational polyphase resampler with a Kaiser-windowed sinc prototype. */
#include "resample.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define CHUNK 4096 /* input samples buffered per step beyond the filter span */

struct es_rs {
    int up, down;        /* out/in = up/down, reduced */
    int half;            /* filter half-width in input samples */
    int taps;            /* 2 * half */
    float *coef;         /* up phases x taps */
    float *buf;          /* input history: taps + CHUNK samples */
    int buf_len;         /* valid samples in buf */
    int64_t buf_start;   /* absolute input index of buf[0] */
    int64_t next_i;      /* integer part of the next output position */
    int next_p;          /* its fractional part, in 1/up */
    int64_t total_in;    /* input samples seen */
    int64_t total_out;   /* outputs written */
};

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Zeroth-order modified Bessel function, for the Kaiser window. */
static double bessel_i0(double x)
{
    double sum = 1.0, term = 1.0;
    for (int k = 1; k < 50; k++) {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        if (term < 1e-12 * sum)
            break;
    }
    return sum;
}

int es_rs_new(int in_rate, int out_rate, int zero_crossings, es_rs **out)
{
    *out = NULL;
    if (in_rate <= 0 || out_rate <= 0 || zero_crossings < 4 || zero_crossings > 32)
        return ES_RS_EINVAL;
    const int g = gcd(in_rate, out_rate);
    const int up = out_rate / g, down = in_rate / g;
    if (up > 16384)
        return ES_RS_EINVAL;
    es_rs *rs = calloc(1, sizeof *rs);
    if (!rs)
        return ES_RS_ENOMEM;
    rs->up = up;
    rs->down = down;
    /* cutoff in cycles per input sample, a little below the lower Nyquist */
    const double ratio = (double)out_rate / in_rate;
    const double fc = 0.5 * (ratio < 1.0 ? ratio : 1.0) * 0.94;
    rs->half = (int)ceil(zero_crossings / (2.0 * fc));
    rs->taps = 2 * rs->half;
    rs->coef = malloc(sizeof(float) * (size_t)up * (size_t)rs->taps);
    rs->buf = malloc(sizeof(float) * (size_t)(rs->taps + CHUNK));
    if (!rs->coef || !rs->buf) {
        es_rs_free(rs);
        return ES_RS_ENOMEM;
    }
    const double beta = 8.0;
    const double i0b = bessel_i0(beta);
    for (int p = 0; p < up; p++) {
        const double frac = (double)p / up;
        double sum = 0.0;
        float *c = rs->coef + (size_t)p * rs->taps;
        for (int k = 0; k < rs->taps; k++) {
            /* tap k multiplies x[i - half + 1 + k]; distance u = t - n */
            const double u = frac + rs->half - 1 - k;
            const double r = u / rs->half;
            double v = 0.0;
            if (r > -1.0 && r < 1.0) {
                const double a = 2.0 * fc * u;
                const double sinc = fabs(a) < 1e-12 ? 1.0 : sin(M_PI * a) / (M_PI * a);
                v = 2.0 * fc * sinc * bessel_i0(beta * sqrt(1.0 - r * r)) / i0b;
            }
            c[k] = (float)v;
            sum += v;
        }
        for (int k = 0; k < rs->taps; k++)
            c[k] = (float)(c[k] / sum);
    }
    es_rs_reset(rs);
    *out = rs;
    return ES_RS_OK;
}

void es_rs_free(es_rs *rs)
{
    if (!rs)
        return;
    free(rs->coef);
    free(rs->buf);
    free(rs);
}

void es_rs_reset(es_rs *rs)
{
    /* half-1 zeros stand before the first input sample */
    memset(rs->buf, 0, sizeof(float) * (size_t)(rs->half - 1));
    rs->buf_len = rs->half - 1;
    rs->buf_start = -(int64_t)(rs->half - 1);
    rs->next_i = 0;
    rs->next_p = 0;
    rs->total_in = 0;
    rs->total_out = 0;
}

/* Write outputs whose whole span is in the buffer. */
static int drain(es_rs *rs, float *out, int cap)
{
    int n = 0;
    while (n < cap) {
        const int64_t first = rs->next_i - rs->half + 1 - rs->buf_start;
        if (first + rs->taps > rs->buf_len)
            break;
        const float *x = rs->buf + first;
        const float *c = rs->coef + (size_t)rs->next_p * rs->taps;
        /* four partial sums: lets the compiler vectorise without reassociation flags */
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        int k = 0;
        for (; k + 4 <= rs->taps; k += 4) {
            a0 += x[k] * c[k];
            a1 += x[k + 1] * c[k + 1];
            a2 += x[k + 2] * c[k + 2];
            a3 += x[k + 3] * c[k + 3];
        }
        for (; k < rs->taps; k++)
            a0 += x[k] * c[k];
        out[n++] = (a0 + a1) + (a2 + a3);
        rs->next_p += rs->down;
        rs->next_i += rs->next_p / rs->up;
        rs->next_p %= rs->up;
    }
    rs->total_out += n;
    return n;
}

/* Drop buffered samples that no future output needs. */
static void compact(es_rs *rs)
{
    int64_t keep_from = rs->next_i - rs->half + 1 - rs->buf_start;
    if (keep_from <= 0)
        return;
    if (keep_from > rs->buf_len)
        keep_from = rs->buf_len;
    memmove(rs->buf, rs->buf + keep_from, sizeof(float) * (size_t)(rs->buf_len - keep_from));
    rs->buf_len -= (int)keep_from;
    rs->buf_start += keep_from;
}

int es_rs_process(es_rs *rs, const float *in, int n, float *out, int cap, int *n_out)
{
    int consumed = 0, written = 0;
    for (;;) {
        written += drain(rs, out + written, cap - written);
        if (written >= cap || consumed >= n)
            break;
        compact(rs);
        int room = rs->taps + CHUNK - rs->buf_len;
        if (room <= 0)
            break;
        int take = n - consumed < room ? n - consumed : room;
        memcpy(rs->buf + rs->buf_len, in + consumed, sizeof(float) * (size_t)take);
        rs->buf_len += take;
        rs->total_in += take;
        consumed += take;
    }
    *n_out = written;
    return consumed;
}

int es_rs_pending(const es_rs *rs)
{
    /* outputs at positions j * down / up < total_in */
    const int64_t total = (rs->total_in * rs->up + rs->down - 1) / rs->down;
    return (int)(total - rs->total_out);
}

int es_rs_flush(es_rs *rs, float *out, int cap)
{
    int want = es_rs_pending(rs);
    if (want > cap)
        want = cap;
    int written = 0;
    while (written < want) {
        written += drain(rs, out + written, want - written);
        if (written >= want)
            break;
        compact(rs);
        int room = rs->taps + CHUNK - rs->buf_len;
        memset(rs->buf + rs->buf_len, 0, sizeof(float) * (size_t)room);
        rs->buf_len += room; /* zeros past the end; total_in is unchanged */
    }
    return written;
}

void es_mix_mono(const float *in, int frames, int channels, float *out)
{
    if (channels == 1) {
        memcpy(out, in, sizeof(float) * (size_t)frames);
        return;
    }
    const float g = 1.0f / channels;
    for (int i = 0; i < frames; i++) {
        float s = 0.0f;
        for (int c = 0; c < channels; c++)
            s += in[(size_t)i * channels + c];
        out[i] = s * g;
    }
}

void es_mix_mono_s16(const short *in, int frames, int channels, float *out)
{
    const float g = 1.0f / (32768.0f * channels);
    for (int i = 0; i < frames; i++) {
        int s = 0;
        for (int c = 0; c < channels; c++)
            s += in[(size_t)i * channels + c];
        out[i] = s * g;
    }
}

void es_mix_mono_s32(const int *in, int frames, int channels, float *out)
{
    const double g = 1.0 / (2147483648.0 * channels);
    for (int i = 0; i < frames; i++) {
        double s = 0.0;
        for (int c = 0; c < channels; c++)
            s += in[(size_t)i * channels + c];
        out[i] = (float)(s * g);
    }
}
