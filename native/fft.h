/**
 * @file fft.h
 * Real-input FFT of a power-of-two size, single precision, no allocation per call.
 *
 * The transform of n real samples is computed as an n/2-point complex FFT followed by
 * the usual split step; twiddles and the bit-reversal table are prepared once.
 */
#ifndef EARSHOT_FFT_H
#define EARSHOT_FFT_H

/* CFFI-BEGIN */
typedef struct es_fft es_fft;

/** Prepare a transform of size n (a power of two, 8 <= n <= 65536); NULL on bad n or no memory. */
es_fft *es_fft_new(int n);
/** Release a transform (NULL is accepted). */
void es_fft_free(es_fft *fft);
/** The transform size n. */
int es_fft_size(const es_fft *fft);
/**
 * Forward transform of n real samples.
 * out receives n/2+1 complex bins interleaved (re, im): 2*(n/2+1) floats.
 * in and out must not overlap.
 */
void es_fft_real(es_fft *fft, const float *in, float *out);
/** Power spectrum |X[k]|^2 of n real samples: n/2+1 floats in out. */
void es_fft_power(es_fft *fft, const float *in, float *out);

/** Power spectrum of in[i] * window[i] (n floats each): the same values as es_fft_power on
 * the windowed frame, without a pass to build it. */
void es_fft_power_windowed(es_fft *fft, const float *in, const float *window, float *out);
/** es_fft_power_windowed of `frames` frames, the i-th starting at in + i * hop: n/2+1 floats
 * each, one after another in out (one call where a caller would loop over frames). */
void es_fft_power_frames(es_fft *fft, const float *in, int hop, int frames, const float *window,
                         float *out);
/* CFFI-END */

#endif
