"""The matcher's evidence window and its C scoring against a straightforward numpy reference."""
import math

import numpy as np
import pytest
from catalogs import peak_hops, readonly_song_catalog
from earshot.catalog import LOOKUP_DTYPE
from earshot.evidence import EvidenceWindow, Scorer, join_hits, unique_hashes
from earshot.matcher import (
    BIN_FRAMES,
    KEY_SHIFT,
    NULL_BLOCK,
    OFFSET_BIAS,
    TAIL_MIN,
    WINDOW_BINS,
    MatchSession,
    null_log_p,
    tail_log_p,
    window_counts,
)
from music import add_noise

RATE = 22050


def reference_best(track, t_ref, t_q, since=None, mute=None):
    """The matcher's scoring as plain numpy (the pre-C code path): (track, count, log p, offset)."""
    track, t_ref, t_q = track.astype(np.int64), t_ref.astype(np.float64), t_q.astype(np.float64)
    keep = np.ones(len(t_q), dtype=bool)
    if since is not None:
        keep &= t_q >= since
    if mute is not None:
        keep &= ~((track == mute[0]) & (t_q < mute[1]))
    track, t_ref, t_q = track[keep], t_ref[keep], t_q[keep]
    if len(track) == 0:
        return None
    offset = t_ref - t_q
    obin = np.floor(offset / BIN_FRAMES).astype(np.int64) + OFFSET_BIAS // BIN_FRAMES
    ukeys, window = window_counts((track << KEY_SHIFT) | obin)
    i = int(np.argmax(window))
    tid = int(ukeys[i] >> KEY_SHIFT)
    b0 = int(ukeys[i] & ((1 << KEY_SHIFT) - 1))
    in_cell = (track == tid) & (obin >= b0) & (obin < b0 + WINDOW_BINS)
    return tid, int(window[i]), null_log_p(ukeys, window, i), float(np.median(offset[in_cell]))


def kernel_best(window, since=None, mute=None):
    cell = Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN).best_cell(window, since, mute)
    if cell is None:
        return None
    return cell.track, cell.count, tail_log_p(cell.count, cell.k, cell.u, cell.top_sum), float(np.median(cell.offsets))


def random_evidence(seed, n=40000, tracks=30, planted=400):
    """Coincidental hits over many tracks, one planted alignment, anchor times in order up to
    the jitter of peaks within one frame (as the hasher gives them)."""
    rng = np.random.default_rng(seed)
    t_q = np.sort(rng.uniform(5000, 5750, n)) + rng.uniform(-0.5, 0.5, n)
    track = rng.integers(1, tracks, n).astype(np.uint32)
    t_ref = rng.integers(0, 15000, n).astype(np.uint32)
    sel = rng.choice(n, planted, replace=False)
    track[sel] = 7
    t_ref[sel] = np.clip(np.rint(t_q[sel] + 1234 + rng.normal(0, 1.0, planted)), 0, None).astype(np.uint32)
    return track, t_ref, t_q.astype(np.float32)


def window_of(track, t_ref, t_q, batches=20):
    w = EvidenceWindow()
    for part in np.array_split(np.arange(len(track)), batches):
        w.append(track[part], t_ref[part], t_q[part])
    return w


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("since,mute", [(None, None), (5300.0, None), (None, (7, math.inf)),
                                        (5100.25, (7, 5400.0)), (5749.0, None)])
def test_scoring_equals_the_numpy_reference_on_random_evidence(seed, since, mute):
    track, t_ref, t_q = random_evidence(seed)
    assert kernel_best(window_of(track, t_ref, t_q), since, mute) == reference_best(track, t_ref, t_q, since, mute)


def test_scoring_finds_the_planted_alignment():
    track, t_ref, t_q = random_evidence(4)
    tid, count, log_p, offset = kernel_best(window_of(track, t_ref, t_q))
    assert tid == 7 and count >= 300 and abs(offset - 1234) <= 1 and log_p < -50


def test_scoring_nothing_left_is_none():
    track, t_ref, t_q = random_evidence(5, n=1000, planted=10)
    w = window_of(track, t_ref, t_q)
    assert kernel_best(w, since=1e9) is None and kernel_best(EvidenceWindow()) is None


def test_scoring_a_single_cell_and_a_single_block():
    w = EvidenceWindow()
    w.append(np.full(5, 3, np.uint32), np.full(5, 100, np.uint32), np.arange(5, dtype=np.float32) * 0.1)
    args = (np.full(5, 3, np.uint32), np.full(5, 100, np.uint32), np.arange(5, dtype=np.float32) * 0.1)
    assert kernel_best(w) == reference_best(*args)


def test_eviction_keeps_exactly_the_hits_not_before_the_cut():
    track, t_ref, t_q = random_evidence(6)
    w = window_of(track, t_ref, t_q, batches=50)
    for before in (5100.0, 5100.0, 5333.3, 5600.7):
        w.evict(before)
        keep = t_q.astype(np.float64) >= before
        got = w.live()
        assert np.array_equal(got[0], track[keep]) and np.array_equal(got[1], t_ref[keep])
        assert np.array_equal(got[2], t_q[keep])
        assert len(w) >= int(keep.sum())          # stored: the kept ones and a few at the cut
        assert len(w) <= int(keep.sum()) + 200
        assert kernel_best(w) == reference_best(track, t_ref, t_q, since=before)


def test_the_disorder_bound_is_the_largest_fall_below_an_earlier_time():
    # anchors arrive in time order up to a frame; the window's cuts are conservative by the
    # largest fall of a time below any earlier one (native es_ev_disorder, numpy reference here)
    rng = np.random.default_rng(3)
    w, seen = EvidenceWindow(), np.empty(0, np.float64)
    for start in range(0, 2000, 100):
        t = np.sort(rng.uniform(start, start + 100, 60)).astype(np.float32)
        swap = rng.integers(0, 59, 5)
        t[swap], t[swap + 1] = t[swap + 1].copy(), t[swap].copy()   # a few out of order
        w.append(np.zeros(60, np.uint32), np.zeros(60, np.uint32), t)
        seen = np.r_[seen, t.astype(np.float64)]
        running = np.maximum.accumulate(seen)
        assert w._disorder == max(0.0, float(np.max(running[:-1] - seen[1:])))
        assert w._latest == float(running[-1])
    assert w._disorder > 0
    with pytest.raises(TypeError, match="float32"):
        w.commit_join(1, 0, np.array([1.0, 2.0]))


def test_window_memory_follows_the_live_hits():
    w = EvidenceWindow()
    rng = np.random.default_rng(0)
    for hop in range(400):   # 100 s of hops, 10 s kept
        n = 2000
        t = (hop + rng.uniform(0, 1, n)).astype(np.float32)
        t.sort()
        w.append(np.ones(n, np.uint32), np.ones(n, np.uint32), t)
        w.evict(hop - 40)
    assert len(w) <= 42 * 2000
    assert w.nbytes <= 12 * 3 * len(w) + 12 * 3 * 4096


def test_hits_of_one_anchor_time_cost_eight_bytes():
    """Hits sharing an anchor time are one run: t_q is stored once a run, not once a hit."""
    w = EvidenceWindow()
    rng = np.random.default_rng(1)
    for hop in range(100):
        t = np.repeat(np.sort(rng.uniform(hop, hop + 1, 20)).astype(np.float32), 250)   # 20 anchors
        w.append(rng.integers(0, 100, len(t)).astype(np.uint32), np.ones(len(t), np.uint32), t)
        w.evict(hop - 10)
    assert len(w) >= 10 * 20 * 250
    # the runs' share is small, and all of it, slack included, is under the 12 bytes a live hit
    # took with a t_q per hit
    assert w._run_t.nbytes + w._run_end.nbytes < 0.02 * (w._track.nbytes + w._t_ref.nbytes)
    assert w.nbytes < 12 * len(w)


def test_an_emptied_window_gives_its_buffers_back():
    w = EvidenceWindow()
    t = np.repeat(np.arange(1000, dtype=np.float32), 100)
    w.append(np.ones(len(t), np.uint32), np.ones(len(t), np.uint32), t)
    assert w.nbytes > 8 * len(t)
    w.evict(500.0)
    assert len(w) == 50_000 and w.nbytes > 8 * len(t)   # still in use: kept
    w.evict(2000.0)
    assert len(w) == 0 and w.nbytes <= 8 * 4096 + 8 * 256
    assert kernel_best(w) is None and w.live()[0].size == 0


def reference_join(postings, hashes, times, max_postings=0, weights=None):
    """(track, t_ref, t_q, weight) of every hit, in order."""
    ph = postings["hash"].astype(np.uint32)
    out = []
    for h, t in zip(hashes, times):
        lo, hi = np.searchsorted(ph, h, "left"), np.searchsorted(ph, h, "right")
        if hi > lo and (max_postings == 0 or hi - lo <= max_postings):
            weight = 1 if weights is None else int(weights[min(hi - lo, len(weights) - 1)])
            for j in range(lo, hi):
                out.append((int(postings["track"][j]), int(postings["time"][j]), float(t), weight))
    return out


@pytest.mark.parametrize("max_postings,weights", [(0, None), (3, None), (0, [1, 16, 9, 5, 2]), (3, [1, 3])])
def test_join_equals_the_numpy_reference(max_postings, weights):
    """Postings' tracks are the catalog's 24-bit ids; a hash's df picks its hits' weight."""
    rng = np.random.default_rng(9)
    postings = np.zeros(300, LOOKUP_DTYPE)
    postings["hash"] = np.sort(rng.integers(0, 60, 300))
    postings["track"] = rng.integers(0, 1 << 24, 300)
    postings["time"] = rng.integers(0, 1 << 31, 300)
    raw = np.frombuffer(postings.tobytes(), LOOKUP_DTYPE)   # read-only, as from LMDB
    hashes = rng.integers(0, 70, 500).astype(np.uint32)
    times = np.sort(rng.uniform(0, 1000, 500)).astype(np.float32)
    w = EvidenceWindow()
    table = None if weights is None else np.array(weights, np.uint8)
    n = join_hits(w, raw, np.unique(np.r_[hashes, postings["hash"].astype(np.uint32)]), hashes, times,
                  max_postings, table)
    want = reference_join(postings, hashes, times, max_postings, weights)
    track, t_ref, t_q = w.live()
    assert n == len(want) == len(track)
    assert list(zip(track.tolist(), t_ref.tolist(), t_q.astype(np.float64).tolist(), w.weights().tolist())) == want


@pytest.mark.parametrize("spread", ["random", "structured"])
def test_join_finds_every_key_among_many_whatever_their_values(spread):
    """The join's hash table over the looked-up keys: thousands of keys, random over 32 bits
    or packed fields that differ only in their high or low bits (the catalog's layout), query
    hashes present and absent, keys looked up that have no postings."""
    rng = np.random.default_rng(11)
    if spread == "random":
        keys = np.unique(rng.integers(0, 1 << 32, 6000, dtype=np.uint64)).astype(np.uint32)
    else:
        keys = np.unique(np.r_[np.arange(3000, dtype=np.uint64) << 20,
                               (7 << 28) + np.arange(3000, dtype=np.uint64)]).astype(np.uint32)
    with_postings = np.sort(rng.choice(keys, len(keys) * 2 // 3, replace=False))
    df = rng.integers(1, 5, len(with_postings))
    postings = np.zeros(int(df.sum()), LOOKUP_DTYPE)
    postings["hash"] = np.repeat(with_postings, df)
    postings["track"] = rng.integers(0, 1 << 24, len(postings))
    postings["time"] = rng.integers(0, 1 << 31, len(postings))
    absent = rng.integers(0, 1 << 32, 2000, dtype=np.uint64).astype(np.uint32)
    hashes = rng.permutation(np.r_[rng.choice(keys, 4000), absent[~np.isin(absent, keys)]]).astype(np.uint32)
    times = np.sort(rng.uniform(0, 1000, len(hashes))).astype(np.float32)
    w = EvidenceWindow()
    n = join_hits(w, np.frombuffer(postings.tobytes(), LOOKUP_DTYPE), keys, hashes, times)
    want = reference_join(postings, hashes, times)
    track, t_ref, t_q = w.live()
    assert n == len(want) == len(track) > 4000
    assert list(zip(track.tolist(), t_ref.tolist(), t_q.astype(np.float64).tolist())) == [h[:3] for h in want]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 5000, 70000])
def test_unique_hashes_equal_numpys(n):
    """Every digit of the radix sort matters: values spread over 32 bits, values that differ
    only in their low or their high bits, many repeats."""
    rng = np.random.default_rng(n)
    spread = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    low = rng.integers(0, 50, n).astype(np.uint32)
    high = (rng.integers(0, 50, n).astype(np.uint32) << np.uint32(26)) | np.uint32(12345)
    for hashes in (spread, low, high, np.r_[spread, spread[::-1]]):
        assert np.array_equal(unique_hashes(hashes), np.unique(hashes))


def test_join_refuses_keys_that_repeat():
    postings = np.zeros(2, LOOKUP_DTYPE)
    postings["hash"] = [5, 5]
    with pytest.raises(ValueError, match="repeat"):
        join_hits(EvidenceWindow(), postings, np.array([5, 5], np.uint32), np.array([5], np.uint32),
                  np.zeros(1, np.float32))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    yield from readonly_song_catalog(tmp_path_factory.mktemp("ev"), range(300, 303), RATE)


def test_scoring_equals_the_numpy_reference_on_streamed_evidence(catalog):
    """Real hits: a noisy excerpt streamed hop by hop under several speed hypotheses."""
    cat, songs = catalog
    x = add_noise(songs[2][5 * RATE:17 * RATE], 5, seed=2)
    speeds = (1.0, 0.97, 1.03)
    session = MatchSession(cat, speeds=speeds)
    hop = RATE // 4
    compared = 0
    for k, (peaks, final) in enumerate(peak_hops(cat, x, RATE)):
        session.add_peaks(peaks, final)
        if k % 8 == 7:
            session.evict((k - 30) * hop / RATE / cat.params.frame_seconds)
            for speed in speeds:
                window = session._hits[speed]
                for since, mute in [(None, None), (300.0 * speed, None), (None, (2, math.inf)),
                                    (100.0 * speed, (2, 500.0 * speed))]:
                    floor = window._floor
                    eff = floor if since is None else max(since, floor)
                    track, t_ref, t_q = window.views()
                    assert kernel_best(window, since, mute) == reference_best(
                        track, t_ref, t_q, None if eff == -math.inf else eff, mute)
                    compared += 1
    m = session.best()
    assert m is not None and m.track.track_id == 2 and compared >= 48
    # track_support counts what filtering hits() would (NowPlaying's coincidence-rate test)
    track, t_ref, t_q = session.hits(m.speed)
    since = 400.0
    sel = (track == 2) & (t_q >= since * m.speed)
    near = np.abs((t_ref[sel] - t_q[sel]) - m.offset_s / cat.params.frame_seconds) <= 15.0
    got = session.track_support(2, m.offset_s / cat.params.frame_seconds, m.speed, since, 15.0)
    assert got == (int(near.sum()), int(sel.sum())) and got[0] > 20


def reference_cell(track, t_ref, t_q, bin_frames, window_bins, block_bins, tail_min, weight=None):
    """es_ev_score's result fields in plain numpy, for any bin width, window and block, each
    hit counted its weight (1 for None)."""
    track = track.astype(np.int64)
    bins = np.floor((t_ref.astype(np.float64) - t_q.astype(np.float64)) / bin_frames).astype(np.int64)
    cells, inverse = np.unique(np.stack([track, bins], axis=1), axis=0, return_inverse=True)
    weight = np.ones(len(track), np.int64) if weight is None else np.asarray(weight, np.int64)
    counts = np.bincount(inverse.ravel(), weights=weight, minlength=len(cells)).astype(np.int64)
    window = counts.copy()
    for i in range(len(cells)):
        j = i + 1
        while j < len(cells) and cells[j, 0] == cells[i, 0] and cells[j, 1] - cells[i, 1] < window_bins:
            window[i] += counts[j]
            j += 1
    best = int(np.argmax(window))
    blocks = (cells[:, 1] + (1 << 32)) // block_bins
    own = (cells[best, 0], blocks[best])
    maxima = {}
    for (t, _), blk, w in zip(cells, blocks, window):
        maxima[(t, blk)] = max(maxima.get((t, blk), 0), int(w))
    null = sorted((w for (t, blk), w in maxima.items() if not (t == own[0] and abs(blk - own[1]) <= 1)),
                  reverse=True)
    k = min(len(null), max(tail_min, len(null) // 20))
    return (int(cells[best, 0]), int(cells[best, 1]), int(window[best]), len(null), k,
            float(null[k]) if k < len(null) else 0.0, int(sum(null[:k])))


def clustered_window(rng, n=6000):
    """A window of n hits on six tracks, 30 % of them in offsets that repeat (many duplicate
    cells), the rest spread over 40 frames: (window, track, t_ref, t_q)."""
    t_q = np.sort(rng.uniform(0, 300, n)).astype(np.float32)
    track = rng.integers(0, 6, n).astype(np.uint32)
    t_ref = (rng.integers(0, 900, n) + np.where(rng.random(n) < 0.3, 0, rng.integers(0, 40, n))).astype(np.uint32)
    w = EvidenceWindow()
    w.append(track, t_ref, t_q)
    return w, track, t_ref, t_q


@pytest.mark.parametrize("bin_frames,window_bins,block_bins", [
    (2.0, 4, 64), (3.0, 4, 50), (0.5, 1, 7), (1.0, 5, 64), (2.5, 2, 3)])
def test_scoring_fields_equal_the_reference_for_other_bins_windows_and_blocks(bin_frames, window_bins, block_bins):
    """The kernel's fast paths (an exact reciprocal for power-of-two bins, branch-free runs
    and windows, one division a block) against the reference, with many duplicate cells."""
    rng = np.random.default_rng(int(bin_frames * 10) + window_bins)
    w, track, t_ref, t_q = clustered_window(rng)
    cell = Scorer(bin_frames, window_bins, block_bins, 10).best_cell(w, None, None)
    got = (cell.track, cell.bin, cell.count, cell.n_null, cell.k, cell.u, cell.top_sum)
    assert got == reference_cell(track, t_ref, t_q, bin_frames, window_bins, block_bins, 10)
    bins = np.floor((t_ref.astype(np.float64) - t_q) / bin_frames)
    in_cell = (track == cell.track) & (bins >= cell.bin) & (bins < cell.bin + window_bins)
    assert sorted(cell.offsets.tolist()) == sorted((t_ref[in_cell].astype(np.float64) - t_q[in_cell]).tolist())


def test_lookup_widens_the_stored_records_as_the_numpy_reference():
    """es_ev_widen: 10-byte getmulti records (hash u32, track u24, frame u24, big-endian)
    into LOOKUP_DTYPE, against strided numpy views of the same bytes."""
    from earshot.native import ffi, lib

    rng = np.random.default_rng(4)
    n = 1001
    raw = rng.integers(0, 256, 10 * n, dtype=np.uint8).tobytes()
    out = np.empty(n, LOOKUP_DTYPE)
    lib.es_ev_widen(ffi.from_buffer(raw), n, ffi.from_buffer(out))
    rec = np.frombuffer(raw, np.uint8).reshape(n, 10).astype(np.uint32)
    assert np.array_equal(out["hash"], (rec[:, 0] << 24) | (rec[:, 1] << 16) | (rec[:, 2] << 8) | rec[:, 3])
    assert np.array_equal(out["track"], (rec[:, 4] << 16) | (rec[:, 5] << 8) | rec[:, 6])
    assert np.array_equal(out["time"], (rec[:, 7] << 16) | (rec[:, 8] << 8) | rec[:, 9])


def test_rarity_weights_fall_as_one_over_the_square_root_of_df():
    from earshot.matcher import rarity_weights

    w = rarity_weights(16.0)
    assert rarity_weights(0.0) is None
    assert (w[1], w[2], w[4], w[16], w[64]) == (16, 11, 8, 4, 2)
    assert w[-1] == 1 and w.dtype == np.uint8 and np.all(np.diff(w[1:].astype(int)) <= 0)
    assert rarity_weights(64.0)[1] == 16     # never above the track word's room
