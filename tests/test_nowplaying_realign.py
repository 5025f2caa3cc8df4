"""Where NowPlaying finds a song's evidence. A playing song heard again at another place in
itself (a seek here; a repeated passage it was first aligned to is the same case) is
followed there: announced once, never ended, its position right after the move. A song that
has ended is not found again in its own last seconds, still in the evidence window, while
the next one is hard to hear; nor does another version of the playing song replace it."""
import numpy as np
import pytest
from catalogs import readonly_song_catalog, readonly_titled_catalog
from earshot.pipeline import Pipeline
from music import add_noise, song

RATE = 48000
SONG_S = 140.0


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    seeds = [500, 501, 502, 503, 601, 602]   # S0 … S5
    for cat, _ in readonly_song_catalog(tmp_path_factory.mktemp("realign"), seeds, RATE, SONG_S):
        yield cat


def run(catalog, x):
    pipe = Pipeline(catalog, RATE, 1)
    events = []
    hop = RATE // 4
    for i in range(0, len(x), hop):
        events += pipe.process(x[i:i + hop, None])
    return pipe, events


def test_a_seek_within_the_playing_song_is_followed_without_a_new_announcement(catalog):
    track = song(502, SONG_S, RATE)
    lead = np.zeros(RATE, np.float32)
    first, second = track[10 * RATE:40 * RATE], track[90 * RATE:130 * RATE]   # 30 s, then a skip ahead
    x = add_noise(np.concatenate([lead, first, second]), 15.0, seed=3)
    pipe, events = run(catalog, x)
    assert [e.title for e in events if e.event == "match"] == ["S2"]
    states = [(e.state, e.reason) for e in events if e.event == "now_playing"]
    assert ("playing", "found again at another place") in states
    assert not [s for s, _ in states if s == "ended"]
    moved = next(e for e in events if e.event == "now_playing" and e.reason == "found again at another place")
    assert 90.0 < moved.position_s < 90.0 + 8.0     # followed within seconds of the skip
    now = pipe.stats.audio_s - 1.0
    assert pipe.nowplaying.position_s(now) == pytest.approx(90.0 + (now - 31.0), abs=0.25)


def test_the_song_before_is_not_announced_again_while_the_new_one_is_drowned_out(catalog):
    old, new = song(601, SONG_S, RATE), song(602, SONG_S, RATE)
    rng = np.random.default_rng(5)
    drowned = new[25 * RATE:30 * RATE] + rng.standard_normal(5 * RATE).astype(np.float32) * 1.5
    x = np.concatenate([np.zeros(RATE, np.float32), old[10 * RATE:40 * RATE],   # 30 s of the old song
                        new[20 * RATE:25 * RATE],                                  # the new one, announced
                        drowned,                                                   # 5 s: loud talk over it
                        new[30 * RATE:50 * RATE]])
    pipe, events = run(catalog, add_noise(x, 20.0, seed=6))
    assert [e.title for e in events if e.event == "match"] == ["S4", "S5"]
    assert pipe.nowplaying.song is not None and pipe.nowplaying.song.match.track.title == "S5"


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """A, another version of A (A with a second part mixed in), B and C."""
    a = song(700, SONG_S, RATE)
    tracks = {"A": a, "A version": (a + 0.5 * song(701, SONG_S, RATE)) / 1.5,
              "B": song(702, SONG_S, RATE), "C": song(703, SONG_S, RATE)}
    for cat, _ in readonly_titled_catalog(tmp_path_factory.mktemp("versions"), tracks, RATE):
        yield cat, tracks


def test_another_version_of_the_playing_song_does_not_replace_it(versions):
    """The version shares most of A's hashes, so the window's evidence of A, A left out, names
    the version surely: when A's hits thinned for a few seconds (a quiet passage, or people
    talking over it, as here) it was ended as "another song" and announced again after
    (traced on the talk hour 13: `track3` named over `track3 enhanced`). Only what is heard
    after the playing song was last heard clearly may name another song; B, after A, still does."""
    cat, t = versions
    a = t["A"]
    talk = a[40 * RATE:47 * RATE] + np.random.default_rng(5).standard_normal(7 * RATE).astype(np.float32) * 1.5
    x = np.concatenate([np.zeros(RATE, np.float32), a[10 * RATE:40 * RATE], talk, a[47 * RATE:60 * RATE],
                        t["B"][20 * RATE:50 * RATE]])                     # B from 51 s
    _, events = run(cat, add_noise(x, 20.0, seed=6))
    matches = [e for e in events if e.event == "match"]
    assert [e.title for e in matches] == ["A", "B"]
    assert 20.0 < matches[1].offset_s < 20.0 + 8.0                       # B within 8 s of its start
    ended = [e.reason for e in events if e.event == "now_playing" and e.state == "ended"]
    assert ended == ["another song"]


def test_a_song_drowned_out_then_heard_again_resumes_without_a_second_announcement(catalog):
    """Loud noise over the playing song for longer than `lost_after_s` ends it ("no longer
    heard"); when it is recognised again where its play has got to, that is the same play:
    `now_playing` says it plays again, and no second `match` is sent (with `[listen]
    resume_within_s = 0` it is announced twice)."""
    from earshot.config import ListenSection

    track = song(503, SONG_S, RATE)
    x = add_noise(np.concatenate([np.zeros(RATE, np.float32), track[10 * RATE:85 * RATE]]), 20.0, seed=9)
    loud = float(np.sqrt(np.mean(track ** 2))) * 10.0 ** (30.0 / 20.0)      # 15 s at -30 dB SNR
    x[31 * RATE:46 * RATE] += np.random.default_rng(8).standard_normal(15 * RATE).astype(np.float32) * loud
    for resume_within_s, titles in ((60.0, ["S3"]), (0.0, ["S3", "S3"])):
        pipe = Pipeline(catalog, RATE, 1, listen=ListenSection(resume_within_s=resume_within_s))
        events = []
        for i in range(0, len(x), RATE // 4):
            events += pipe.process(x[i:i + RATE // 4, None])
        assert [e.title for e in events if e.event == "match"] == titles
        states = [(e.state, e.reason) for e in events if e.event == "now_playing"]
        assert ("ended", "no longer heard") in states
        assert (("playing", "heard again where its play had got to") in states) == (resume_within_s > 0)
        now = pipe.stats.audio_s - 1.0                     # and it is followed where it plays
        assert pipe.nowplaying.song is not None and pipe.nowplaying.song.match.track.title == "S3"
        assert pipe.nowplaying.position_s(now) == pytest.approx(10.0 + (now - 1.0), abs=0.25)


def test_a_song_played_again_from_its_start_is_announced_again(catalog):
    """A song that ended and then plays from its start (a repeat, not the same play going
    on) is announced again; one paused a while and resumed where it stopped is the same play."""
    track = song(500, SONG_S, RATE)
    silence = np.zeros(15 * RATE, np.float32)   # longer than lost_after_s: the song ends
    x = add_noise(np.concatenate([np.zeros(RATE, np.float32), track[10 * RATE:40 * RATE], silence,
                                  track[40 * RATE:60 * RATE],                     # paused, resumed
                                  silence, track[0:30 * RATE]]), 20.0, seed=10)   # again from the top
    _, events = run(catalog, x)
    assert [e.title for e in events if e.event == "match"] == ["S0", "S0"]
    assert sum(1 for e in events if e.event == "now_playing" and e.reason == "heard again where its play had got to") == 1
    assert len([e for e in events if e.event == "now_playing" and e.state == "ended"]) >= 2
