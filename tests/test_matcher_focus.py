"""Speed hypotheses hashed only where they can matter: MatchSession.focus, and the live
pipeline hashing a playing song's speed and its neighbours only."""
import numpy as np
import pytest
from catalogs import peak_hops, readonly_song_catalog
from earshot.matcher import MatchSession
from earshot.pipeline import Pipeline
from music import add_noise

RATE = 22050
SPEEDS = (1.0, 0.97, 1.03)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    yield from readonly_song_catalog(tmp_path_factory.mktemp("focus"), range(400, 403), RATE)


def test_focus_hashes_only_the_chosen_speeds_and_resumes_from_new_peaks(catalog):
    cat, songs = catalog
    x = add_noise(songs[2][3 * RATE:19 * RATE], 10, seed=4)
    hops = list(peak_hops(cat, x, RATE))
    full, focused = MatchSession(cat, speeds=SPEEDS), MatchSession(cat, speeds=SPEEDS)
    for k, (peaks, final) in enumerate(hops):
        full.add_peaks(peaks, final)
        if k == 16:
            focused.focus((1.0, 5.0))            # a speed not hypothesised is ignored
            assert focused.active_speeds == (1.0,)
            paused = {s: focused._hits[s].query_hashes for s in (0.97, 1.03)}
        if k == 40:
            focused.focus(None)
            paused_at = focused._hits[0.97]._latest
            resumed_at = float(peaks["time"].min()) * 0.97   # the first peak it is given again
        focused.add_peaks(peaks, final)
        assert len(focused._chunks) <= 1         # no peaks kept for the paused hypotheses
        if 16 <= k < 40:
            assert {s: focused._hits[s].query_hashes for s in (0.97, 1.03)} == paused
    # the hypothesis hashed throughout has exactly the evidence of an unfocused session
    for a, b in zip(full.hits(1.0), focused.hits(1.0)):
        assert np.array_equal(a, b)
    # a resumed hypothesis has evidence again, all of it from the peaks after it resumed
    _, _, t_q = focused.hits(0.97)
    after = t_q[t_q > paused_at]
    assert len(after) > 50 and after.min() >= resumed_at - 1e-3
    assert len(t_q) < len(full.hits(0.97)[2])
    m_full, m_focused = full.best(), focused.best()
    assert m_focused.track.track_id == m_full.track.track_id == 2
    # every hypothesis hashed at some time still counts in the p-value
    assert focused.best(speeds=(1.0,)).p_value == full.best(speeds=(1.0,)).p_value
    with pytest.raises(ValueError):
        focused.focus((2.0,))


def test_a_playing_song_is_hashed_at_its_speed_and_the_neighbours_only(catalog):
    cat, songs = catalog
    p = Pipeline(cat, RATE, 1)
    every = p.session.speeds
    assert len(every) > 3
    x = np.concatenate([add_noise(songs[1][2 * RATE:24 * RATE], 15, seed=5), np.zeros(15 * RATE, np.float32)])
    seen = []
    for i in range(0, len(x), RATE // 4):
        p.process(x[i:i + RATE // 4, None])
        seen.append((p.nowplaying.state, p.session.active_speeds))
    playing = [speeds for state, speeds in seen if state == "playing"]
    assert len(playing) > 20
    ordered = sorted(every)
    i = ordered.index(1.0)
    assert set(playing[-1]) == set(ordered[i - 1:i + 2])
    # after the song: every hypothesis again
    assert seen[-1][0] in ("idle", "ended") and set(seen[-1][1]) == set(every)
