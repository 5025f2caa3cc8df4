/* es_rs: output counts for several ratios, a sine through the converter, stop-band
 * rejection, block-size exactness (any split of the input gives the one-call output bit
 * for bit), reset, and the mono mix-downs. */
#include "../resample.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Convert x[0..n) feeding blocks of `block` samples (0: all at once; -1: random sizes) with
 * at most `cap` outputs per call, then flush. Returns the output count; *y is malloc'd. */
static int convert(es_rs *rs, const float *x, int n, int block, int cap, float **y, rng *r)
{
    int room = (int)((double)n * 16 + 64); /* generous: ratios up to 6x and 16x below */
    float *out = malloc(sizeof(float) * room);
    int done = 0, written = 0;
    while (done < n) {
        int len = block == 0 ? n - done : block > 0 ? block : rng_int(r, 1, 5000);
        if (len > n - done) len = n - done;
        int used = 0;
        while (used < len) {
            int n_out = 0, c = cap < room - written ? cap : room - written;
            used += es_rs_process(rs, x + done + used, len - used, out + written, c, &n_out);
            written += n_out;
        }
        done += len;
    }
    for (;;) {
        int c = cap < room - written ? cap : room - written;
        int k = es_rs_flush(rs, out + written, c);
        written += k;
        if (k < c) break;
    }
    *y = out;
    return written;
}

static void test_bad_arguments(void)
{
    es_rs *rs = (es_rs *)&rs; /* anything but NULL: must be reset to NULL on failure */
    CHECK(es_rs_new(0, 8000, 8, &rs) == ES_RS_EINVAL && rs == NULL, "input rate 0");
    CHECK(es_rs_new(48000, -1, 8, &rs) == ES_RS_EINVAL, "negative output rate");
    CHECK(es_rs_new(48000, 8000, 3, &rs) == ES_RS_EINVAL, "3 zero crossings");
    CHECK(es_rs_new(48000, 8000, 33, &rs) == ES_RS_EINVAL, "33 zero crossings");
    CHECK(es_rs_new(1, 16385, 8, &rs) == ES_RS_EINVAL, "a ratio numerator over 16384");
    CHECK(es_rs_new(1, 16384, 4, &rs) == ES_RS_OK && rs != NULL, "numerator 16384 is accepted");
    es_rs_free(rs);
    es_rs_free(NULL);
}

/* A 1 kHz sine at every ratio: the right number of outputs, and outputs that are the sine
 * at the output rate (output j sits at input position j * in / out). */
static void test_sine_ratios(void)
{
    const int rates[][2] = {{48000, 8000}, {44100, 8000}, {48000, 16000}, {22050, 8000},
                            {8000, 48000}, {44100, 48000}, {48000, 44100}};
    for (size_t t = 0; t < sizeof rates / sizeof rates[0]; t++) {
        const int in = rates[t][0], out_rate = rates[t][1];
        const int n = 2 * in + 7;
        const double f = 1000.0, amp = 0.5;
        float *x = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) x[i] = (float)(amp * sin(2.0 * M_PI * f * i / in));
        es_rs *rs;
        CHECK(es_rs_new(in, out_rate, 8, &rs) == ES_RS_OK, "%d -> %d", in, out_rate);
        float *y;
        int m = convert(rs, x, n, 0, 1 << 30, &y, NULL);
        /* outputs at positions j * in / out < n: ceil(n * out / in) of them */
        long want = ((long)n * out_rate + in - 1) / in;
        CHECK(m == want, "%d -> %d: %d outputs for %d inputs, expected %ld", in, out_rate, m, n, want);
        /* away from both ends (the filter sees zeros there), the sine at the output rate */
        double err = 0.0;
        for (int j = m / 4; j < 3 * m / 4; j++) {
            double e = fabs(y[j] - amp * sin(2.0 * M_PI * f * j / out_rate));
            if (e > err) err = e;
        }
        CHECK(err < 2e-3 * amp, "%d -> %d: a 1 kHz sine comes out %.3g off", in, out_rate, err);
        char name[64];
        snprintf(name, sizeof name, "sine_max_error_%d_to_%d", in, out_rate);
        report_value(name, err);
        snprintf(name, sizeof name, "sine_checksum_%d_to_%d", in, out_rate);
        report_digest(name, fnv1a(FNV_START, y, sizeof(float) * m));
        free(x);
        free(y);
        es_rs_free(rs);
    }
}

/* 48 kHz -> 8 kHz: a 6 kHz tone (above the 4 kHz output Nyquist) must not alias into the
 * output (it would fold to 2 kHz), while a 3 kHz tone passes (within 0.5 dB). */
static void test_stop_band(void)
{
    const int n = 48000;
    float *x = malloc(sizeof(float) * n);
    double level[2];
    const double freq[2] = {3000.0, 6000.0};
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < n; i++) x[i] = (float)sin(2.0 * M_PI * freq[t] * i / 48000);
        es_rs *rs;
        es_rs_new(48000, 8000, 8, &rs);
        float *y;
        int m = convert(rs, x, n, 0, 1 << 30, &y, NULL);
        double e = 0.0;
        int cnt = 0;
        for (int j = m / 4; j < 3 * m / 4; j++, cnt++) e += (double)y[j] * y[j];
        level[t] = 10.0 * log10(e / cnt / 0.5); /* dB re the input sine's power */
        free(y);
        es_rs_free(rs);
    }
    /* 3 kHz is 80% of the way to the cut-off (0.94 x 4 kHz) of an 8-zero-crossing filter */
    CHECK(level[0] > -0.5 && level[0] < 0.05, "3 kHz comes through at %.2f dB", level[0]);
    CHECK(level[1] < -60.0, "6 kHz leaks through at %.1f dB", level[1]);
    report_value("passband_3k_db", level[0]);
    report_value("stopband_6k_db", level[1]);
    free(x);
}

/* The streaming contract: feeding blocks of any size, with any output room, gives the very
 * same samples as one call (bit for bit), and reset() starts over as new. */
static void test_block_size_exactness(void)
{
    const int n = 3 * 48000 + 11;
    float *x = malloc(sizeof(float) * n);
    rng r = {7};
    for (int i = 0; i < n; i++)
        x[i] = (float)(0.3 * sin(2.0 * M_PI * 440.0 * i / 48000) + 0.1 * rng_uniform(&r));
    const int rates[][2] = {{48000, 8000}, {44100, 8000}, {8000, 48000}};
    for (size_t t = 0; t < sizeof rates / sizeof rates[0]; t++) {
        es_rs *rs;
        es_rs_new(rates[t][0], rates[t][1], 8, &rs);
        float *ref;
        int m = convert(rs, x, n, 0, 1 << 30, &ref, NULL);
        const int blocks[] = {1, 2, 7, 480, 1024, 4096, 4097, 12000, -1};
        const int caps[] = {1 << 30, 1 << 30, 3, 1 << 30, 1, 1 << 30, 100, 1 << 30, 17};
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
            es_rs_reset(rs);
            float *y;
            int k = convert(rs, x, n, blocks[b], caps[b], &y, &r);
            CHECK(k == m && memcmp(y, ref, sizeof(float) * m) == 0,
                  "%d -> %d in blocks of %d (cap %d): %d outputs, differs from one call", rates[t][0],
                  rates[t][1], blocks[b], caps[b], k);
            free(y);
        }
        if (t == 0) {
            double e = 0.0;
            for (int j = 0; j < m; j++) e += (double)ref[j] * ref[j];
            report_value("stream_rms_48000_to_8000", sqrt(e / m));
            report_digest("stream_checksum_48000_to_8000", fnv1a(FNV_START, ref, sizeof(float) * m));
        }
        free(ref);
        es_rs_free(rs);
    }
    free(x);
}

static void test_pending(void)
{
    es_rs *rs;
    es_rs_new(48000, 8000, 8, &rs);
    float x[600] = {0}, y[200];
    int n_out;
    CHECK(es_rs_pending(rs) == 0, "nothing pending before input");
    es_rs_process(rs, x, 600, y, 200, &n_out);
    /* 600 inputs make 100 outputs in all; those not yet written are pending */
    CHECK(n_out + es_rs_pending(rs) == 100, "written %d + pending %d != 100", n_out, es_rs_pending(rs));
    CHECK(es_rs_flush(rs, y, 200) == 100 - n_out, "flush writes what was pending");
    CHECK(es_rs_pending(rs) == 0, "nothing pending after flush");
    es_rs_free(rs);
}

static void test_mix_mono(void)
{
    const float f[] = {1.0f, 3.0f, 2.0f, -2.0f, -0.5f, 0.25f};
    float out[3];
    es_mix_mono(f, 3, 2, out);
    CHECK(out[0] == 2.0f && out[1] == 0.0f && out[2] == -0.125f, "float stereo mean");
    es_mix_mono(f, 2, 3, out);
    CHECK(out[0] == 2.0f && fabsf(out[1] + 0.75f) < 1e-7f, "float 3-channel mean (%g)", out[1]);
    es_mix_mono(f, 6, 1, out);
    CHECK(out[0] == 1.0f && out[2] == 2.0f, "one channel is copied");
    const short s16[] = {32767, 32767, -32768, -32768, 16384, -16384};
    es_mix_mono_s16(s16, 3, 2, out);
    CHECK(out[0] == 32767.0f / 32768.0f && out[1] == -1.0f && out[2] == 0.0f, "s16 stereo");
    const int s32[] = {2147483647, -2147483647 - 1, 1073741824, 1073741824};
    es_mix_mono_s32(s32, 2, 2, out);
    CHECK(fabsf(out[0]) < 1e-9f && out[1] == 0.5f, "s32 stereo (%g, %g)", out[0], out[1]);
}

int main(void)
{
    test_bad_arguments();
    test_sine_ratios();
    test_stop_band();
    test_block_size_exactness();
    test_pending();
    test_mix_mono();
    return check_finish("test_resample");
}
