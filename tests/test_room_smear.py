"""The listener measures its room on the songs it announces (smear.py): in a reverberant room
a song's hits at its place are about three times as many with the ±1 frame tolerance as with
exact time gaps, on a dry chain about as many; the nominal hypothesis takes the tolerance
only in the first case. Real catalogs (LMDB) of synthetic songs, the real pipeline."""
import numpy as np
import pytest
from earshot.config import ListenSection, load_config
from earshot.errors import ConfigError
from earshot.pipeline import Pipeline
from earshot.smear import MIN_TOLERANT_HITS, RoomSmear
from earshot.testing import damage

RATE = 48000
HOP = RATE // 4


@pytest.fixture(scope="module")
def catalog(live_catalog):
    _, cat, songs = live_catalog
    return cat, list(songs.values())[:3]


def reverberant(x: np.ndarray, seed: int) -> np.ndarray:
    return damage.apply(damage.standard_damages()["reverb0.5"], x, RATE, 0, len(x),
                        np.random.default_rng(seed))


def listen(pipe: Pipeline, songs: list[np.ndarray]) -> list[tuple[str, int]]:
    """Each song's 30 s from 5 s in, one after the other: what was announced, and the
    nominal hypothesis' tolerance just after."""
    out = []
    for x in songs:
        for i in range(0, len(x), HOP):
            for e in pipe.process(x[i:i + HOP, None]):
                if e.event == "match":
                    out.append((e.title, pipe.time_tolerance))
    return out


def excerpts(songs, room=False):
    return [reverberant(x[5 * RATE:35 * RATE], n) if room else x[5 * RATE:35 * RATE]
            for n, x in enumerate(songs)]


def test_the_verdict_is_the_median_of_the_last_songs():
    room = RoomSmear()
    assert room.tolerance == 0                       # exact gaps until a song has been measured
    room.add(exact=2, tolerant=MIN_TOLERANT_HITS - 1)
    assert not room.ratios                           # too few hits to say anything
    room.add(exact=10, tolerant=30)
    assert room.tolerance == 1
    room.add(exact=50, tolerant=55)
    room.add(exact=40, tolerant=44)
    assert room.tolerance == 0                       # two dry songs of three: median 1.1
    for _ in range(3):
        room.add(exact=20, tolerant=50)
    assert room.tolerance == 1 and len(room.ratios) == 3


def test_a_reverberant_room_takes_the_tolerance_after_its_first_song(catalog):
    cat, songs = catalog
    pipe = Pipeline(cat, RATE, 1)
    assert pipe.time_tolerance == 0 and not pipe.nowplaying.params.recent_beyond_chance
    heard = listen(pipe, excerpts(songs, room=True))
    assert [t for t, _ in heard] == ["Song 1", "Song 2", "Song 3"]
    assert [tol for _, tol in heard] == [1, 1, 1]
    assert all(r >= 2.0 for r in pipe._room.ratios), pipe._room.ratios
    # the nominal hypothesis alone; a playing song's recent hits must then beat chance too
    assert {s: pipe.session.query_hash_params(s).dt_tolerance for s in (1.0, 0.97)} == {1.0: 1.0, 0.97: 0.0}
    assert pipe.nowplaying.params.recent_beyond_chance


def test_a_dry_chain_keeps_exact_gaps(catalog):
    cat, songs = catalog
    pipe = Pipeline(cat, RATE, 1)
    heard = listen(pipe, excerpts(songs))
    assert [t for t, _ in heard] == ["Song 1", "Song 2", "Song 3"]
    assert [tol for _, tol in heard] == [0, 0, 0]
    assert all(r < 1.5 for r in pipe._room.ratios), pipe._room.ratios


@pytest.mark.parametrize("fixed", [0, 1])
def test_a_fixed_tolerance_is_not_measured(catalog, fixed):
    cat, songs = catalog
    pipe = Pipeline(cat, RATE, 1, listen=ListenSection(time_tolerance=fixed))
    heard = listen(pipe, excerpts(songs[:2], room=True))
    assert heard and {tol for _, tol in heard} == {fixed}


def test_the_setting_accepts_auto_or_a_number_of_frames(tmp_path, monkeypatch):
    assert ListenSection().time_tolerance == "auto"
    cfg = tmp_path / "earshot.toml"
    cfg.write_text("[listen]\ntime_tolerance = 1\n")
    assert load_config(cfg).listen.time_tolerance == 1
    monkeypatch.setenv("EARSHOT_LISTEN__TIME_TOLERANCE", "auto")
    assert load_config(cfg).listen.time_tolerance == "auto"
    monkeypatch.delenv("EARSHOT_LISTEN__TIME_TOLERANCE")
    cfg.write_text("[listen]\ntime_tolerance = 3\n")
    with pytest.raises(ConfigError, match="time_tolerance.*'auto', 0, 1, 2"):
        load_config(cfg)
