"""The fingerprint kernel: against a plain numpy reference, and streaming-exact."""
import math

import numpy as np
import pytest

from earshot.fingerprint import (
    DEFAULT_PARAMS, PEAK_DTYPE, HashParams, HashStream, PeakParams, PeakStream, extract_peaks,
    hash_peaks,
)
from music import song

RATE = 8000


def reference_peaks(x: np.ndarray, p: PeakParams) -> np.ndarray:
    """The peak picker written out with numpy, straight from fingerprint.h's description."""
    n_frames = (len(x) - p.n_fft) // p.hop + 1
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(p.n_fft) / p.n_fft)
    w = w * 2 / w.sum()
    frames = np.stack([x[k * p.hop:k * p.hop + p.n_fft] for k in range(n_frames)]).astype(np.float64)
    power = np.abs(np.fft.rfft(frames * w, axis=1)) ** 2
    bin_hz = p.sample_rate / p.n_fft
    lo, hi = math.ceil(p.fmin_hz / bin_hz), math.floor(p.fmax_hz / bin_hz)
    lv = np.maximum(10 * np.log10(power[:, lo:hi + 1] + 1e-12), p.floor_db)
    nb = lv.shape[1]
    fmax = np.stack([[lv[t, max(0, b - p.freq_radius):b + p.freq_radius + 1].max() for b in range(nb)]
                     for t in range(n_frames)])
    out = []
    for t in range(n_frames):
        cands = []
        for b in range(1, nb - 1):
            v = lv[t, b]
            if v <= p.floor_db or v < fmax[t, b]:
                continue
            us = [u for u in range(max(0, t - p.time_radius), min(n_frames, t + p.time_radius + 1)) if u != t]
            if any(fmax[u, b] >= v if u < t else fmax[u, b] > v for u in us):
                continue
            sa, se = max(0, b - p.salience_radius), min(nb - 1, b + p.salience_radius)
            sal = v - lv[t, sa:se + 1].mean()
            if sal < p.min_salience_db:
                continue
            df = _parabola(lv[t, b - 1], v, lv[t, b + 1])
            dt = _parabola(lv[t - 1, b], v, lv[t + 1, b]) if 1 <= t < n_frames - 1 else 0.0
            cands.append((t + dt, math.log2((lo + b + df) * bin_hz), sal))
        cands.sort(key=lambda c: -c[2])
        out.extend(sorted(cands[:p.max_peaks_per_frame], key=lambda c: c[1]))
    return np.array(out, dtype=np.float64).reshape(-1, 3)


def _parabola(a, b, c):
    d = a - 2 * b + c
    if d >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))


def reference_hashes(peaks: np.ndarray, hp: HashParams, speed: float = 1.0):
    """Pair hashing written out in Python."""
    base, shift = math.log2(hp.fmin_hz), math.log2(speed)
    nd = int(2 * hp.max_doct * hp.df_per_octave)
    out = []
    for i, a in enumerate(peaks):
        zone = []
        for j in range(i + 1, len(peaks)):
            b = peaks[j]
            dt = (b["time"] - a["time"]) * speed
            if dt >= hp.dt_max + 0.5:
                break
            if dt < hp.dt_min - 0.5 or abs(b["freq"] - a["freq"]) >= hp.max_doct:
                continue
            zone.append((-float(b["salience"]), j))
        zone.sort()
        q1 = min(127, max(0, math.floor((a["freq"] - shift - base) * hp.f1_per_octave)))
        for _, j in zone[:hp.fanout]:
            b = peaks[j]
            qd = min(nd - 1, max(0, math.floor((b["freq"] - a["freq"] + hp.max_doct) * hp.df_per_octave)))
            gap = np.float32((b["time"] - a["time"]) * np.float32(speed))
            units = [round(float(np.float32(gap + d) / np.float32(hp.dt_step)))
                     for d in (-np.float32(hp.dt_tolerance), np.float32(hp.dt_tolerance))]
            u_min, u_max = round(hp.dt_min / hp.dt_step), round(hp.dt_max / hp.dt_step)
            lo_u, hi_u = (min(u_max, max(u_min, u)) for u in units)
            for qt in range(lo_u, hi_u + 1):
                out.append(((q1 << 14) | (qd << 6) | qt, a["time"] * speed))
    return out


@pytest.fixture(scope="module")
def signal():
    return song(7, 12.0, RATE)


def test_peaks_match_the_numpy_reference(signal):
    p = DEFAULT_PARAMS.query_peaks
    got = extract_peaks(signal, p)
    ref = reference_peaks(signal, p)
    assert len(got) > 100
    assert abs(len(got) - len(ref)) <= max(2, len(ref) // 100)
    # every reference peak has a kernel peak at the same place
    matched = 0
    for t, f, s in ref:
        near = np.abs(got["time"] - t) < 1e-3
        if np.any(near & (np.abs(got["freq"] - f) < 1e-4)):
            matched += 1
    assert matched >= 0.99 * len(ref)


@pytest.mark.parametrize("hp", [DEFAULT_PARAMS.catalog_hash, DEFAULT_PARAMS.query_hash,
                                HashParams(dt_step=2.0, dt_tolerance=1.5)])
def test_hashes_match_the_python_reference(signal, hp):
    peaks = extract_peaks(signal, DEFAULT_PARAMS.catalog_peaks)[:200]
    for speed in (1.0, 1.03):
        h, t = hash_peaks(peaks, hp, speed)
        ref = reference_hashes(peaks, hp, speed)
        assert [int(x) for x in h] == [r[0] for r in ref]
        np.testing.assert_allclose(t, [r[1] for r in ref], rtol=1e-6)


def test_time_tolerance_adds_the_neighbouring_gaps_to_the_exact_hashes(signal):
    """A query hashed with a time tolerance holds every exact hash of the same pairs, and
    the hashes of gaps a frame off: peaks that reverberation moved still meet the catalog."""
    peaks = extract_peaks(signal, DEFAULT_PARAMS.catalog_peaks)
    exact = HashParams(fanout=3)
    exact_h, _ = hash_peaks(peaks, exact)
    tolerant_h, _ = hash_peaks(peaks, HashParams(fanout=3, dt_tolerance=1.0))
    assert set(exact_h.tolist()) <= set(tolerant_h.tolist())
    assert len(tolerant_h) > 2.5 * len(exact_h)
    moved = peaks.copy()
    moved["time"][1::2] += 1.0  # every other peak a frame later
    moved_h, _ = hash_peaks(moved, exact)
    tolerant_moved_h, _ = hash_peaks(moved, HashParams(fanout=3, dt_tolerance=1.0))
    shared = len(np.intersect1d(exact_h, moved_h)) / len(np.unique(exact_h))
    shared_tolerant = len(np.intersect1d(exact_h, tolerant_moved_h)) / len(np.unique(exact_h))
    assert shared_tolerant > 0.9 > shared


@pytest.mark.parametrize("block", [1, 7, 128, 1000, 4096, 100000])
def test_any_block_size_gives_the_same_peaks_and_hashes(signal, block):
    p, hp = DEFAULT_PARAMS.query_peaks, DEFAULT_PARAMS.query_hash
    whole = extract_peaks(signal, p)
    whole_h, whole_t = hash_peaks(whole, hp)
    x = signal[:40000] if block == 1 else signal
    if block == 1:
        whole = extract_peaks(x, p)
        whole_h, whole_t = hash_peaks(whole, hp)
    ps, hs = PeakStream(p), HashStream(hp)
    peaks, hashes, times = [], [], []
    for i in range(0, len(x), block):
        new = ps.process(x[i:i + block])
        peaks.append(new)
        h, t = hs.feed(new, ps.frames_final)
        hashes.append(h)
        times.append(t)
    tail = ps.flush()
    peaks.append(tail)
    h, t = hs.feed(tail, None)
    hashes.append(h)
    times.append(t)
    np.testing.assert_array_equal(np.concatenate(peaks), whole)
    np.testing.assert_array_equal(np.concatenate(hashes), whole_h)
    np.testing.assert_array_equal(np.concatenate(times), whole_t)


@pytest.mark.parametrize("speed", [0.94, 1.0, 1.045])
def test_hashes_of_any_grouping_are_those_of_the_whole_at_every_speed(signal, speed):
    # the stream's buffer grows, and drops consumed peaks from its front, many times over
    p, hp = DEFAULT_PARAMS.query_peaks, DEFAULT_PARAMS.query_hash
    signal = np.tile(signal, 10)
    whole = extract_peaks(signal, p)
    whole_h, whole_t = hash_peaks(whole, hp, speed)
    rng = np.random.default_rng(int(speed * 1000))
    ps, hs, hashes, times, i = PeakStream(p), HashStream(hp, speed), [], [], 0
    while i < len(signal):
        n = int(rng.integers(1, 20000))
        h, t = hs.feed(ps.process(signal[i:i + n]), ps.frames_final)
        hashes.append(h)
        times.append(t)
        i += n
    h, t = hs.feed(ps.flush(), None)
    assert len(whole) > 2000
    np.testing.assert_array_equal(np.concatenate([*hashes, h]), whole_h)
    np.testing.assert_array_equal(np.concatenate([*times, t]), whole_t)


def test_random_block_sizes_give_the_same_peaks(signal):
    p = DEFAULT_PARAMS.catalog_peaks
    whole = extract_peaks(signal, p)
    rng = np.random.default_rng(0)
    ps, out, i = PeakStream(p), [], 0
    while i < len(signal):
        n = int(rng.integers(1, 5000))
        out.append(ps.process(signal[i:i + n]))
        i += n
    out.append(ps.flush())
    np.testing.assert_array_equal(np.concatenate(out), whole)


def test_silence_gives_no_peaks():
    assert len(extract_peaks(np.zeros(RATE * 3, np.float32), DEFAULT_PARAMS.query_peaks)) == 0


def test_speed_change_keeps_hashes_when_hashed_with_that_speed(signal):
    """Audio played 4% fast, hashed with speed 1.04, shares most hashes with the original."""
    from earshot.audio.resample import resample

    fast = resample(signal, 10400, 10000)  # 4% faster: same content in fewer samples
    hp = DEFAULT_PARAMS.query_hash
    ref_h, _ = hash_peaks(extract_peaks(signal, DEFAULT_PARAMS.query_peaks), hp)
    plain_h, _ = hash_peaks(extract_peaks(fast, DEFAULT_PARAMS.query_peaks), hp)
    mapped_h, _ = hash_peaks(extract_peaks(fast, DEFAULT_PARAMS.query_peaks), hp, speed=1.04)
    overlap_plain = len(np.intersect1d(ref_h, plain_h)) / len(np.unique(ref_h))
    overlap_mapped = len(np.intersect1d(ref_h, mapped_h)) / len(np.unique(ref_h))
    assert overlap_mapped > 0.5
    assert overlap_mapped > 2 * overlap_plain


def test_invalid_parameters_are_refused():
    from earshot.errors import EarshotError

    with pytest.raises(EarshotError):
        PeakStream(PeakParams(n_fft=1000))
    with pytest.raises(EarshotError):
        hash_peaks(np.zeros(3, PEAK_DTYPE), HashParams(dt_max=100))
    with pytest.raises(EarshotError):
        hash_peaks(np.zeros(3, PEAK_DTYPE), HashParams(dt_step=0.5))
