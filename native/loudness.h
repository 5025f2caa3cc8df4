/**
 * @file loudness.h
 * A streaming loudness meter after ITU-R BS.1770-4 and EBU R128 / Tech 3341 / Tech 3342:
 * K-weighting, momentary (400 ms) and short-term (3 s) loudness on a grid of about 10 ms,
 * gated integrated loudness, loudness range, true peak, sample peak, and six band energies.
 *
 * Shape: an opaque state, `es_loud_new` / `es_loud_process` / `es_loud_get_*` /
 * `es_loud_free`, integer error codes. Blocks of any size give the same readings as one
 * call on the whole signal. Nothing is allocated after `es_loud_new`.
 *
 * Time grid. A hop is H = rate / 10 frames (100 ms); a step is the largest divisor g of H
 * with g <= rate / 100 (10 ms at 48 and 44.1 kHz, 6.7 ms at 22.05 kHz). Rates without
 * such a grid (e.g. 11025 Hz) use g = floor(rate / 100) and H = 10 g, within 0.1%. Momentary loudness is the mean
 * energy of the last 4 hops, short-term of the last 30 hops, both read at every step.
 * Gating blocks (400 ms, 75% overlap) end on hop boundaries; so do the short-term values
 * that feed the loudness range (10 per second). An incomplete last block is dropped.
 *
 * Sums that never drift. The 10 ms step energies are sums of squares (never negative);
 * window energies are recomputed from the stored step energies at every step, never kept
 * as a running add/subtract total, so months of input cannot turn silence into a negative
 * energy or NaN. Long totals only ever add non-negative terms.
 *
 * Scopes. Readings are available over the whole input (ES_LOUD_ALL), since the last
 * es_loud_mark() (ES_LOUD_MARK, e.g. a song's start), and over the last window_s seconds
 * (ES_LOUD_WINDOW, when window_s > 0).
 *
 * Exact gating in bounded memory. Each of the ALL and MARK scopes keeps its gating blocks
 * in two forms: (a) the first `exact_blocks` block energies verbatim, and (b) always, a
 * histogram of 0.01 LU bins from -70 LUFS up (values above +30 LUFS share the top bin)
 * that stores per bin the block count, the exact (compensated) sum of the energies, and
 * the smallest and largest energy. While (a) holds every block, the gated mean and the
 * percentiles are computed from the verbatim values: exact up to double rounding. After
 * that, (b) is used. The absolute gate (-70 LUFS) is a bin edge and every bin's energy
 * sum is exact, so the relative threshold is exact; every bin whose smallest energy is
 * above the threshold or whose largest is at or below it is classified exactly. Only the
 * one bin containing the threshold can hold blocks on both sides; its blocks are split
 * by interpolation between its smallest and largest energy, and the reading comes with
 * an error bound: the largest change of the result between counting none and all of that
 * bin's blocks (es_loud_get_integrated's err_lu; 0 in exact mode). Since the blocks in
 * that bin lie within 0.01 LU of a threshold 10 LU below the ungated mean, the bound is
 * small unless a large share of all blocks sits just at the threshold. The loudness
 * range's percentiles are read to within one bin (0.01 LU) in histogram mode. The
 * WINDOW scope keeps its blocks verbatim in a ring, so it is always exact.
 *
 * True peak. The signal is oversampled by os = ceil(192000 / rate) (4 at 48 kHz, 5 at
 * 44.1 kHz) with a 24-tap-per-phase Kaiser-windowed sinc (beta 7), each phase normalised
 * to unit DC gain; its own passband deviation is within 0.06 dB up to 0.42 * rate (20 kHz
 * at 48 kHz). The true peak is the maximum of the interpolated and the original samples.
 * Unless ES_LOUD_TP_EXHAUSTIVE is given or a window is kept, a block whose neighbourhood
 * peak times the filter's largest absolute tap sum cannot beat the channel's current
 * maximum is not interpolated; and unless ES_LOUD_TP_EXHAUSTIVE is given, neither are eight
 * outputs at a time whose samples bound them below the block's sample peak (or a larger
 * output of the block): the result is identical, only cheaper.
 *
 * Bands. Once per hop, the last n_fft frames of the hop's channel-weighted mono mix (n_fft
 * the smallest power of two >= 40 ms, always shorter than a hop) are Hann-windowed and
 * transformed; the power in each of six bands between seven edge frequencies is
 * accumulated for hops whose 400 ms block is above -70 LUFS. Readings are mean band powers
 * (linear, arbitrary but common scale): a statistical tonal balance, not every sample.
 *
 * Marks. es_loud_mark() takes effect at the next step boundary for the loudness windows
 * (a block counts in MARK when it lies after the mark, give or take one step) and at once
 * for peaks (interpolated values still made of samples before the mark are left out).
 */
#ifndef EARSHOT_LOUDNESS_H
#define EARSHOT_LOUDNESS_H

/* CFFI-BEGIN */
#define ES_LOUD_OK 0
#define ES_LOUD_EINVAL -1
#define ES_LOUD_ENOMEM -2
#define ES_LOUD_ENODATA -3

#define ES_LOUD_ALL 0
#define ES_LOUD_MARK 1
#define ES_LOUD_WINDOW 2

#define ES_LOUD_BANDS 6
#define ES_LOUD_MAX_CHANNELS 64
#define ES_LOUD_TP_EXHAUSTIVE 1

typedef struct es_loud es_loud;

/**
 * Create a meter.
 * @param rate sample rate in Hz (8000 .. 768000)
 * @param channels channel count (1 .. ES_LOUD_MAX_CHANNELS)
 * @param weights per-channel BS.1770 weights (1.0 front, 1.41 surround, 0 excluded e.g.
 *        LFE, 2.0 for a mono signal meant as dual-mono); NULL gives 1.0 for every channel
 * @param band_edges 7 increasing frequencies in Hz bounding the six bands
 * @param window_s length of the WINDOW scope in seconds (0 for none, at most 86400)
 * @param exact_blocks how many gating blocks the ALL and MARK scopes keep verbatim
 *        (0 .. 100000000; 10 per second of input)
 * @param flags 0 or ES_LOUD_TP_EXHAUSTIVE
 * @param out receives the meter
 * @return ES_LOUD_OK, ES_LOUD_EINVAL or ES_LOUD_ENOMEM
 */
int es_loud_new(int rate, int channels, const double *weights, const double *band_edges,
                int window_s, int exact_blocks, int flags, es_loud **out);

/** Release a meter (NULL is accepted). */
void es_loud_free(es_loud *st);

/** Forget all input, as if new (all scopes). */
void es_loud_reset(es_loud *st);

/** Start the MARK scope here (e.g. at a song's start): its readings restart empty. */
void es_loud_mark(es_loud *st);

/**
 * Feed interleaved float frames (full scale +-1.0). For every 10 ms step completed during this call, the
 * momentary and short-term loudness (LUFS) of the windows ending at that step are written
 * to mom[] and st_out[] (either may be NULL), at most cap of them; NaN means the window
 * is not yet full, -INFINITY digital silence. *n_steps (may be NULL) receives the count.
 * Steps beyond cap are processed but not written. Never allocates.
 * @return ES_LOUD_OK or ES_LOUD_EINVAL
 */
int es_loud_process(es_loud *st, const float *frames, int n_frames, double *mom,
                    double *st_out, int cap, int *n_steps);

/** Frames per step (the grid of momentary and short-term readings). */
int es_loud_step_frames(const es_loud *st);

/** Oversampling factor used for the true peak. */
int es_loud_oversampling(const es_loud *st);

/** Frames fed so far in a scope (ALL, MARK or WINDOW, the latter capped at its length). */
double es_loud_frames(const es_loud *st, int scope);

/** Momentary loudness now (LUFS; NaN if under 400 ms fed, -INFINITY for silence). */
double es_loud_get_momentary(const es_loud *st);

/** Short-term loudness now (LUFS; NaN if under 3 s fed, -INFINITY for silence). */
double es_loud_get_short_term(const es_loud *st);

/**
 * Largest momentary and short-term loudness in a scope, over every step's reading (the
 * WINDOW scope keeps each hop's largest step readings). The MARK scope counts windows that
 * lie wholly after the mark. ES_LOUD_ENODATA when no window was complete or all were silent.
 */
int es_loud_get_max(const es_loud *st, int scope, double *max_momentary,
                    double *max_short_term);

/**
 * Gated integrated loudness of a scope in LUFS; *err_lu (may be NULL) receives the bound
 * on its deviation from the exact value (0 when computed from verbatim blocks).
 * ES_LOUD_ENODATA when no block passes the gates (too short or silent).
 */
int es_loud_get_integrated(es_loud *st, int scope, double *lufs, double *err_lu);

/**
 * Loudness range (EBU Tech 3342) of a scope in LU. ES_LOUD_ENODATA when no short-term
 * value passes the gates.
 */
int es_loud_get_range(es_loud *st, int scope, double *lra);

/**
 * Peaks of a scope as linear amplitudes: channel ch (0-based), or -1 for the maximum over
 * all channels. true_peak includes the sample peak. Either pointer may be NULL.
 */
int es_loud_get_peaks(const es_loud *st, int scope, int ch, double *sample_peak,
                      double *true_peak);

/**
 * Mean power per band in a scope (6 values) over the hops above -70 LUFS.
 * ES_LOUD_ENODATA when there is no such hop.
 */
int es_loud_get_bands(const es_loud *st, int scope, double *out);

/** Bytes the meter holds (fixed at creation). */
double es_loud_state_bytes(const es_loud *st);

/** The K-weighting coefficients derived for this rate: b0 b1 b2 a1 a2 of each stage. */
void es_loud_kweights(const es_loud *st, double *out10);
/* CFFI-END */

#endif
