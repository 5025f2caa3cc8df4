"""Band levels: the coarse spectrogram that checks a candidate the fingerprint is unsure of."""
import shutil
from dataclasses import replace

import lmdb
import numpy as np
import pytest

from earshot.audio.decode import Audio
from earshot.catalog import Catalog
from earshot.identify import CHECK_MIN_Z, check_levels, recognise_audio
from earshot.ingest import fingerprint_rate_signal, ingest_audio
from earshot.levels import DEFAULT_LEVELS, LevelStream, band_levels, check, pack, unpack
from earshot.testing.damage import Room, add_noise, pink_noise, reverberate, room_impulse_response
from music import song

RATE = 8000
P = DEFAULT_LEVELS


def test_blocks_of_any_size_give_the_levels_of_one_call():
    x = song(11, 20.0, RATE).astype(np.float32)
    whole = band_levels(x)
    assert whole.shape == (1 + (len(x) - P.n_fft) // P.hop, P.bands) and whole.dtype == np.uint8
    for block in (1, 37, 512, 1000, 4096):
        s = LevelStream()
        parts = [s.process(x[i:i + block]) for i in range(0, len(x), block)]
        assert np.array_equal(np.concatenate(parts), whole)


def test_a_sine_reads_its_level_in_its_band_and_silence_reads_the_floor():
    t = np.arange(4 * RATE) / RATE
    x = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    lv = band_levels(x)
    edges = np.geomspace(P.fmin_hz, P.fmax_hz, P.bands + 1)
    band = int(np.searchsorted(edges, 1000.0)) - 1
    db = P.floor_db + P.step_db * lv[2:-2, band].astype(float)
    assert np.all(np.abs(db - 20 * np.log10(0.5)) < 2.0)        # about -6 dBFS
    assert np.all(lv[2:-2, band] > lv[2:-2, (band + 4) % P.bands] + 60)
    assert np.all(band_levels(np.zeros(RATE, np.float32)) == 0)


def test_packing_keeps_every_level():
    lv = band_levels(song(12, 30.0, RATE).astype(np.float32))
    blob = pack(lv)
    assert np.array_equal(unpack(blob), lv) and len(blob) < lv.nbytes


def room(x, seed):
    rng = np.random.default_rng(seed)
    wet = reverberate(x, room_impulse_response(Room(rt60_s=0.7), RATE, rng))
    return add_noise(wet, pink_noise(len(wet), RATE, rng), 5.0).astype(np.float32)


def test_an_excerpt_in_a_room_stands_out_at_its_place_and_nowhere_else():
    tracks = [band_levels(song(20 + i, 60.0, RATE).astype(np.float32)) for i in range(6)]
    x = song(20, 60.0, RATE).astype(np.float32)
    start = 21 * RATE
    query = band_levels(room(x[start:start + 10 * RATE], 1))
    rng = np.random.default_rng(0)
    randoms = [(tracks[1 + i % 5], int(rng.integers(2, len(tracks[1]) - len(query) - 2))) for i in range(60)]
    here = check(query, tracks[0], int(round(start / P.hop)), randoms)
    assert here is not None and here.z >= CHECK_MIN_Z and here.correlation > 0.3
    elsewhere = check(query, tracks[0], int(round(40 * RATE / P.hop)), randoms)
    other = check(query, tracks[3], int(round(start / P.hop)), randoms)
    assert elsewhere.z < 3.0 and other.z < 3.0
    assert check(query[:4], tracks[0], 0, randoms) is None                 # too short to say
    assert check(np.zeros_like(query), tracks[0], 0, randoms) is None      # silence says nothing


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("levels") / "catalog"
    with Catalog.open(path, create=True) as cat:
        for i in range(8):
            ingest_audio(cat, Audio(song(40 + i, 60.0, 22050)[:, None].astype(np.float32), 22050),
                         {"title": f"song{i}"}, f"/music/song{i}.wav")
    return path


def test_the_catalog_keeps_levels_with_each_track_removes_and_compacts_them(catalog, tmp_path):
    with Catalog.open(catalog, readonly=True) as cat:
        assert cat.level_params == DEFAULT_LEVELS and len(cat.level_track_ids()) == 8
        lv = cat.track_levels(3)
        assert lv is not None and abs(len(lv) - 60.0 / P.frame_s) <= 3
    copy = tmp_path / "copy"
    shutil.copytree(catalog, copy)
    with Catalog.open(copy) as cat:
        cat.remove_track(3)
        assert cat.track_levels(3) is None and len(cat.level_track_ids()) == 7
        cat.compact()
        with Catalog.open(catalog, readonly=True) as original:
            assert np.array_equal(cat.track_levels(4), original.track_levels(4))


def test_a_catalog_from_before_levels_is_read_without_them(tmp_path):
    path = tmp_path / "old"
    with Catalog.open(path, create=True) as cat:
        ingest_audio(cat, Audio(song(60, 30.0, 22050)[:, None].astype(np.float32), 22050), {"title": "old"}, "/m/old.wav")
    env = lmdb.open(str(path), max_dbs=8)       # as an earlier earshot left it: no levels at all
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"levels", txn=txn), delete=True)
        txn.delete(b"levels", db=env.open_db(b"meta", txn=txn))
    env.close()
    with Catalog.open(path, readonly=True) as cat:
        assert cat.level_params is None and cat.track_levels(1) is None and cat.level_track_ids() == []
        x = song(60, 30.0, 22050)[5 * 22050:15 * 22050]
        assert recognise_audio(cat, Audio(x[:, None].astype(np.float32), 22050)).match.track.title == "old"


def test_an_unsure_candidate_is_confirmed_by_its_levels_and_an_unknown_song_is_not(catalog):
    x = song(45, 60.0, 22050).astype(np.float32)
    query = Audio(x[17 * 22050:27 * 22050, None], 22050)
    strict = 1.0 - 1e-30                      # beyond what the fingerprint alone can say
    with Catalog.open(catalog, readonly=True) as cat:
        r = recognise_audio(cat, query, min_confidence=strict)
        assert r.level_check is not None and r.level_check.z >= CHECK_MIN_Z
        assert r.match is not None and r.match.track.title == "song5" and abs(r.match.offset_s - 17.0) < 0.1
        # the same candidate without the check: unsure
        signal = fingerprint_rate_signal(query, cat.params)
        assert check_levels(cat, signal, r.candidate).z == pytest.approx(r.level_check.z)
        unknown = Audio(song(99, 10.0, 22050)[:, None].astype(np.float32), 22050)
        u = recognise_audio(cat, unknown, min_confidence=0.5)
        assert u.match is None or u.level_check is None or u.level_check.z < CHECK_MIN_Z


def test_the_null_is_each_places_best_correlation_computed_at_once(monkeypatch):
    import earshot.levels as levels
    from earshot.levels import best_correlation, centred, null_correlations
    rng = np.random.default_rng(3)
    tracks = [band_levels(song(70 + i, 40.0, RATE).astype(np.float32)) for i in range(3)]
    query = band_levels(room(song(70, 40.0, RATE).astype(np.float32)[8 * RATE:18 * RATE], 2))
    q, qn = centred(query)
    places = [(tracks[i % 3], int(rng.integers(2, len(tracks[0]) - len(query) - 2))) for i in range(40)]
    one_by_one = np.array([best_correlation(q, qn, lv, f) for lv, f in places])
    assert np.allclose(null_correlations(q, qn, places), one_by_one, rtol=0, atol=1e-12)
    # a long query's places go in batches: the same values
    monkeypatch.setattr(levels, "NULL_CHUNK_VALUES", 3 * len(query) * P.bands)
    assert np.allclose(null_correlations(q, qn, places), one_by_one, rtol=0, atol=1e-12)
    # a place whose lags leave the track has no null value
    edge = null_correlations(q, qn, [(tracks[0], 0), (tracks[0], len(tracks[0]) - len(query))])
    assert list(edge) == [-1.0, -1.0]
    # nor does a query whose bands stay level, as best_correlation says
    flat, fn = centred(np.tile(query[:1], (len(query), 1)))
    assert list(null_correlations(flat, fn, places[:3])) == [-1.0] * 3
    assert best_correlation(flat, fn, *places[0]) == -1.0


def test_a_candidate_the_fingerprint_finds_unlikely_is_still_checked(catalog, monkeypatch):
    import earshot.identify as identify
    x = song(46, 60.0, 22050).astype(np.float32)
    query = Audio(x[30 * 22050:40 * 22050, None], 22050)
    real = identify.match_peaks

    def weak(*args, **kw):   # the right place, but with the fingerprint's evidence of a coincidence
        session, cand = real(*args, **kw)
        assert cand is not None
        return session, replace(cand, p_value=0.95, confidence=0.05)
    monkeypatch.setattr(identify, "match_peaks", weak)
    with Catalog.open(catalog, readonly=True) as cat:
        r = recognise_audio(cat, query)
        assert r.level_check is not None and r.level_check.z >= CHECK_MIN_Z
        assert r.match is not None and r.match.track.title == "song6" and r.match.p_value < 1e-6
        # `identify --plot` says what confirmed it
        from earshot.explain import explain
        from earshot.plots import _identify_verdict
        assert explain(cat, r).level_check == r.level_check
        assert f"band levels {r.level_check.z:.1f} σ above random places" in _identify_verdict(explain(cat, r))
        # an unknown song's unlikely candidate is checked too, and not confirmed
        u = recognise_audio(cat, Audio(song(98, 10.0, 22050)[:, None].astype(np.float32), 22050))
        assert u.level_check is not None and u.level_check.z < CHECK_MIN_Z and u.match is None


def test_levels_kept_for_checks_are_forgotten_when_the_catalog_is_written(catalog, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(catalog, copy)
    query = band_levels(song(45, 60.0, RATE).astype(np.float32))[100:256]
    with Catalog.open(copy) as cat:
        assert cat.check_levels(query, 6, 100) is not None
        assert cat._level_cache                       # the null's tracks, kept decompressed
        cat.remove_track(2)
        assert 2 not in cat.level_track_ids() and not cat._level_cache
        assert cat.check_levels(query, 6, 100) is not None and 2 not in cat._level_cache
