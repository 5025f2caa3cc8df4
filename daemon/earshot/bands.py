"""The six-band spectrum: band edges, names, and levels relative to the whole spectrum.

The meter (native/loudness.c) accumulates the power of a Hann-windowed FFT of the mono mix
in each band, once per 100 ms hop, over the hops above -70 LUFS. Here those powers become
levels in dB relative to their sum: a tonal-balance profile that does not depend on how
loud the track is, so it can be set against a genre's typical range.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Seven edges bound six bands (Hz). Above 20 kHz nothing is counted.
EDGES_HZ: tuple[float, ...] = (20.0, 60.0, 250.0, 500.0, 2000.0, 6000.0, 20000.0)
NAMES: tuple[str, ...] = ("sub", "bass", "low_mid", "mid", "high_mid", "air")


@dataclass(frozen=True)
class Band:
    """One band's level (dB relative to the six bands' total power) and its edges."""

    name: str
    low_hz: float
    high_hz: float
    level_db: float | None


def band_levels(powers: Sequence[float] | None) -> list[Band]:
    """Band powers → levels in dB relative to their total (None where undefined)."""
    total = sum(powers) if powers else 0.0
    out = []
    for i, name in enumerate(NAMES):
        level = None
        if powers and total > 0.0 and powers[i] > 0.0:
            level = 10.0 * math.log10(powers[i] / total)
        out.append(Band(name, EDGES_HZ[i], EDGES_HZ[i + 1], level))
    return out
