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
/* Taps per step of the dot product: that many independent partial sums, which GCC maps to
 * whole vector registers (SLP) without reordering any sum. Each phase's row is padded with
 * zero taps to a multiple of this. */
#define LANES 16

struct es_rs {
    int up, down;        /* out/in = up/down, reduced */
    int half;            /* filter half-width in input samples */
    int taps;            /* 2 * half */
    int span;            /* taps rounded up to LANES: the row length, zero-padded */
    int step_i, step_p;  /* down = step_i * up + step_p: the advance per output */
    float *coef;         /* up phases x span */
    float *buf;          /* input history: span + CHUNK samples */
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
    rs->span = (rs->taps + LANES - 1) / LANES * LANES;
    rs->step_i = down / up;
    rs->step_p = down % up;
    rs->coef = calloc((size_t)up * (size_t)rs->span, sizeof(float));
    rs->buf = malloc(sizeof(float) * (size_t)(rs->span + CHUNK));
    if (!rs->coef || !rs->buf) {
        es_rs_free(rs);
        return ES_RS_ENOMEM;
    }
    const double beta = 8.0;
    const double i0b = bessel_i0(beta);
    for (int p = 0; p < up; p++) {
        const double frac = (double)p / up;
        double sum = 0.0;
        float *c = rs->coef + (size_t)p * rs->span;
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

/* The dot product of one phase row with the input it covers: LANES partial sums, each
 * over every LANES-th tap in order, then added pairwise. The order is fixed by this code
 * alone (no reassociation flags), so every build and architecture gives the same bits. */
static float dot(const float *restrict x, const float *restrict c, int span)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    float a8 = 0.0f, a9 = 0.0f, a10 = 0.0f, a11 = 0.0f, a12 = 0.0f, a13 = 0.0f, a14 = 0.0f,
          a15 = 0.0f;
    /* constant offsets from bumped pointers: contiguous even under -fwrapv (int indices
     * k + j might wrap there, which keeps GCC from combining the loads into vectors) */
    for (const float *end = x + span; x < end; x += LANES, c += LANES) {
        a0 += x[0] * c[0];
        a1 += x[1] * c[1];
        a2 += x[2] * c[2];
        a3 += x[3] * c[3];
        a4 += x[4] * c[4];
        a5 += x[5] * c[5];
        a6 += x[6] * c[6];
        a7 += x[7] * c[7];
        a8 += x[8] * c[8];
        a9 += x[9] * c[9];
        a10 += x[10] * c[10];
        a11 += x[11] * c[11];
        a12 += x[12] * c[12];
        a13 += x[13] * c[13];
        a14 += x[14] * c[14];
        a15 += x[15] * c[15];
    }
    a0 += a8; a1 += a9; a2 += a10; a3 += a11; a4 += a12; a5 += a13; a6 += a14; a7 += a15;
    a0 += a4; a1 += a5; a2 += a6; a3 += a7;
    return (a0 + a2) + (a1 + a3);
}

/* Write outputs whose whole (padded) span is in the buffer. */
static int drain(es_rs *rs, float *out, int cap)
{
    const int span = rs->span, up = rs->up, step_i = rs->step_i, step_p = rs->step_p;
    const float *coef = rs->coef, *buf = rs->buf;
    /* index in buf of the current output's first tap, and the last such index that fits */
    int64_t first = rs->next_i - rs->half + 1 - rs->buf_start;
    const int64_t last = (int64_t)rs->buf_len - span;
    int p = rs->next_p, n = 0;
    while (n < cap && first <= last) {
        out[n++] = dot(buf + first, coef + (size_t)p * span, span);
        first += step_i;
        p += step_p;
        if (p >= up) {
            p -= up;
            first++;
        }
    }
    rs->next_i = first + rs->buf_start + rs->half - 1;
    rs->next_p = p;
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
        int room = rs->span + CHUNK - rs->buf_len;
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
        int room = rs->span + CHUNK - rs->buf_len;
        memset(rs->buf + rs->buf_len, 0, sizeof(float) * (size_t)room);
        rs->buf_len += room; /* zeros past the end; total_in is unchanged */
    }
    return written;
}

/* Each mix sums a frame's channels in channel order, then scales: the stereo loops are the
 * same arithmetic written so that GCC vectorises them (the loop count known per frame). */
void es_mix_mono(const float *in, int frames, int channels, float *out)
{
    if (channels == 1) {
        memcpy(out, in, sizeof(float) * (size_t)frames);
        return;
    }
    const float g = 1.0f / channels;
    if (channels == 2) {
        for (int i = 0; i < frames; i++)
            out[i] = (in[2 * (size_t)i] + in[2 * (size_t)i + 1]) * g;
        return;
    }
    for (int i = 0; i < frames; i++) {
        const float *f = in + (size_t)i * channels;
        float s = f[0];
        for (int c = 1; c < channels; c++)
            s += f[c];
        out[i] = s * g;
    }
}

void es_mix_mono_s16(const short *in, int frames, int channels, float *out)
{
    const float g = 1.0f / (32768.0f * channels);
    if (channels == 2) {
        for (int i = 0; i < frames; i++)
            out[i] = (float)(in[2 * (size_t)i] + in[2 * (size_t)i + 1]) * g;
        return;
    }
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
