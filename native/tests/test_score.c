/* es_ev_score: the dense method gives the sorting method's result, field for field, on
 * random windows (crowded and sparse, filtered by since and a mute, other bins, windows and
 * blocks); the automatic choice; the fallbacks (an 8-bit counter overflowing, too little
 * scratch); empty and invalid inputs. The results' digest must be the same on aarch64. */
#include "../score.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A window of n hits over `tracks` tracks and t_ref in [0, span), anchor times ascending in
 * runs of `per_run` hits, one hit in `aligned` on one alignment of track 3. */
typedef struct {
    unsigned int *track, *t_ref, *run_end;
    float *run_t;
    es_ev_hits hits;
} window;

static void window_make(window *w, rng *r, long long n, int tracks, int span, int per_run, unsigned int aligned)
{
    long long runs = (n + per_run - 1) / per_run;
    w->track = malloc(sizeof(unsigned int) * n);
    w->t_ref = malloc(sizeof(unsigned int) * n);
    w->run_end = malloc(sizeof(unsigned int) * runs);
    w->run_t = malloc(sizeof(float) * runs);
    double t = 1000.0;
    for (long long run = 0; run < runs; run++) {
        t += (rng_u32(r) % 100) / 64.0;
        w->run_t[run] = (float)t;
        long long end = (run + 1) * per_run < n ? (run + 1) * per_run : n;
        w->run_end[run] = (unsigned int)end;
        for (long long i = run * per_run; i < end; i++) {
            int on = rng_u32(r) % aligned == 0;
            w->track[i] = on ? 3 : rng_u32(r) % (unsigned int)tracks;
            w->t_ref[i] = on ? (unsigned int)(t + 777.0) + rng_u32(r) % 3 : rng_u32(r) % (unsigned int)span;
        }
    }
    es_ev_hits h = {w->track, w->t_ref, w->run_t, w->run_end, runs, 0};
    w->hits = h;
}

static void window_free(window *w)
{
    free(w->track), free(w->t_ref), free(w->run_end), free(w->run_t);
}

typedef struct {
    double since, mute_before, bin_frames;
    long long mute_track;
    int window_bins, block_bins, tail_min;
} score_args;

static int score(const window *w, const score_args *a, int method, unsigned long long *work, long long work_len,
                 es_ev_result *out)
{
    return es_ev_score(&w->hits, a->since, a->mute_track, a->mute_before, a->bin_frames, a->window_bins,
                       a->block_bins, a->tail_min, work, work_len, method, 0, out);
}

static int same_cell(const es_ev_result *a, const es_ev_result *b)
{
    return a->track == b->track && a->bin == b->bin && a->count == b->count && a->n_null == b->n_null &&
           a->k == b->k && a->u == b->u && a->top_sum == b->top_sum && a->kept == b->kept;
}

static uint64_t digest = FNV_START;

/* Both methods on one window and one set of arguments: the same result; the dense one used
 * (given room) unless `dense_expected` is 0. */
static es_ev_result compare(const char *what, const window *w, const score_args *a, int dense_expected)
{
    long long n = w->hits.n_runs ? w->hits.run_end[w->hits.n_runs - 1] : 0;
    long long len = 2 * n + 4000000;
    unsigned long long *work = malloc(sizeof(unsigned long long) * len);
    es_ev_result s, d, x;
    int rs = score(w, a, ES_EV_SORT, work, len, &s);
    int rd = score(w, a, ES_EV_DENSE, work, len, &d);
    int ra = score(w, a, ES_EV_AUTO, work, len, &x);
    CHECK(rs == ES_EV_OK && rd == ES_EV_OK && ra == ES_EV_OK, "%s: rc %d %d %d", what, rs, rd, ra);
    CHECK(s.method == ES_EV_SORT, "%s: sort method %d", what, s.method);
    CHECK(d.method == (dense_expected ? ES_EV_DENSE : ES_EV_SORT), "%s: dense method %d", what, d.method);
    CHECK(same_cell(&s, &d), "%s: dense (%u, %lld, %lld, n_null %lld, u %lld, top %lld) vs sort (%u, %lld, %lld, "
          "n_null %lld, u %lld, top %lld)", what, d.track, d.bin, d.count, d.n_null, d.u, d.top_sum, s.track, s.bin,
          s.count, s.n_null, s.u, s.top_sum);
    CHECK(same_cell(&s, &x), "%s: auto differs", what);
    long long fields[] = {s.track, s.bin, s.count, s.n_null, s.k, s.u, s.top_sum, s.kept};
    digest = fnv1a(digest, fields, sizeof fields);
    free(work);
    return s;
}

static void test_methods_agree_on_random_windows(void)
{
    rng r = {42};
    window w;
    window_make(&w, &r, 200000, 160, 15000, 250, 1000);   /* a live window on a catalog of hours */
    score_args live = {-1e300, 0.0, 2.0, -1, 4, 64, 10};
    es_ev_result found = compare("live", &w, &live, 1);
    CHECK(found.track == 3 && found.count > 150, "the planted alignment: track %u count %lld", found.track,
          found.count);
    report_value("live_count", (double)found.count);
    report_value("live_null_blocks", (double)found.n_null);
    report_value("live_tail_sum", (double)found.top_sum);
    score_args since = live;
    since.since = 1000.0 + 400.0;
    compare("since", &w, &since, 1);
    score_args muted = live;
    muted.mute_track = 3, muted.mute_before = 1e300;
    compare("mute all of track 3", &w, &muted, 1);
    muted.mute_before = 1000.0 + 500.0, muted.since = 1000.0 + 100.0;
    compare("mute track 3 before", &w, &muted, 1);
    score_args other[] = {{-1e300, 0.0, 3.0, -1, 4, 50, 10}, {-1e300, 0.0, 0.5, -1, 1, 7, 10},
                          {-1e300, 0.0, 1.0, -1, 5, 300, 10}, {-1e300, 0.0, 2.5, -1, 64, 512, 3},
                          {-1e300, 0.0, 2.0, -1, 2, 1, 0}};
    for (int i = 0; i < (int)(sizeof other / sizeof other[0]); i++)
        compare("other bins, windows, blocks", &w, &other[i], 1);
    window_free(&w);

    window_make(&w, &r, 3000, 7, 400, 40, 50);       /* few tracks, many duplicate cells */
    compare("crowded", &w, &live, 1);
    window_free(&w);

    window_make(&w, &r, 100000, 160, 15000, 250, 5);  /* a clean match: 256 hits in a cell */
    compare("a cell over 255 hits", &w, &live, 0);
    window_free(&w);
}

/* Anchor times the dense method bins in integers (|q| >= 1 or integral: (t_ref - ceil(q)) >>
 * shift) and those it bins in floating point (0 < |q| < 1), with offsets on and just off the
 * bin edges: the same results as sorting, which bins every hit in floating point. */
static void test_integer_bins_match_the_floating_point_ones(void)
{
    static const float fractions[] = {0.0f, 1e-6f, 0.25f, 0.5f, 0.75f, 0.999f, 1.0f / 64.0f};
    const int n_frac = (int)(sizeof fractions / sizeof fractions[0]);
    rng r = {99};
    for (int start = 0; start < 2; start++) {   /* from 0 (q below 1 at first) and from 3000 */
        const long long per_run = 30, runs = 4000, n = per_run * runs;
        window w;
        w.track = malloc(sizeof(unsigned int) * n);
        w.t_ref = malloc(sizeof(unsigned int) * n);
        w.run_end = malloc(sizeof(unsigned int) * runs);
        w.run_t = malloc(sizeof(float) * runs);
        for (long long run = 0; run < runs; run++) {
            const double base = start ? 3000.0 : 0.0;
            const float q = (float)(base + (double)(run / n_frac) + fractions[run % n_frac]);
            w.run_t[run] = q;
            w.run_end[run] = (unsigned int)((run + 1) * per_run);
            for (long long i = run * per_run; i < (run + 1) * per_run; i++) {
                /* floor(q) + an even number (a bin edge when q is integral), + 0..3 */
                const unsigned int edge = (unsigned int)q + 2u * (rng_u32(&r) % 3000u);
                w.track[i] = rng_u32(&r) % 5;
                w.t_ref[i] = (i % 3 == 0) ? edge + rng_u32(&r) % 4 : rng_u32(&r) % 9000;
            }
        }
        es_ev_hits h = {w.track, w.t_ref, w.run_t, w.run_end, runs, 0};
        w.hits = h;
        score_args bins[] = {{-1e300, 0.0, 2.0, -1, 4, 64, 10}, {-1e300, 0.0, 1.0, -1, 4, 64, 10},
                             {-1e300, 0.0, 4.0, -1, 3, 16, 10}};
        for (int i = 0; i < (int)(sizeof bins / sizeof bins[0]); i++)
            compare(start ? "integer bins" : "integer and floating-point bins", &w, &bins[i], 1);
        window_free(&w);
    }
}

/* Rolling counts: built on a window, a part taken away and added back, each state scored
 * as es_ev_score scores the same hits afresh; a count past 255 and a hit outside the layout
 * make it invalid. */
static void roll_compare(const char *what, es_ev_roll *h, const window *w, double since)
{
    long long n = w->hits.n_runs ? w->hits.run_end[w->hits.n_runs - 1] : 0;
    long long len = 2 * n + 4000000;
    unsigned long long *work = malloc(sizeof(unsigned long long) * len);
    es_ev_result want, got;
    score_args a = {since, 0.0, 2.0, -1, 4, 64, 10};
    int rs = score(w, &a, ES_EV_SORT, work, len, &want);
    int rr = es_ev_roll_score(h, 10, work, len, &got);
    CHECK(rs == ES_EV_OK && rr == ES_EV_OK, "%s: rc %d %d", what, rs, rr);
    CHECK(same_cell(&want, &got) && want.weight == got.weight, "%s: rolling (%u, %lld, %lld) vs afresh (%u, %lld, %lld)",
          what, got.track, got.bin, got.count, want.track, want.bin, want.count);
    long long fields[] = {got.track, got.bin, got.count, got.n_null, got.k, got.u, got.top_sum, got.kept};
    digest = fnv1a(digest, fields, sizeof fields);
    free(work);
}

static void test_rolling_counts_score_as_afresh(void)
{
    rng r = {11};
    window w;
    window_make(&w, &r, 200000, 160, 15000, 250, 1000);
    es_ev_roll *h = NULL;
    CHECK(es_ev_roll_new(&h) == ES_EV_OK, "new");
    unsigned int frames[100];
    for (int t = 0; t < 100; t++)
        frames[t] = 15000;
    CHECK(es_ev_roll_build(h, &w.hits, -1e300, frames, 100, 0.0, 2.0, 4, 64) == ES_EV_OK, "build");
    roll_compare("built", h, &w, -1e300);
    /* the runs before the middle one's anchor time leave (from the first half's runs), and
     * come back */
    const long long half = w.hits.n_runs / 2;
    const double mid = (double)w.run_t[half];
    es_ev_hits first = w.hits;
    first.n_runs = half + 1;
    CHECK(es_ev_roll_apply(h, &first, -1, -1e300, mid) == ES_EV_OK, "take away");
    roll_compare("half taken away", h, &w, mid);
    CHECK(es_ev_roll_apply(h, &first, 1, -1e300, mid) == ES_EV_OK, "add back");
    roll_compare("added back", h, &w, -1e300);
    /* a hit past the layout: invalid, and scoring says so */
    unsigned int far_track = 3, far_ref = 4000000000u, far_end = 1;
    float far_t = 0.0f;
    es_ev_hits far = {&far_track, &far_ref, &far_t, &far_end, 1, 0};
    CHECK(es_ev_roll_apply(h, &far, 1, -1e300, INFINITY) == 1, "a hit past the layout");
    es_ev_result out;
    unsigned long long scratch[64];
    CHECK(es_ev_roll_score(h, 10, scratch, 64, &out) == 1, "invalid after it");
    CHECK(es_ev_roll_apply(NULL, &far, 1, 0.0, 1.0) == ES_EV_EINVAL, "no histogram");
    es_ev_roll_free(h);
    window_free(&w);
}

static void test_auto_sorts_a_sparse_window(void)
{
    rng r = {7};
    window w;
    window_make(&w, &r, 2000, 50, 4000000, 20, 1000);   /* ~1000 bins a hit */
    score_args a = {-1e300, 0.0, 2.0, -1, 4, 64, 10};
    long long len = 2 * 2000;
    unsigned long long *work = malloc(sizeof(unsigned long long) * len);
    es_ev_result x;
    CHECK(score(&w, &a, ES_EV_AUTO, work, len, &x) == ES_EV_OK && x.method == ES_EV_SORT && x.dense_need == 0,
          "auto on a sparse window: method %d need %lld", x.method, x.dense_need);
    free(work);
    compare("sparse, dense forced without room for it", &w, &a, 0);
    a.window_bins = 65;                            /* windows longer than the dense method's */
    compare("window of 65 bins", &w, &a, 0);
    window_free(&w);
}

static void test_fallbacks(void)
{
    rng r = {9};
    window w;
    window_make(&w, &r, 300000, 160, 15000, 250, 1000);
    score_args a = {-1e300, 0.0, 2.0, -1, 4, 64, 10};
    long long len = 2 * 300000;
    unsigned long long *work = malloc(sizeof(unsigned long long) * (len + 2000000));
    es_ev_result x, y;
    /* exactly the minimum: the dense method needs less here (n / 2 + the counts) */
    CHECK(score(&w, &a, ES_EV_AUTO, work, len, &x) == ES_EV_OK && x.method == ES_EV_DENSE && x.dense_need <= len,
          "auto with 2n of work: method %d need %lld", x.method, x.dense_need);
    /* too little for the dense method (more bins): sorted, and the need reported */
    a.bin_frames = 0.6;
    CHECK(score(&w, &a, ES_EV_AUTO, work, len, &x) == ES_EV_OK && x.method == ES_EV_SORT && x.dense_need > len,
          "auto short of work: method %d need %lld", x.method, x.dense_need);
    CHECK(score(&w, &a, ES_EV_AUTO, work, x.dense_need, &y) == ES_EV_OK && y.method == ES_EV_DENSE &&
          same_cell(&x, &y), "auto given the need: method %d", y.method);
    window_free(&w);

    /* 255 hits in one cell are counted densely; 256 overflow an 8-bit counter: sorted */
    for (long long n = 255; n <= 256; n++) {
        unsigned int *track = calloc(n, sizeof *track), *t_ref = malloc(sizeof *t_ref * n), end = (unsigned int)n;
        for (long long i = 0; i < n; i++)
            t_ref[i] = 501;
        float t = 0.0f;
        es_ev_hits one = {track, t_ref, &t, &end, 1, 0};
        int rc = es_ev_score(&one, -1e300, -1, 0.0, 2.0, 4, 64, 10, work, 2 * n, ES_EV_DENSE, 0, &x);
        CHECK(rc == ES_EV_OK && x.method == (n < 256 ? ES_EV_DENSE : ES_EV_SORT) && x.count == n && x.bin == 250 &&
              x.n_null == 0, "%lld in a cell: rc %d method %d count %lld bin %lld", n, rc, x.method, x.count, x.bin);
        free(track), free(t_ref);
    }
    free(work);
}

static void test_empty_and_invalid(void)
{
    unsigned int track[2] = {1, 1}, t_ref[2] = {0, 5}, end[2] = {1, 2};
    float run_t[2] = {0.0f, 9.0e9f};
    unsigned long long work[8];
    es_ev_result x;
    es_ev_hits h = {track, t_ref, run_t, end, 2, 0};
    for (int method = ES_EV_AUTO; method <= ES_EV_DENSE; method++) {
        CHECK(es_ev_score(&h, -1e300, -1, 0, 2.0, 4, 64, 10, work, 8, method, 0, &x) == ES_EV_EINVAL,
              "an offset out of range, method %d", method);
        CHECK(es_ev_score(&h, 1e10, -1, 0, 2.0, 4, 64, 10, work, 8, method, 0, &x) == ES_EV_EMPTY,
              "nothing since, method %d", method);
        CHECK(es_ev_score(&h, 1.0, -1, 0, 2.0, 4, 64, 10, work, 3, method, 0, &x) == ES_EV_EINVAL,
              "work under 2n, method %d", method);
    }
    CHECK(es_ev_score(&h, 1.0, -1, 0, 2.0, 4, 64, 10, work, 8, 3, 0, &x) == ES_EV_EINVAL, "an unknown method");
    CHECK(es_ev_score(&h, 1.0, -1, 0, 2.0, 4, 64, 10, work, 8, ES_EV_AUTO, -1, &x) == ES_EV_EINVAL,
          "a negative dense limit");
    es_ev_hits none = {track, t_ref, run_t, end, 0, 0};
    CHECK(es_ev_score(&none, -1e300, -1, 0, 2.0, 4, 64, 10, NULL, 0, ES_EV_AUTO, 0, &x) == ES_EV_EMPTY, "no hits");
}

int main(void)
{
    test_methods_agree_on_random_windows();
    test_integer_bins_match_the_floating_point_ones();
    test_rolling_counts_score_as_afresh();
    test_auto_sorts_a_sparse_window();
    test_fallbacks();
    test_empty_and_invalid();
    report_exact("results", digest);
    return check_finish("test_score");
}
