"""A change of song that someone talks over: the song that ended is not announced again from
its own last seconds, still in the evidence window, while the new one is hard to hear."""
import numpy as np
import pytest
from catalogs import readonly_song_catalog
from earshot.pipeline import Pipeline
from music import add_noise, song

RATE = 48000
SONG_S = 60.0


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    for cat, _ in readonly_song_catalog(tmp_path_factory.mktemp("change"), range(600, 604), RATE, SONG_S):
        yield cat


def test_the_song_before_is_not_announced_again_while_the_new_one_is_drowned_out(catalog):
    old, new = song(601, SONG_S, RATE), song(602, SONG_S, RATE)
    rng = np.random.default_rng(5)
    drowned = new[25 * RATE:30 * RATE] + rng.standard_normal(5 * RATE).astype(np.float32) * 1.5
    x = np.concatenate([np.zeros(RATE, np.float32), old[10 * RATE:40 * RATE],   # 30 s of the old song
                        new[20 * RATE:25 * RATE],                                  # the new one, announced
                        drowned,                                                   # 5 s: loud talk over it
                        new[30 * RATE:50 * RATE]])
    x = add_noise(x, 20.0, seed=6)
    pipe = Pipeline(catalog, RATE, 1)
    events = []
    for i in range(0, len(x), RATE // 4):
        events += pipe.process(x[i:i + RATE // 4, None])
    assert [e.title for e in events if e.event == "match"] == ["S1", "S2"]
    assert pipe.nowplaying.song is not None and pipe.nowplaying.song.match.track.title == "S2"
