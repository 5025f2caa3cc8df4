/* es_fp: peaks of tone bursts at known frequencies, the streaming property (blocks of any
 * size give exactly the peaks and hashes of one call), pair hashes of hand-made peaks
 * (layout, target zone, fan-out, speed), and parameter checks. */
#include "../fingerprint.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define RATE 8000
#define MELODY_S 12 /* seconds of test melody */

typedef struct {
    es_fp_peak *p;
    int n, cap;
} peaks;

static void push(peaks *ps, const es_fp_peak *src, int n)
{
    if (ps->n + n > ps->cap) {
        ps->cap = 2 * (ps->n + n) + 64;
        ps->p = realloc(ps->p, sizeof(es_fp_peak) * ps->cap);
    }
    memcpy(ps->p + ps->n, src, sizeof(es_fp_peak) * n);
    ps->n += n;
}

/* All peaks of x, fed in blocks of `block` samples (0: one call, -1: random sizes), with
 * `cap` peaks of room per call (at least the per-frame maximum). */
static peaks extract(const es_fp_params *p, const float *x, int n, int block, int cap, rng *r)
{
    es_fp *fp;
    peaks out = {0};
    if (es_fp_new(p, &fp) != ES_FP_OK) return out;
    es_fp_peak *buf = malloc(sizeof(es_fp_peak) * cap);
    int done = 0;
    long final_before = 0;
    while (done < n) {
        int len = block == 0 ? n - done : block > 0 ? block : rng_int(r, 1, 3000);
        if (len > n - done) len = n - done;
        int used = 0;
        while (used < len) {
            int k = 0;
            used += es_fp_process(fp, x + done + used, len - used, buf, cap, &k);
            /* every peak written is final, and later than the previous watermark - 1 */
            for (int i = 0; i < k; i++)
                if (buf[i].time <= final_before - 1 || buf[i].time > es_fp_frames_final(fp))
                    check_failed++;
            final_before = es_fp_frames_final(fp);
            push(&out, buf, k);
        }
        done += len;
    }
    int k;
    while ((k = es_fp_flush(fp, buf, cap)) > 0) push(&out, buf, k);
    free(buf);
    es_fp_free(fp);
    return out;
}

/* A melody: a new note every 0.25 s (two harmonics, 5 ms ramps) over faint noise. */
static float *melody(int n)
{
    float *x = malloc(sizeof(float) * n);
    rng r = {2024};
    double f = 440.0, phase1 = 0.0, phase2 = 0.0;
    const int note = RATE / 4, ramp = RATE / 200;
    for (int i = 0; i < n; i++) {
        if (i % note == 0) f = 150.0 * pow(2.0, rng_int(&r, 0, 48) / 12.0); /* 150 Hz .. 2.4 kHz */
        int pos = i % note;
        double env = pos < ramp ? (double)pos / ramp : pos > note - ramp ? (double)(note - pos) / ramp : 1.0;
        phase1 += 2.0 * M_PI * f / RATE;
        phase2 += 2.0 * M_PI * 2.0 * f / RATE;
        x[i] = (float)(env * (0.4 * sin(phase1) + 0.15 * sin(phase2)) + 0.003 * rng_uniform(&r));
    }
    return x;
}

static int same_peaks(const peaks *a, const peaks *b)
{
    return a->n == b->n && memcmp(a->p, b->p, sizeof(es_fp_peak) * a->n) == 0;
}

/* Hashes of anchors [0, n) computed in one call, or in pieces [first, end). */
static int hash_all(const es_hash_params *hp, const peaks *ps, int piece, unsigned *h, float *t, int cap)
{
    int w = 0;
    int step = piece > 0 ? piece : ps->n;
    for (int first = 0; first < ps->n; first += step) {
        int end = first + step < ps->n ? first + step : ps->n;
        w += es_fp_hash(hp, ps->p, ps->n, first, end, 1.0f, h + w, t + w, cap - w);
    }
    return w;
}

static void test_streaming_property(void)
{
    const int n = MELODY_S * RATE + 77;
    float *x = melody(n);
    es_fp_params params[2];
    es_fp_default_params(&params[0]);
    /* the query side's denser settings (daemon/earshot/fingerprint.py) */
    params[1] = params[0];
    params[1].time_radius = 6;
    params[1].min_salience_db = 4.0f;
    params[1].max_peaks_per_frame = 4;
    const char *side[2] = {"catalog", "query"};
    rng r = {99};
    for (int s = 0; s < 2; s++) {
        const int per = params[s].max_peaks_per_frame;
        peaks ref = extract(&params[s], x, n, 0, 1 << 20, NULL);
        /* four notes a second, a 160 / 96 ms time neighbourhood: a few peaks per second */
        CHECK(ref.n > 3 * MELODY_S, "%s: only %d peaks in %d s of melody", side[s], ref.n, MELODY_S);
        int ordered = 1;
        for (int i = 1; i < ref.n; i++) ordered &= ref.p[i].time >= ref.p[i - 1].time - 1.0f;
        CHECK(ordered, "%s: peaks come out in frame order", side[s]);
        const int blocks[] = {1, 5, 127, 128, 129, 1000, 8000, -1, -1};
        const int caps[] = {1 << 20, 1 << 20, per, 1 << 20, 2 * per, 1 << 20, per, 1 << 20, per};
        int failed_before = check_failed;
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
            peaks got = extract(&params[s], x, n, blocks[b], caps[b], &r);
            CHECK(same_peaks(&got, &ref), "%s: blocks of %d (cap %d) give %d peaks, one call %d (or other values)",
                  side[s], blocks[b], caps[b], got.n, ref.n);
            free(got.p);
        }
        CHECK(check_failed == failed_before, "%s: watermark property held", side[s]);
        /* hashes of anchors taken in pieces are those of one call */
        es_hash_params hp;
        es_hash_default_params(&hp);
        if (s == 1) hp.fanout = 6;
        const int cap = ref.n * hp.fanout;
        unsigned *h1 = malloc(sizeof(unsigned) * cap), *h2 = malloc(sizeof(unsigned) * cap);
        float *t1 = malloc(sizeof(float) * cap), *t2 = malloc(sizeof(float) * cap);
        int n1 = hash_all(&hp, &ref, 0, h1, t1, cap);
        CHECK(n1 > ref.n, "%s: %d hashes from %d peaks", side[s], n1, ref.n);
        const int pieces[] = {1, 3, 64};
        for (size_t k = 0; k < 3; k++) {
            int n2 = hash_all(&hp, &ref, pieces[k], h2, t2, cap);
            CHECK(n2 == n1 && memcmp(h1, h2, sizeof(unsigned) * n1) == 0 &&
                      memcmp(t1, t2, sizeof(float) * n1) == 0,
                  "%s: anchors in pieces of %d give other hashes", side[s], pieces[k]);
        }
        char name[64];
        double fsum = 0.0;
        for (int i = 0; i < ref.n; i++) fsum += ref.p[i].freq;
        snprintf(name, sizeof name, "%s_peaks", side[s]);
        report_value(name, ref.n);
        snprintf(name, sizeof name, "%s_mean_log2_freq", side[s]);
        report_value(name, fsum / ref.n);
        snprintf(name, sizeof name, "%s_hashes", side[s]);
        report_value(name, n1);
        snprintf(name, sizeof name, "%s_peaks_checksum", side[s]);
        report_exact(name, fnv1a(FNV_START, ref.p, sizeof(es_fp_peak) * ref.n));
        snprintf(name, sizeof name, "%s_hashes_checksum", side[s]);
        report_exact(name, fnv1a(FNV_START, h1, sizeof(unsigned) * n1));
        free(h1); free(h2); free(t1); free(t2);
        free(ref.p);
    }
    free(x);
}

/* Tone bursts (0.4 s, 20 ms ramps, 0.3 s of silence between): every peak sits on a burst's
 * frequency, inside the burst, and every burst has a peak. */
static void test_tone_bursts(void)
{
    const double freq[] = {220.0, 440.0, 1000.0, 1500.0, 2500.0, 3300.0};
    const int nb = 6, burst = (int)(0.4 * RATE), gap = (int)(0.3 * RATE), ramp = (int)(0.02 * RATE);
    const int n = nb * (burst + gap) + gap;
    float *x = calloc(n, sizeof(float));
    for (int b = 0; b < nb; b++) {
        int start = gap + b * (burst + gap);
        for (int i = 0; i < burst; i++) {
            double env = i < ramp ? 0.5 - 0.5 * cos(M_PI * i / ramp)
                       : i >= burst - ramp ? 0.5 - 0.5 * cos(M_PI * (burst - i) / ramp) : 1.0;
            x[start + i] = (float)(0.5 * env * sin(2.0 * M_PI * freq[b] * i / RATE));
        }
    }
    es_fp_params p;
    es_fp_default_params(&p);
    peaks ps = extract(&p, x, n, 0, 1 << 20, NULL);
    int found[6] = {0};
    double worst = 0.0;
    for (int i = 0; i < ps.n; i++) {
        double hz = pow(2.0, ps.p[i].freq);
        double centre_s = (ps.p[i].time * p.hop + p.n_fft / 2.0) / RATE; /* frame centre */
        int b = (int)((centre_s * RATE - gap) / (burst + gap));
        int ok = b >= 0 && b < nb && fabs(hz - freq[b]) < 4.0; /* half a bin is 3.9 Hz */
        CHECK(ok, "peak %d at %.1f Hz, %.3f s matches no burst", i, hz, centre_s);
        if (ok) {
            found[b] = 1;
            if (fabs(hz - freq[b]) > worst) worst = fabs(hz - freq[b]);
        }
    }
    for (int b = 0; b < nb; b++) CHECK(found[b], "no peak for the %.0f Hz burst", freq[b]);
    report_value("burst_peaks", ps.n);
    report_value("burst_worst_freq_error_hz", worst);
    free(ps.p);
    free(x);
}

static unsigned pack(int q1, int qd, int qt) { return ((unsigned)q1 << 14) | ((unsigned)qd << 6) | (unsigned)qt; }

/* Hashes of peaks placed by hand, checked against the layout q1 << 14 | qd << 6 | qt. */
static void test_hash_layout(void)
{
    es_hash_params hp;
    es_hash_default_params(&hp);
    /* the layout this test spells out: fmin 100 Hz, 12 / 24 per octave, 1.5 oct, dt 2..48
     * frames in units of one frame, fanout 3 */
    hp.fmin_hz = 100.0f;
    hp.f1_per_octave = 12;
    hp.df_per_octave = 24;
    hp.max_doct = 1.5f;
    hp.dt_min = 2;
    hp.dt_max = 48;
    hp.fanout = 3;
    hp.dt_step = 1.0f;
    hp.dt_tolerance = 0.0f;
    /* anchor at 7.7 = log2(100) + 1.056 octaves (q1 = 12); targets: */
    es_fp_peak ps[] = {
        {0.0f, 7.70f, 10.0f},   /* anchor */
        {1.0f, 7.90f, 50.0f},   /* dt 1: before the zone */
        {10.0f, 8.22f, 20.0f},  /* df +0.52 (qd 48), dt 10 */
        {12.0f, 7.30f, 30.0f},  /* df -0.40 (qd 26), dt 12 */
        {20.0f, 9.30f, 60.0f},  /* df +1.60: outside the interval range */
        {30.0f, 7.71f, 5.0f},   /* df +0.01 (qd 36), dt 30, the weakest: beyond the fan-out */
        {40.0f, 6.90f, 25.0f},  /* df -0.80 (qd 16), dt 40 */
        {49.0f, 7.80f, 90.0f},  /* dt 49: after the zone */
    };
    unsigned h[8];
    float t[8];
    int n = es_fp_hash(&hp, ps, 8, 0, 1, 1.0f, h, t, 8);
    CHECK(n == 3, "fan-out 3 gives %d hashes", n);
    /* strongest first: salience 30 (dt 12), 25 (dt 40), 20 (dt 10) */
    CHECK(n == 3 && h[0] == pack(12, 26, 12), "first hash %u, expected %u", h[0], pack(12, 26, 12));
    CHECK(n == 3 && h[1] == pack(12, 16, 40), "second hash %u, expected %u", h[1], pack(12, 16, 40));
    CHECK(n == 3 && h[2] == pack(12, 48, 10), "third hash %u, expected %u", h[2], pack(12, 48, 10));
    CHECK(t[0] == 0.0f && t[2] == 0.0f, "anchor times");
    /* the cap is respected */
    CHECK(es_fp_hash(&hp, ps, 8, 0, 1, 1.0f, h, t, 2) == 2, "cap 2 gives 2 hashes");
    /* the same peaks played 3% fast (times / 1.03, log-frequencies + log2 1.03), hashed with
     * speed 1.03, give the same hashes and the anchor time on the catalog's scale */
    const float s = 1.03f;
    es_fp_peak fast[8];
    for (int i = 0; i < 8; i++) {
        fast[i] = ps[i];
        fast[i].time = (ps[i].time + 100.0f) / s;
        fast[i].freq = ps[i].freq + log2f(s);
    }
    unsigned hs[8];
    float ts[8];
    int ns = es_fp_hash(&hp, fast, 8, 0, 1, s, hs, ts, 8);
    CHECK(ns == 3 && memcmp(h, hs, sizeof(unsigned) * 3) == 0, "speed 1.03 maps back onto the same hashes");
    CHECK_NEAR("anchor time at speed 1.03", ts[0], 100.0, 1e-3);
    /* parameter checks */
    es_hash_params bad = hp;
    bad.fanout = 0;
    CHECK(es_fp_hash(&bad, ps, 8, 0, 1, 1.0f, h, t, 8) == ES_FP_EINVAL, "fanout 0");
    bad = hp;
    bad.dt_max = 64;
    CHECK(es_fp_hash(&bad, ps, 8, 0, 1, 1.0f, h, t, 8) == ES_FP_EINVAL, "dt_max 64");
    CHECK(es_fp_hash(&hp, ps, 8, 0, 1, 0.0f, h, t, 8) == ES_FP_EINVAL, "speed 0");
    CHECK(es_fp_hash(&hp, ps, 8, 0, 9, 1.0f, h, t, 8) == ES_FP_EINVAL, "end past the array");
    bad = hp;
    bad.dt_step = 0.5f;
    CHECK(es_fp_hash(&bad, ps, 8, 0, 1, 1.0f, h, t, 8) == ES_FP_EINVAL, "dt_step below a frame");
    bad = hp;
    bad.dt_step = 2.0f;
    bad.dt_max = 127;
    CHECK(es_fp_hash(&bad, ps, 8, 0, 1, 1.0f, h, t, 8) == ES_FP_EINVAL, "64 units of dt_step");

    /* units of 2 frames: dt 12 -> 6, 40 -> 20, 10 -> 5 */
    es_hash_params coarse = hp;
    coarse.dt_step = 2.0f;
    n = es_fp_hash(&coarse, ps, 8, 0, 1, 1.0f, h, t, 8);
    CHECK(n == 3 && h[0] == pack(12, 26, 6) && h[1] == pack(12, 16, 20) && h[2] == pack(12, 48, 5),
          "dt_step 2 halves the time units");
    /* a tolerance of 0.6 frame: gap 12 -> units 11..13 (one frame each), so every exact hash
     * comes with its two neighbours, in order; the per-pair bound covers it */
    es_hash_params tol = hp;
    tol.dt_tolerance = 0.6f;
    unsigned ht[16];
    float tt[16];
    n = es_fp_hash(&tol, ps, 8, 0, 1, 1.0f, ht, tt, 16);
    CHECK(n == 9, "tolerance 0.6 gives %d hashes, expected 9", n);
    CHECK(n == 9 && ht[0] == pack(12, 26, 11) && ht[1] == pack(12, 26, 12) && ht[2] == pack(12, 26, 13),
          "the gap's unit and its neighbours");
    CHECK(n == 9 && ht[4] == pack(12, 16, 40) && ht[7] == pack(12, 48, 10), "each pair's own unit");
    CHECK(es_fp_hashes_per_pair_max(&tol) >= 3, "per-pair bound %d", es_fp_hashes_per_pair_max(&tol));
    CHECK(es_fp_hashes_per_pair_max(&bad) == ES_FP_EINVAL, "per-pair bound of bad parameters");
}

/* Hashing picked anchors gives exactly what hashing each of them alone gives, in order,
 * and refuses indices out of order or out of range. */
static void test_hash_picked(void)
{
    const int n = MELODY_S * RATE;
    float *x = melody(n);
    es_fp_params params;
    es_fp_default_params(&params);
    params.time_radius = 6;
    params.min_salience_db = 4.0f;
    params.max_peaks_per_frame = 4;
    peaks ps = extract(&params, x, n, 0, 1 << 20, NULL);
    es_hash_params hp;
    es_hash_default_params(&hp);
    hp.fanout = 6;
    hp.dt_tolerance = 1.0f;
    const int per = hp.fanout * es_fp_hashes_per_pair_max(&hp);
    int *pick = malloc(sizeof(int) * ps.n);
    unsigned *h = malloc(sizeof(unsigned) * per * ps.n), *g = malloc(sizeof(unsigned) * per * ps.n);
    float *t = malloc(sizeof(float) * per * ps.n), *u = malloc(sizeof(float) * per * ps.n);
    rng r = {7};
    const float speeds[] = {0.94f, 1.0f, 1.045f};
    for (int s = 0; s < 3; s++) {
        int k = 0, want = 0;
        for (int i = 0; i < ps.n; i++)
            if (i == ps.n - 1 || rng_int(&r, 0, 7) == 0)   /* about an 8th, and the last peak */
                pick[k++] = i;
        for (int j = 0; j < k; j++)
            want += es_fp_hash(&hp, ps.p, ps.n, pick[j], pick[j] + 1, speeds[s], h + want, t + want,
                               per * ps.n - want);
        int got = es_fp_hash_picked(&hp, ps.p, ps.n, pick, k, speeds[s], g, u, per * ps.n);
        CHECK(want > 100 && got == want && memcmp(h, g, sizeof(unsigned) * want) == 0 &&
              memcmp(t, u, sizeof(float) * want) == 0,
              "speed %.3f: %d picked anchors hash to %d, alone %d (or other values)", speeds[s], k, got, want);
        CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, pick, k, speeds[s], g, u, 5) == 5, "the cap is respected");
    }
    int bad[] = {3, 3};
    CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, bad, 2, 1.0f, g, u, per) == ES_FP_EINVAL, "a repeated anchor");
    bad[0] = 4;
    CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, bad, 2, 1.0f, g, u, per) == ES_FP_EINVAL, "anchors out of order");
    bad[0] = -1;
    CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, bad, 1, 1.0f, g, u, per) == ES_FP_EINVAL, "a negative anchor");
    bad[0] = ps.n;
    CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, bad, 1, 1.0f, g, u, per) == ES_FP_EINVAL, "an anchor past the array");
    CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, NULL, 0, 1.0f, g, u, per) == 0, "no anchor, no hash");
    CHECK(es_fp_hash_picked(&hp, ps.p, ps.n, NULL, 1, 1.0f, g, u, per) == ES_FP_EINVAL, "anchors missing");
    free(pick), free(h), free(g), free(t), free(u), free(ps.p), free(x);
}

static void test_bad_params(void)
{
    es_fp_params p;
    es_fp *fp = (es_fp *)&fp;
    es_fp_default_params(&p);
    p.hop = p.n_fft + 1;
    CHECK(es_fp_new(&p, &fp) == ES_FP_EINVAL && fp == NULL, "hop longer than the frame");
    es_fp_default_params(&p);
    p.n_fft = 1000;
    CHECK(es_fp_new(&p, &fp) == ES_FP_EINVAL, "n_fft not a power of two");
    es_fp_default_params(&p);
    p.fmax_hz = 50.0f;
    CHECK(es_fp_new(&p, &fp) == ES_FP_EINVAL, "fmax below fmin");
    es_fp_default_params(&p);
    p.max_peaks_per_frame = 0;
    CHECK(es_fp_new(&p, &fp) == ES_FP_EINVAL, "no peaks per frame");
    es_fp_default_params(&p);
    CHECK(es_fp_new(&p, &fp) == ES_FP_OK && fp != NULL, "the defaults are valid");
    CHECK(es_fp_peaks_per_frame_max(fp) == 1, "one peak per frame by default");
    /* silence yields no peaks */
    float *z = calloc(RATE, sizeof(float));
    es_fp_peak out[4];
    int k = -1;
    CHECK(es_fp_process(fp, z, RATE, out, 4, &k) == RATE && k == 0, "silence: %d peaks", k);
    CHECK(es_fp_flush(fp, out, 4) == 0, "silence: nothing on flush");
    free(z);
    es_fp_free(fp);
    es_fp_free(NULL);
}

int main(void)
{
    test_streaming_property();
    test_tone_bursts();
    test_hash_layout();
    test_hash_picked();
    test_bad_params();
    return check_finish("test_fingerprint");
}
