/* The gates of BS.1770 / EBU R128 over a growing set of energies (gating blocks, or
 * short-term values for the loudness range), exact in bounded memory: the first raw_cap
 * values verbatim, and always a histogram of 0.01 LU bins from -70 LUFS up, each with its
 * count, its compensated energy sum and its smallest and largest energy (the reasoning and
 * the error bound are in loudness.h, "Exact gating in bounded memory"). Used by the
 * loudness meter's scopes (loudness.c); internal to native/, not part of the extension's
 * interface, so no CFFI section. Error codes are loudness.h's. */
#ifndef EARSHOT_GATING_H
#define EARSHOT_GATING_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define ES_GATE_ABS_LUFS -70.0

typedef struct {
    uint64_t count;
    double sum, comp; /* Neumaier-compensated sum of the energies in the bin */
    double lo, hi;    /* smallest and largest energy in the bin */
} es_gbin;

/* Values above the absolute gate, kept verbatim (the first raw_cap) and binned. */
typedef struct {
    double *raw;   /* the first raw_cap values verbatim */
    uint64_t raw_cap;
    uint64_t n;    /* values stored so far */
    es_gbin *bins;
} es_gate;

/* Loudness (LUFS) of a mean-square energy, K-weighted and channel-weighted. */
static inline double es_lufs(double energy) { return -0.691 + 10.0 * log10(energy); }

/* The energy at the absolute gate. */
static inline double es_abs_gate_energy(void) { return pow(10.0, (ES_GATE_ABS_LUFS + 0.691) / 10.0); }

/* Write one byte in every page, so the pages are resident now and the resident size after
 * a week is the one after a minute. (A memset of zeros after calloc would be optimised away
 * and calloc's fresh pages stay untouched until first used.) */
static inline void es_commit_pages(void *p, size_t bytes)
{
    volatile char *c = p;
    for (size_t i = 0; i < bytes; i += 1024) c[i] = 0;
}

/* Allocate (committed) and empty; adds the bytes taken to *bytes. ES_LOUD_OK or ES_LOUD_ENOMEM
 * (then es_gate_free still releases what was taken). */
int es_gate_init(es_gate *gt, uint64_t raw_cap, double *bytes);
void es_gate_clear(es_gate *gt);
void es_gate_free(es_gate *gt);
/* Add an energy; values at or below the absolute gate are not kept. */
void es_gate_add(es_gate *gt, double z);
/* The gated mean energy (relative gate -10 LU) and the bound of its error in LU (0 while
 * every value is kept verbatim). ES_LOUD_ENODATA when nothing passes the gates. */
int es_gate_integrated(const es_gate *gt, double *mean, double *err_lu);
/* The loudness range (relative gate -20 LU, 10th to 95th percentile); scratch holds
 * raw_cap doubles. */
int es_gate_range(const es_gate *gt, double *lra, double *scratch);
/* Gated mean (rel = 0.1 for -10 LU) and, with lra, the 10th-95th percentile range, of n
 * energies given verbatim (negative ones are absent values); scratch holds n doubles when
 * lra is asked for. */
int es_gate_exact_stats(const double *v, size_t n, double rel, double *mean, double *scratch,
                        double *lra);

#endif
