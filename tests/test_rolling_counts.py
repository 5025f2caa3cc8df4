"""Rolling counts (a window's dense histogram kept between scorings) score exactly what the
kernel scores afresh, field for field, while the window slides, evicts, compacts, jumps
back, meets hits outside the layout, and counts past 255."""
import numpy as np
import pytest
from earshot.evidence import EvidenceWindow, RollingCounts, Scorer, track_words
from earshot.matcher import BIN_FRAMES, NULL_BLOCK, TAIL_MIN, WINDOW_BINS

FIELDS = ("track", "bin", "count", "n_null", "k", "u", "top_sum", "weight", "hits")
HOP = 15.625            # frames of a 0.25 s hop
SPAN = 750.0            # frames of a 12 s window
TRACK_FRAMES = 9000     # the catalog's tracks' length (ids below 30)


def fields(cell):
    return None if cell is None else tuple(getattr(cell, f) for f in FIELDS)


def hops(seed, n_hops, weighted=True, planted_from=40, planted_weight=None, beyond=0.0):
    """Per hop: anchors in time order up to a frame's jitter, ~150 coincidental hits each over
    40 tracks (ids from 30 on unknown to the catalog's lengths), and from hop `planted_from`
    a song on track 7 at a fixed offset (a hit on one anchor in ten, weighing 1 or
    `planted_weight`). `beyond`: the share of hits past the tracks' length."""
    rng = np.random.default_rng(seed)
    for hop in range(n_hops):
        anchors = np.sort(hop * HOP + rng.uniform(0, HOP, 20))
        anchors = anchors + rng.uniform(-0.9, 0.0, len(anchors)) * (rng.random(len(anchors)) < 0.3)
        tracks, refs, times = [], [], []
        for a in anchors:
            n = int(rng.integers(100, 200))
            tr = rng.integers(0, 40, n)
            ref = rng.integers(0, TRACK_FRAMES, n)
            past = rng.random(n) < beyond
            ref[past] += rng.integers(1, 3000, int(past.sum()))
            planted = hop >= planted_from and rng.random() < 0.1
            if planted:
                tr = np.r_[tr, 7]
                ref = np.r_[ref, int(a) + 2000]
            w = rng.integers(1, 17, len(tr)) if weighted else np.ones(len(tr), np.int64)
            if planted:
                w[-1] = 1 if planted_weight is None else planted_weight
            tracks.append(track_words(tr.astype(np.uint32), w))
            refs.append(ref.astype(np.uint32))
            times.append(np.full(len(tr), a, np.float32))
        yield np.concatenate(tracks), np.concatenate(refs), np.concatenate(times)


def frames_of_tracks():
    return np.full(30, TRACK_FRAMES, np.uint32)


def run(seed, n_hops=160, queries=lambda hop, now: [now - SPAN], **kw):
    """Stream the hops into a window; every other hop score each query's span both ways and
    evict as the live pipeline does. Returns how the rolling counts answered."""
    scorer = Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)
    rolling = RollingCounts(scorer, frames_of_tracks)
    window = EvidenceWindow()
    answered = {"rolled": 0, "declined": 0}
    for hop, (track, t_ref, t_q) in enumerate(hops(seed, n_hops, **kw)):
        window.append(track, t_ref, t_q)
        if hop % 2:
            continue
        now = (hop + 1) * HOP
        for since in queries(hop, now):
            got = rolling.best_cell(window, since)
            want = scorer.best_cell(window, since, None, offsets=False)
            if got is False:
                answered["declined"] += 1
                continue
            answered["rolled"] += 1
            assert fields(got) == fields(want), (hop, since)
        window.evict(now - SPAN)
    answered["builds"] = rolling.builds
    return answered


@pytest.mark.parametrize("seed", [1, 2])
def test_a_sliding_window_scores_as_scored_afresh(seed):
    got = run(seed)
    assert got["rolled"] >= 70 and got["builds"] <= 6, got


def test_unweighted_hits_and_a_window_that_compacts_often():
    got = run(3, n_hops=240, weighted=False)
    assert got["rolled"] >= 100, got


def test_hits_past_the_layout_rebuild_it_and_the_scores_stay_exact():
    got = run(4, beyond=0.002)
    assert got["rolled"] >= 50 and got["builds"] > 6, got


def test_the_recent_part_only_is_declined_and_a_span_moved_back_rebuilt():
    def queries(hop, now):
        out = [now - SPAN]
        if hop % 10 == 0:
            out.append(now - 60.0)           # a candidate's fresh evidence: declined
        if hop % 14 == 0:
            out.append(now - SPAN - 200.0)   # further back than held: built afresh
        return out
    got = run(5, queries=queries)
    assert got["declined"] >= 10 and got["rolled"] >= 70, got


def test_counts_past_255_are_left_to_the_usual_scoring():
    # a loud clean match: the song's hits weigh 16 each, ~2 an anchor-second in one cell
    got = run(6, planted_weight=16, weighted=False, planted_from=0)
    assert got["declined"] > 0 and got["rolled"] >= 0, got


def test_an_emptied_window_and_a_new_one():
    scorer = Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN)
    rolling = RollingCounts(scorer, frames_of_tracks)
    for seed in (7, 8):
        window = EvidenceWindow()
        for hop, (track, t_ref, t_q) in enumerate(hops(seed, 100)):
            window.append(track, t_ref, t_q)
            now = (hop + 1) * HOP
            got = rolling.best_cell(window, now - SPAN)
            if got is not False:
                assert fields(got) == fields(scorer.best_cell(window, now - SPAN, None, offsets=False))
            window.evict(now - SPAN)
        window.evict(1e9)
        assert rolling.best_cell(window, 1e9) is None
