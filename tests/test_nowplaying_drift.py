"""A song played off speed between two of the matcher's speed hypotheses (a deck 3.8 % slow
or fast: the grid has 0.955, 0.97, ... 1.03, 1.045) drifts off the offset it was announced
at, by up to 0.0075 s a second. Followed on its recent hits, it is announced once and its
position stays right for minutes; unfollowed, it was ended and announced again every 40 s."""
import numpy as np
import pytest
from earshot.audio.decode import Audio
from earshot.audio.resample import resample
from earshot.catalog import Catalog
from earshot.ingest import ingest_audio
from earshot.pipeline import Pipeline
from music import add_noise, song

RATE = 48000
SONG_S = 120.0


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("drift") / "catalog"
    with Catalog.open(path, create=True) as cat:
        for i in range(4):
            ingest_audio(cat, Audio(song(400 + i, SONG_S, RATE)[:, None], RATE), {"title": f"S{i}"}, f"/m/{i}.wav")
    with Catalog.open(path, readonly=True) as cat:
        yield cat


@pytest.mark.parametrize("speed", [0.962, 1.038])
def test_a_song_between_speed_hypotheses_is_announced_once_and_followed(catalog, speed):
    played = resample(song(402, SONG_S, RATE), round(RATE * speed), RATE).astype(np.float32)
    x = add_noise(np.concatenate([np.zeros(RATE, np.float32), played]), 15.0, seed=1)
    pipe = Pipeline(catalog, RATE, 1)
    events = []
    hop = RATE // 4
    for i in range(0, len(x), hop):
        events += pipe.process(x[i:i + hop, None])
    matches = [e for e in events if e.event == "match"]
    assert [e.title for e in matches] == ["S2"]
    assert [e.state for e in events if e.event == "now_playing"] == ["candidate", "playing"]
    # where the deck was a second before the end, in the track's own time
    now = pipe.stats.audio_s - 1.0
    assert pipe.nowplaying.position_s(now) == pytest.approx((now - 1.0) * speed, abs=0.25)
