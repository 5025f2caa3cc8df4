"""The scoring kernel's two methods (sorted keys, dense counts) give the same cell, bit for bit."""
import math
import threading

import numpy as np
import pytest
from catalogs import peak_hops, readonly_song_catalog
from earshot.evidence import MAX_WEIGHT, CellScore, EvidenceWindow, Scorer, track_words
from earshot.matcher import BIN_FRAMES, NULL_BLOCK, TAIL_MIN, WINDOW_BINS, MatchSession
from music import add_noise
from test_matcher_evidence import clustered_window, random_evidence, reference_cell, window_of

RATE = 22050


def fields(cell: CellScore | None):
    if cell is None:
        return None
    return (cell.track, cell.bin, cell.count, cell.n_null, cell.k, cell.u, cell.top_sum, cell.offsets.tobytes())


def score(window, since=None, mute=None, method="auto", params=(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)):
    """The cell and the method that scored it."""
    scorer = Scorer(*params, method=method)
    cell = scorer.best_cell(window, since, mute)
    if cell is not None and method == "dense" and scorer.last_method == "sort":
        cell = scorer.best_cell(window, since, mute)   # the scratch has grown for it now
    return fields(cell), scorer.last_method


def in_fresh_thread(fn):
    """fn() with a new thread's (empty) scoring scratch."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("since,mute", [(None, None), (5300.0, None), (None, (7, math.inf)),
                                        (5100.25, (7, 5400.0)), (5749.0, None)])
def test_dense_counts_equal_sorted_keys_on_random_evidence(seed, since, mute):
    track, t_ref, t_q = random_evidence(seed)
    w = window_of(track, t_ref, t_q)
    dense, used = score(w, since, mute, "dense")
    assert used == "dense"
    assert dense == score(w, since, mute, "sort")[0] and dense is not None


@pytest.mark.parametrize("bin_frames,window_bins,block_bins", [
    (2.0, 4, 64), (3.0, 4, 50), (0.5, 1, 7), (1.0, 5, 64), (2.5, 2, 3), (2.0, 4, 300), (1.0, 64, 512)])
def test_dense_counts_equal_the_reference_for_other_bins_windows_and_blocks(bin_frames, window_bins, block_bins):
    """Blocks longer than the dense scan's chunk of 256 bins, windows of one bin and of the
    most the dense method takes, bins that are not a power of two."""
    rng = np.random.default_rng(int(bin_frames * 10) + window_bins + block_bins)
    w, track, t_ref, t_q = clustered_window(rng)
    params = (bin_frames, window_bins, block_bins, 10)
    dense, used = score(w, method="dense", params=params)
    assert used == "dense"
    assert dense[:7] == reference_cell(track, t_ref, t_q, bin_frames, window_bins, block_bins, 10)
    assert dense == score(w, method="sort", params=params)[0]


def test_auto_counts_densely_when_the_bins_are_few_per_hit_and_sorts_otherwise():
    def run():
        track, t_ref, t_q = random_evidence(8)          # 40 k hits over 30 tracks' ~7.5 k bins
        crowded = window_of(track, t_ref, t_q)
        first = score(crowded)[1]                       # the scratch is made for the hits first
        sparse = EvidenceWindow()                       # 50 hits over offsets of hours
        sparse.append(np.arange(50, dtype=np.uint32) % 3, np.arange(50, dtype=np.uint32) * 99991,
                      np.arange(50, dtype=np.float32))
        return first, score(crowded)[1], score(sparse)[1]

    assert in_fresh_thread(run) == ("dense", "dense", "sort")


def test_a_caller_may_count_densely_up_to_more_bins_a_hit():
    """`dense_limit` moves the automatic choice (identify's sessions take 32 bins a hit, the
    kernel's own limit is 16); the cell is the same either way."""
    def run():
        rng = np.random.default_rng(5)
        n = 2000                                        # over 4 tracks of ~12 k bins: ~24 a hit
        track = rng.integers(0, 4, n).astype(np.uint32)
        t_ref = rng.integers(0, 24000, n).astype(np.uint32)
        t_q = np.sort(rng.uniform(0, 600, n)).astype(np.float32)
        w = window_of(track, t_ref, t_q)
        params = (BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)
        out = []
        for limit in (0, 16, 32):
            scorer = Scorer(*params, dense_limit=limit)
            cell = scorer.best_cell(w, None, None)
            if scorer.last_method == "sort" and limit == 32:   # the scratch grows for it first
                cell = scorer.best_cell(w, None, None)
            out.append((fields(cell), scorer.last_method))
        return out

    (default, d16, d32) = in_fresh_thread(run)
    assert default[1] == d16[1] == "sort" and d32[1] == "dense"
    assert default[0] == d16[0] == d32[0] and default[0] is not None


def test_the_scratch_grows_for_the_dense_method_when_it_needs_more_than_sorting():
    def run():
        rng = np.random.default_rng(3)                  # ~15 bins a hit: dense needs > 2 n elements
        n = 20000
        track = rng.integers(0, 4, n).astype(np.uint32)
        t_ref = rng.integers(0, 150000, n).astype(np.uint32)
        t_q = np.sort(rng.uniform(0, 1000, n)).astype(np.float32)
        w = EvidenceWindow()
        w.append(track, t_ref, t_q)
        scorer = Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)
        got = [(fields(scorer.best_cell(w, None, None)), scorer.last_method) for _ in range(2)]
        return got, score(w, method="sort")[0]

    (first, second), sorted_ = in_fresh_thread(run)
    assert (first[1], second[1]) == ("sort", "dense")
    assert first[0] == second[0] == sorted_


@pytest.mark.parametrize("crowd,method", [(255, "dense"), (256, "sort"), (70000, "sort")])
def test_a_cell_of_256_hits_or_more_is_scored_by_sorting(crowd, method):
    """The dense counters are 8 bits: a cell that overflows one falls back to sorting."""
    track = np.r_[np.full(crowd, 2), np.arange(2000) % 5].astype(np.uint32)
    t_ref = np.r_[np.full(crowd, 501), np.arange(2000) * 7].astype(np.uint32)   # offsets in (500, 501]: one bin
    t_q = np.r_[np.linspace(0, 0.99, crowd), np.linspace(1, 20, 2000)].astype(np.float32)
    w = EvidenceWindow()
    w.append(track, t_ref, t_q)
    cell, used = score(w, method="dense")
    assert used == method and cell[2] >= crowd
    assert cell[:7] == reference_cell(track, t_ref, t_q, BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("since,mute", [(None, None), (5300.0, None), (5100.25, (7, 5400.0))])
def test_weighted_hits_score_alike_in_both_methods_and_the_reference(seed, since, mute):
    """Each hit counts its weight (1 .. 16) in the cells, windows and null maxima, in both
    methods as in the numpy reference; the cell's offsets are one per hit."""
    track, t_ref, t_q = random_evidence(seed, planted=40)   # a planted bin stays under 256
    weight = np.random.default_rng(seed).integers(1, MAX_WEIGHT + 1, len(track))
    w = window_of(track_words(track, weight), t_ref, t_q)
    dense, used = score(w, since, mute, "dense")
    assert used == "dense" and dense == score(w, since, mute, "sort")[0]
    keep = t_q >= (since if since is not None else -np.inf)
    if mute is not None:
        keep &= ~((track == mute[0]) & (t_q < mute[1]))
    want = reference_cell(track[keep], t_ref[keep], t_q[keep], BIN_FRAMES, WINDOW_BINS, NULL_BLOCK,
                          TAIL_MIN, weight[keep])
    assert dense[:7] == want
    bins = np.floor((t_ref[keep].astype(np.float64) - t_q[keep]) / BIN_FRAMES)
    in_cell = (track[keep] == want[0]) & (bins >= want[1]) & (bins < want[1] + WINDOW_BINS)
    assert len(np.frombuffer(dense[7])) == in_cell.sum() < want[2]


@pytest.mark.parametrize("crowd,method", [(15, "dense"), (16, "sort")])
def test_a_bin_weighing_256_or_more_is_scored_by_sorting(crowd, method):
    """Weights fill the dense method's 8-bit counters sooner: 16 hits of weight 16 in one bin
    overflow one, and sorting scores them."""
    track = np.r_[np.full(crowd, 2), np.arange(2000) % 5].astype(np.uint32)
    weight = np.r_[np.full(crowd, 16), np.ones(2000, np.int64)]
    t_ref = np.r_[np.full(crowd, 501), np.arange(2000) * 7].astype(np.uint32)
    t_q = np.r_[np.linspace(0, 0.99, crowd), np.linspace(1, 20, 2000)].astype(np.float32)
    w = EvidenceWindow()
    w.append(track_words(track, weight), t_ref, t_q)
    cell, used = score(w, method="dense")
    assert used == method and cell[2] >= 16 * crowd
    assert cell[:7] == reference_cell(track, t_ref, t_q, BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN, weight)


def test_a_best_window_heavier_than_the_histogram_has_room_for_is_tallied_from_sorted_maxima():
    """A few heavy hits: the best window weighs more than 2 n, where the tail's histogram has
    no room, and the tail is taken from the sorted null maxima instead, as the reference."""
    rng = np.random.default_rng(6)
    n = 60
    track = np.r_[np.full(10, 3), rng.integers(0, 40, n - 10)].astype(np.uint32)
    t_ref = np.r_[np.full(10, 5000), rng.integers(0, 100000, n - 10)].astype(np.uint32)
    t_q = np.r_[np.linspace(0, 1, 10), np.sort(rng.uniform(2, 100, n - 10))].astype(np.float32)
    weight = np.full(n, 16)
    w = EvidenceWindow()
    w.append(track_words(track, weight), t_ref, t_q)
    want = reference_cell(track, t_ref, t_q, BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN, weight)
    assert want[2] == 160 > 2 * n and want[3] > TAIL_MIN
    for method in ("sort", "dense", "auto"):
        assert score(w, method=method)[0][:7] == want


def test_out_of_range_offsets_are_refused_by_both_methods():
    w = EvidenceWindow()
    w.append(np.array([1, 1], np.uint32), np.array([0, 5], np.uint32), np.array([0.0, 9.0e9], np.float32))
    for method in ("sort", "dense", "auto"):
        with pytest.raises(ValueError, match="out of range"):
            Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN, method=method).best_cell(w, None, None)
        assert Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN, method=method).best_cell(w, 1e10, None) is None


@pytest.mark.parametrize("since,mute", [(-1.0, None), (None, (4, 0.0))])
def test_out_of_range_hits_left_out_by_the_filters_change_neither_method(since, mute):
    """The dense method bounds its spans from every hit stored; an offset out of range among
    hits the filters leave out must not change its answer (it leaves such windows to sorting)."""
    rng = np.random.default_rng(11)
    n = 5000
    track = np.r_[np.full(50, 4), rng.integers(0, 6, n)].astype(np.uint32)
    t_ref = np.r_[np.full(50, 10), rng.integers(0, 5000, n)].astype(np.uint32)
    t_q = np.r_[np.full(50, -9.0e9), np.sort(rng.uniform(0, 300, n))].astype(np.float32)
    w = EvidenceWindow()
    w.append(track, t_ref, t_q)
    keep = (t_q >= (since if since is not None else -np.inf)) & ~((track == 4) & (t_q < 0.0))
    want = reference_cell(track[keep], t_ref[keep], t_q[keep], BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)
    for method in ("sort", "dense", "auto"):
        assert score(w, since, mute, method)[0][:7] == want


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    yield from readonly_song_catalog(tmp_path_factory.mktemp("methods"), range(310, 313), RATE)


def test_dense_counts_equal_sorted_keys_on_streamed_evidence(catalog):
    """Real hits: a noisy excerpt streamed hop by hop, the window sliding, with the filters
    NowPlaying uses (since, a muted song's past, a muted track)."""
    cat, songs = catalog
    x = add_noise(songs[2][4 * RATE:20 * RATE], 3, seed=5)
    speeds = (1.0, 0.97, 1.03)
    session = MatchSession(cat, speeds=speeds)
    hop = RATE // 4
    compared = dense_used = 0
    for k, (peaks, final) in enumerate(peak_hops(cat, x, RATE)):
        session.add_peaks(peaks, final)
        if k % 4 == 3:
            session.evict((k - 24) * hop / RATE / cat.params.frame_seconds)
            for speed in speeds:
                now = k * hop / RATE / cat.params.frame_seconds * speed
                for since, mute in [(None, None), (now - 200.0, None), (None, (2, math.inf)),
                                    (now - 400.0, (2, now - 100.0))]:
                    dense, used = score(session._hits[speed], since, mute, "dense")
                    assert dense == score(session._hits[speed], since, mute, "sort")[0]
                    compared += 1
                    dense_used += used == "dense"
    assert compared >= 150 and dense_used >= compared - 12   # (the first windows may be empty)
