/**
 * @file resample.h
 * Streaming sample-rate conversion by an exact rational polyphase filter
 * (Kaiser-windowed sinc), and the mono mix-down used before it.
 *
 * Output sample j sits exactly at input position j * in_rate / out_rate; the first
 * output is aligned with the first input. Feeding the input in blocks of any size gives
 * the same output as one call on the whole signal.
 */
#ifndef EARSHOT_RESAMPLE_H
#define EARSHOT_RESAMPLE_H

/* CFFI-BEGIN */
#define ES_RS_OK 0
#define ES_RS_EINVAL -1
#define ES_RS_ENOMEM -2

typedef struct es_rs es_rs;

/**
 * Prepare a converter from in_rate to out_rate (Hz, integers). zero_crossings (4..32)
 * sets the filter length: more is sharper and slower. The reduced ratio's numerator
 * out_rate/gcd must be at most 16384. Returns ES_RS_OK and *out, or an error code.
 */
int es_rs_new(int in_rate, int out_rate, int zero_crossings, es_rs **out);
/** Release a converter (NULL is accepted). */
void es_rs_free(es_rs *rs);
/** Forget all input seen so far, as if new. */
void es_rs_reset(es_rs *rs);
/**
 * Convert up to n input samples into at most cap output samples.
 * Returns how many input samples were consumed (call again with the rest) and sets
 * *n_out. Never allocates.
 */
int es_rs_process(es_rs *rs, const float *in, int n, float *out, int cap, int *n_out);
/**
 * End of input: write the remaining outputs (the signal is taken as zero past its end).
 * Returns the number written; call again while it returns cap.
 */
int es_rs_flush(es_rs *rs, float *out, int cap);
/** Outputs still to come on flush for the input seen so far, at most. */
int es_rs_pending(const es_rs *rs);

/** Mix interleaved frames of `channels` channels down to mono (the mean). */
void es_mix_mono(const float *in, int frames, int channels, float *out);
/** Mix interleaved signed 16-bit frames to mono float in [-1, 1). */
void es_mix_mono_s16(const short *in, int frames, int channels, float *out);
/** Mix interleaved signed 32-bit frames to mono float in [-1, 1). */
void es_mix_mono_s32(const int *in, int frames, int channels, float *out);
/* CFFI-END */

#endif
