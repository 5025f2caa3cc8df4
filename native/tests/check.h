/**
 * @file check.h
 * The few helpers every kernel test program shares: checks that count, and the values a
 * run prints so the same program built for two architectures can be compared.
 *
 * Output, one item per line on stdout:
 *   `value NAME NUMBER`  a key figure (%.17g), compared across architectures with a tolerance
 *   `exact NAME HEX`     must be identical across architectures (fingerprint peaks and hashes)
 *   `digest NAME HEX`    a checksum of a whole output array: reported as identical or not
 *   `NAME: N passed, M failed`  the program's last line; the exit status is 1 when M > 0.
 * Failed checks are also reported on stderr with their file and line.
 */
#ifndef EARSHOT_TEST_CHECK_H
#define EARSHOT_TEST_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

/** |got - want| <= tol, with a message naming the quantity. */
#define CHECK_NEAR(what, got, want, tol)                                                   \
    CHECK(fabs((double)(got) - (double)(want)) <= (tol), "%s = %.9g, expected %.9g +- %g", \
          (what), (double)(got), (double)(want), (double)(tol))

/** A key figure, printed for the cross-architecture comparison. */
static inline void report_value(const char *name, double v) { printf("value %s %.17g\n", name, v); }

/** A checksum that must be identical on every architecture. */
static inline void report_exact(const char *name, uint64_t v)
{
    printf("exact %s %016llx\n", name, (unsigned long long)v);
}

/** A checksum of an output array, reported (bit-identical or not) but not required. */
static inline void report_digest(const char *name, uint64_t v)
{
    printf("digest %s %016llx\n", name, (unsigned long long)v);
}

/** FNV-1a over bytes: a checksum for "the same array, bit for bit". */
static inline uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define FNV_START 14695981039346656037ull

/** Deterministic pseudo-random numbers (the same sequence on every platform). */
typedef struct {
    uint64_t s;
} rng;

static inline uint32_t rng_u32(rng *r)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(r->s >> 33);
}

/** Uniform in [-1, 1), from 24 random bits (exact in float and double). */
static inline double rng_uniform(rng *r) { return (double)(rng_u32(r) >> 7) / 8388608.0 - 1.0; }

/** Integer in [lo, hi]. */
static inline int rng_int(rng *r, int lo, int hi) { return lo + (int)(rng_u32(r) % (uint32_t)(hi - lo + 1)); }

/** The program's closing line and exit status. */
static inline int check_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
