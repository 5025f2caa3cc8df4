/* The evidence kernel's byte-level parts, on every architecture: the 12-byte posting record
 * (a word-wide path on little-endian machines, bytes elsewhere), es_ev_widen, es_ev_unique
 * against a plain sort, and es_ev_join through es_ev_key_table against a linear search. The
 * join's statistics (hits, weights, windows) are tested from Python against numpy
 * (tests/test_matcher_evidence.py); here every output must be the same bits on aarch64. */
#include "../evidence.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rng_full(rng *r) { return (rng_u32(r) << 16) ^ rng_u32(r); }

static unsigned int be32(const unsigned char *p)
{
    return ((unsigned int)p[0] << 24) | ((unsigned int)p[1] << 16) | ((unsigned int)p[2] << 8) | p[3];
}

static void test_posting_record(void)
{
    const unsigned char key[4] = {0xde, 0xad, 0xbe, 0xef};
    const unsigned char posting[6] = {0x01, 0x02, 0x03, 0xfa, 0xfb, 0xfc};
    const unsigned char want[12] = {0xde, 0xad, 0xbe, 0xef, 0, 0x01, 0x02, 0x03, 0, 0xfa, 0xfb, 0xfc};
    unsigned char out[13];
    memset(out, 0x55, sizeof out);
    es_ev_posting_record(out + 1, key, posting);   /* unaligned on purpose */
    CHECK(memcmp(out + 1, want, 12) == 0, "record bytes");
    CHECK(out[0] == 0x55, "nothing written before the record");

    /* widen: 10-byte LMDB records (hash, track u24, frame u24), any alignment */
    enum { N = 500 };
    unsigned char *raw = malloc(10 * N + 1), *wide = malloc(12 * N);
    rng r = {7};
    for (int i = 0; i < 10 * N + 1; i++) raw[i] = (unsigned char)rng_u32(&r);
    es_ev_widen(raw + 1, N, wide);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        const unsigned char *s = raw + 1 + 10 * i, *d = wide + 12 * i;
        ok &= be32(d) == be32(s);
        ok &= be32(d + 4) == (((unsigned int)s[4] << 16) | ((unsigned int)s[5] << 8) | s[6]);
        ok &= be32(d + 8) == (((unsigned int)s[7] << 16) | ((unsigned int)s[8] << 8) | s[9]);
    }
    CHECK(ok, "widened records");
    report_exact("widen", fnv1a(FNV_START, wide, 12 * N));
    free(raw);
    free(wide);
}

static int cmp_u32(const void *a, const void *b)
{
    unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;
    return (x > y) - (x < y);
}

static void test_unique(void)
{
    const long long sizes[] = {0, 1, 2, 9, 3000, 100000};
    rng r = {11};
    uint64_t digest = FNV_START;
    for (int s = 0; s < 6; s++) {
        for (int kind = 0; kind < 3; kind++) {   /* spread, low bits only, high bits only */
            long long n = sizes[s];
            unsigned int *in = malloc(sizeof(unsigned int) * (n + 1)), *out = malloc(sizeof(unsigned int) * (n + 1));
            unsigned int *ref = malloc(sizeof(unsigned int) * (n + 1));
            unsigned long long *work = malloc(sizeof(unsigned long long) * (2 * n + 1));
            for (long long i = 0; i < n; i++) {
                unsigned int v = rng_full(&r);
                in[i] = kind == 0 ? v : kind == 1 ? v % 60 : ((v % 60) << 26) | 12345u;
            }
            long long m = es_ev_unique(in, n, out, work);
            memcpy(ref, in, sizeof(unsigned int) * n);
            qsort(ref, (size_t)n, sizeof(unsigned int), cmp_u32);
            long long k = 0;
            for (long long i = 0; i < n; i++)
                if (k == 0 || ref[k - 1] != ref[i]) ref[k++] = ref[i];
            CHECK(m == k && memcmp(out, ref, sizeof(unsigned int) * k) == 0,
                  "unique of %lld values, kind %d: %lld, expected %lld", n, kind, m, k);
            digest = fnv1a(digest, out, sizeof(unsigned int) * (m > 0 ? m : 0));
            free(in); free(out); free(work); free(ref);
        }
    }
    report_exact("unique", digest);
}

static void test_key_table_and_join(void)
{
    /* keys 0, 2^20, 2*2^20, ... : fields that differ only in high bits */
    enum { K = 3000, H = 6000 };
    unsigned int keys[K];
    for (int i = 0; i < K; i++) keys[i] = (unsigned int)i << 20;
    int bits = 13;                            /* 8192 slots, load 0.37 */
    unsigned int *slots = calloc((size_t)1 << bits, sizeof(unsigned int));
    CHECK(es_ev_key_table(keys, K, slots, bits) == ES_EV_OK, "table built");
    unsigned int *small = calloc(4096, sizeof(unsigned int));
    CHECK(es_ev_key_table(keys, 4096, small, 12) == ES_EV_EINVAL, "a full table is refused");
    unsigned int twice[2] = {5, 5}, tiny[4] = {0};
    CHECK(es_ev_key_table(twice, 2, tiny, 2) == ES_EV_EINVAL, "a repeated key is refused");

    /* key i has i % 4 postings: (track i, frame 1000 + j) */
    long long len[K], starts[K + 1], total = 0;
    for (int i = 0; i < K; i++) total += len[i] = i % 4;
    unsigned char *post = malloc(12 * (size_t)total);
    long long p = 0;
    for (int i = 0; i < K; i++) {
        starts[i] = p;
        for (long long j = 0; j < len[i]; j++, p++) {
            unsigned char key[4] = {(unsigned char)(keys[i] >> 24), (unsigned char)(keys[i] >> 16),
                                    (unsigned char)(keys[i] >> 8), (unsigned char)keys[i]};
            unsigned int f = 1000u + (unsigned int)j;
            unsigned char rec[6] = {(unsigned char)(i >> 16), (unsigned char)(i >> 8), (unsigned char)i,
                                    (unsigned char)(f >> 16), (unsigned char)(f >> 8), (unsigned char)f};
            es_ev_posting_record(post + 12 * p, key, rec);
        }
    }
    starts[K] = p;
    long long again[K + 1];
    CHECK(es_ev_runs(post, total, keys, K, again) == ES_EV_OK &&
          memcmp(again, starts, sizeof again) == 0, "es_ev_runs finds each key's run");
    rng r = {3};
    unsigned int hashes[H];
    float times[H];
    long long want = 0;
    for (int i = 0; i < H; i++) {
        int present = rng_u32(&r) % 3 != 0;
        int k = (int)(rng_u32(&r) % K);
        hashes[i] = present ? keys[k] : (rng_full(&r) | 1u);   /* odd: never a key */
        times[i] = (float)(i / 3);
        want += present ? len[k] : 0;
    }
    long long runs = 0;
    long long n = es_ev_join(post, keys, slots, bits, starts, hashes, times, H, 0, NULL, 0, NULL, NULL,
                             NULL, NULL, 0, 0, 0, &runs);
    CHECK(n == want, "hits counted: %lld, expected %lld", n, want);
    unsigned int *tr = malloc(sizeof(unsigned int) * (size_t)n), *tf = malloc(sizeof(unsigned int) * (size_t)n);
    unsigned int *rend = malloc(sizeof(unsigned int) * (size_t)runs);
    float *rt = malloc(sizeof(float) * (size_t)runs);
    long long runs2 = 0;
    CHECK(es_ev_join(post, keys, slots, bits, starts, hashes, times, H, 0, NULL, 0, tr, tf, rt, rend, 0, n,
                     runs, &runs2) == n && runs2 == runs, "hits written");
    int ok = 1;
    long long h = 0;
    for (int i = 0; i < H; i++) {
        if (hashes[i] & 1u) continue;
        int k = (int)(hashes[i] >> 20);
        for (long long j = 0; j < len[k]; j++, h++)
            ok &= tr[h] == (unsigned int)k && tf[h] == 1000u + (unsigned int)j;
    }
    CHECK(ok && h == n, "every hit is its hash's posting, in order");
    report_exact("join", fnv1a(fnv1a(FNV_START, tr, sizeof(unsigned int) * (size_t)n), tf,
                               sizeof(unsigned int) * (size_t)n));
    free(slots); free(small); free(post); free(tr); free(tf); free(rend); free(rt);
}

int main(void)
{
    test_posting_record();
    test_unique();
    test_key_table_and_join();
    return check_finish("test_evidence");
}
