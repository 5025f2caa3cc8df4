/* An LSD radix sort of 64-bit keys, shared by the evidence kernels (score.c sorts offset
 * keys and null maxima with it, evidence.c the hashes a lookup asks for). Internal to
 * native/, not part of the extension's interface. */
#ifndef EARSHOT_RADIX_H
#define EARSHOT_RADIX_H

#define RADIX_MAX_BITS 12

static inline int bit_length(unsigned long long v)
{
    int b = 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}

/* LSD radix sort of a[0..n) over the digits where the keys differ; b is scratch of n.
 * Returns the buffer holding the sorted keys (a or b). */
static inline unsigned long long *radix_sort(unsigned long long *a, unsigned long long *b, long long n)
{
    unsigned long long diff = 0;
    for (long long i = 1; i < n; i++)
        diff |= a[i] ^ a[0];
    int bits = bit_length(diff);
    if (bits == 0)
        return a;
    int passes = (bits + RADIX_MAX_BITS - 1) / RADIX_MAX_BITS;
    int width = (bits + passes - 1) / passes;
    unsigned long long mask = (1ULL << width) - 1;
    long long count[1 << RADIX_MAX_BITS];
    for (int shift = 0; shift < bits; shift += width) {
        if (((diff >> shift) & mask) == 0)
            continue;
        for (unsigned long long d = 0; d <= mask; d++)
            count[d] = 0;
        for (long long i = 0; i < n; i++)
            count[(a[i] >> shift) & mask]++;
        long long pos = 0;
        for (unsigned long long d = 0; d <= mask; d++) {
            long long c = count[d];
            count[d] = pos;
            pos += c;
        }
        for (long long i = 0; i < n; i++)
            b[count[(a[i] >> shift) & mask]++] = a[i];
        unsigned long long *t = a;
        a = b;
        b = t;
    }
    return a;
}

#endif
