/**
 * @file fingerprint.h
 * Audio fingerprinting: spectral peaks of a mono stream, and hashes of peak pairs.
 *
 * The extractor is streaming: es_fp_process() takes blocks of any size and yields the
 * same peaks, in the same order, as one call on the whole signal followed by
 * es_fp_flush(). Peaks are 2-D local maxima of the log power spectrogram (Hann window,
 * n_fft points, one frame per hop) inside [fmin_hz, fmax_hz], ranked by their salience
 * (level above the mean of their spectral neighbourhood in the same frame).
 *
 * Hashes pair an anchor peak with the strongest peaks of its target zone. Frequencies
 * are on a log2 scale, so a playback speed change (pitch and tempo together, factor s)
 * shifts every peak's log-frequency by log2(s) and scales every time by 1/s: hashing a
 * query's peaks with `speed` = s maps them back onto the catalog's scale. The frequency
 * interval of a pair is speed-invariant; only the anchor's coarse band and the time gap
 * move with speed.
 */
#ifndef EARSHOT_FINGERPRINT_H
#define EARSHOT_FINGERPRINT_H

/* CFFI-BEGIN */
#define ES_FP_OK 0
#define ES_FP_EINVAL -1
#define ES_FP_ENOMEM -2

/** Peak extraction parameters. */
typedef struct {
    int sample_rate;         /**< Hz of the input */
    int n_fft;               /**< FFT size, a power of two */
    int hop;                 /**< samples between frames */
    float fmin_hz;           /**< lowest frequency considered */
    float fmax_hz;           /**< highest frequency considered */
    int freq_radius;         /**< local-maximum neighbourhood, bins each side */
    int time_radius;         /**< local-maximum neighbourhood, frames each side */
    int salience_radius;     /**< bins each side for the salience reference mean */
    float min_salience_db;   /**< peaks less salient than this are dropped */
    float floor_db;          /**< spectrum values below this (dB re full scale) are silence */
    int max_peaks_per_frame; /**< the most salient peaks kept per frame */
} es_fp_params;

/** One spectral peak. */
typedef struct {
    float time;     /**< frames since stream start (interpolated) */
    float freq;     /**< log2 of the frequency in Hz (interpolated) */
    float salience; /**< dB above the neighbourhood mean */
} es_fp_peak;

/** Pair hashing parameters. */
typedef struct {
    float fmin_hz;      /**< the anchor band index counts from here */
    int f1_per_octave;  /**< anchor frequency resolution */
    int df_per_octave;  /**< pair interval resolution */
    float max_doct;     /**< largest |interval| in octaves */
    int dt_min;         /**< target zone start, frames after the anchor */
    int dt_max;         /**< target zone end, frames (at most 63 steps of dt_step) */
    int fanout;         /**< pairs per anchor, strongest first */
    float dt_step;      /**< frames per unit of the hashed time gap (its quantum) */
    float dt_tolerance; /**< frames: hash every unit within +-this of the gap (queries) */
} es_hash_params;

typedef struct es_fp es_fp;

/** Fill p with earshot's defaults (8 kHz, 1024-point frames, 16 ms hop). */
void es_fp_default_params(es_fp_params *p);
/** Fill hp with earshot's default hashing parameters. */
void es_hash_default_params(es_hash_params *hp);
/** Create an extractor; ES_FP_OK and *out, or an error code. */
int es_fp_new(const es_fp_params *p, es_fp **out);
/** Release an extractor (NULL is accepted). */
void es_fp_free(es_fp *fp);
/** Restart at time zero, forgetting all input. */
void es_fp_reset(es_fp *fp);
/**
 * Feed up to n samples; finished peaks go to out (at most cap; cap must be at least
 * es_fp_peaks_per_frame_max()). Returns how many samples were consumed: call again with
 * the rest when fewer than n. *n_out receives the number of peaks written.
 */
int es_fp_process(es_fp *fp, const float *x, int n, es_fp_peak *out, int cap, int *n_out);
/** End of stream: the peaks of the last frames. Returns the number written. */
int es_fp_flush(es_fp *fp, es_fp_peak *out, int cap);
/** Frames whose peaks are final: every later peak has time > this - 1. */
long es_fp_frames_final(const es_fp *fp);
/** The largest number of peaks one frame can yield (the minimum cap). */
int es_fp_peaks_per_frame_max(const es_fp *fp);

/** The most hashes one (anchor, target) pair can yield (units spanned by the tolerance). */
int es_fp_hashes_per_pair_max(const es_hash_params *hp);

/**
 * Hash anchors [first, end) of a time-ordered peak array, pairing each with later peaks
 * of the array; with speed s the query is taken as played s times too fast.
 * The time gap is hashed in units of dt_step frames, rounded; with dt_tolerance > 0 a pair
 * yields one hash per unit that [gap - tolerance, gap + tolerance] rounds to, so a query's
 * peaks may sit a little off the catalog's in time (reverberation and noise move a
 * smooth maximum by a frame or two) and still meet its hashes.
 * Writes at most cap hashes and the anchors' times on the catalog's scale
 * (time * s); returns the number written, or ES_FP_EINVAL.
 */
int es_fp_hash(const es_hash_params *hp, const es_fp_peak *peaks, int n_peaks, int first,
               int end, float speed, unsigned int *hashes, float *times, int cap);

/**
 * es_fp_hash of the anchors named by index (anchors[0..n_anchors), strictly increasing,
 * each below n_peaks), each still paired with any later peak of the array: exactly the
 * hashes es_fp_hash gives those anchors, in the same order. A screen that looks up only
 * a query's most salient anchors hashes no others. Returns the number written, or
 * ES_FP_EINVAL (also for indices out of order or out of range).
 */
int es_fp_hash_picked(const es_hash_params *hp, const es_fp_peak *peaks, int n_peaks, const int *anchors,
                      int n_anchors, float speed, unsigned int *hashes, float *times, int cap);
/* CFFI-END */

#endif
