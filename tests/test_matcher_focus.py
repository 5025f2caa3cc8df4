"""Speed hypotheses hashed only where they can matter: MatchSession.focus, and the live
pipeline hashing a playing song's speed and its neighbours only; neighbouring hypotheses
that name one song at one place taken as one claim."""
import numpy as np
import pytest
from catalogs import peak_hops, readonly_song_catalog
from earshot.catalog import Track
from earshot.config import ListenSection
from earshot.matcher import Match, MatchSession, one_claim
from earshot.pipeline import CLAIM_TOLERANCE_S, Pipeline
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


def _match(track_id, offset_s, speed, score, p):
    track = Track(track_id, f"song {track_id}", None, None, 200.0, f"/m/{track_id}.wav", "d", 100, 0.0)
    return Match(track, offset_s, 1.0 - p, score, speed, p)


def test_neighbouring_speeds_at_one_place_are_one_claim_led_by_the_most_hits():
    now = 20.0                                   # stream seconds
    nominal = _match(1, 50.0, 1.0, 45, 1e-11)    # at 70.0 s in the track now
    near = _match(1, 70.0 - now * 1.015, 1.015, 30, 1e-12)   # the same place, fewer hits
    claim = one_claim(near, [nominal, near], now, 0.5)
    assert (claim.speed, claim.offset_s, claim.score) == (1.0, 50.0, 45)
    assert claim.p_value == 1e-12 and claim.confidence == near.confidence   # the best evidence
    # another track, or the same track elsewhere, is no part of the claim
    elsewhere = _match(1, 50.0 - now * 1.015 + 5.0, 1.015, 30, 1e-12)
    assert one_claim(elsewhere, [nominal, elsewhere], now, 0.5) is elsewhere
    other = _match(2, 70.0 - now * 1.015, 1.015, 30, 1e-12)
    assert one_claim(other, [nominal, other], now, 0.5) is other
    # a tie on hits goes to the hypothesis nearer to nominal speed
    fast = _match(1, 70.0 - now * 1.03, 1.03, 30, 1e-12)
    slow = _match(1, 70.0 - now * 0.985, 0.985, 30, 1e-10)
    assert one_claim(fast, [slow, fast], now, 0.5).speed == 0.985


def test_the_live_session_merges_claims_and_takes_its_fanout_from_the_listen_setting(catalog):
    cat, songs = catalog
    live = Pipeline(cat, RATE, 1, listen=ListenSection(query_fanout=4)).session
    assert live.claim_tolerance_s == CLAIM_TOLERANCE_S > 0
    assert {live.query_hash_params(s).fanout for s in live.speeds} == {4}
    assert MatchSession(cat).claim_tolerance_s == 0          # identify judges each hypothesis alone
    assert cat.params.query_hash.fanout == 6                 # identify's queries keep theirs
    # a clean song heard live is named at its own speed, once, with its place
    x = np.concatenate([songs[2][10 * RATE:40 * RATE], np.zeros(14 * RATE, np.float32)])
    p = Pipeline(cat, RATE, 1, listen=ListenSection(query_fanout=4, time_tolerance=1))
    matches = []
    for i in range(0, len(x), RATE // 4):
        matches += [e for e in p.process(x[i:i + RATE // 4, None]) if e.event == "match"]
    assert len(matches) == 1 and matches[0].speed == 1.0
