"""Music-like test signals: seeded melodies and chords with harmonics and envelopes.

Not real music, but with what fingerprinting relies on: tonal partials that start and stop,
several at once, at musical intervals, over a noisy percussive bed.
"""
from __future__ import annotations

import numpy as np


def song(seed: int, seconds: float, rate: int = 44100) -> np.ndarray:
    """A mono float32 'song' in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n, dtype=np.float64)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19, 21, 23, 24])
    t = 0.0
    while t < seconds:
        dur = float(rng.choice([0.125, 0.25, 0.25, 0.375, 0.5]))
        voices = int(rng.integers(1, 4))
        for _ in range(voices):
            f0 = root * 2 ** (scale[rng.integers(0, len(scale))] / 12) * float(rng.choice([1, 2, 4]))
            _note(out, rate, t, dur * float(rng.uniform(0.8, 1.6)), f0, float(rng.uniform(0.2, 0.6)), rng)
        if rng.random() < 0.5:
            _hit(out, rate, t, rng)
        t += dur
    out /= np.max(np.abs(out)) + 1e-9
    return (0.8 * out).astype(np.float32)


def _note(out: np.ndarray, rate: int, start: float, dur: float, f0: float, amp: float,
          rng: np.random.Generator) -> None:
    i0 = int(start * rate)
    m = min(int(dur * rate), len(out) - i0)
    if m <= 0:
        return
    tt = np.arange(m) / rate
    env = np.minimum(1.0, tt / 0.01) * np.exp(-tt * float(rng.uniform(1.5, 5.0)))
    sig = np.zeros(m)
    for h in range(1, int(rng.integers(3, 7))):
        if f0 * h > rate / 2.2:
            break
        sig += np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 2 * np.pi)) / h**1.2
    out[i0:i0 + m] += amp * env * sig


def _hit(out: np.ndarray, rate: int, start: float, rng: np.random.Generator) -> None:
    i0 = int(start * rate)
    m = min(int(0.08 * rate), len(out) - i0)
    if m <= 0:
        return
    tt = np.arange(m) / rate
    out[i0:i0 + m] += 0.3 * rng.standard_normal(m) * np.exp(-tt * 60)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at the given SNR against the signal's own power."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(x))
    gain = np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + gain * noise).astype(np.float32)
