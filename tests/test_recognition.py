"""Recognition of generated music-like songs under noise, gain, offset and resampling."""
import numpy as np
import pytest

from earshot.audio.decode import Audio
from earshot.audio.resample import resample
from earshot.catalog import Catalog
from earshot.identify import identify_audio
from music import add_noise, song
from catalogs import song_catalog

RATE = 44100
SONGS = 6


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "catalog"
    songs = song_catalog(path, range(100, 100 + SONGS), 40.0, RATE, title="Song {i}", source="/music/{i}.wav")
    assert list(songs) == list(range(1, SONGS + 1))
    cat = Catalog.open(path, readonly=True)
    yield cat, songs
    cat.close()


def query(x, start_s, seconds, rate=RATE):
    a = int(start_s * rate)
    return x[a:a + int(seconds * rate)]


@pytest.mark.parametrize("track_id,start", [(1, 3.0), (3, 17.5), (6, 29.0)])
def test_clean_excerpt_is_found_at_its_position(catalog, track_id, start):
    cat, songs = catalog
    m = identify_audio(cat, Audio(query(songs[track_id], start, 8)[:, None], RATE))
    assert m is not None and m.track.track_id == track_id
    assert abs(m.offset_s - start) < 0.05
    assert m.confidence > 0.99


@pytest.mark.parametrize("snr", [10, 0])
def test_noisy_excerpt_is_found(catalog, snr):
    cat, songs = catalog
    q = add_noise(query(songs[2], 10, 10), snr, seed=snr)
    m = identify_audio(cat, Audio(q[:, None], RATE))
    assert m is not None and m.track.track_id == 2 and abs(m.offset_s - 10) < 0.1


def test_quiet_excerpt_is_found(catalog):
    cat, songs = catalog
    q = query(songs[4], 5, 8) * 10 ** (-30 / 20)
    m = identify_audio(cat, Audio(q[:, None], RATE))
    assert m is not None and m.track.track_id == 4


def test_other_rates_and_stereo_are_found(catalog):
    cat, songs = catalog
    q = resample(query(songs[5], 12, 8), RATE, 22050)
    stereo = np.stack([q, 0.5 * q], axis=1)
    m = identify_audio(cat, Audio(stereo, 22050))
    assert m is not None and m.track.track_id == 5 and abs(m.offset_s - 12) < 0.1


@pytest.mark.parametrize("speed", [0.96, 1.03])
def test_speed_changed_excerpt_is_found(catalog, speed):
    cat, songs = catalog
    x = query(songs[3], 8, 10 * speed)
    fast = resample(x, int(round(RATE * speed)), RATE)  # played `speed` times too fast
    m = identify_audio(cat, Audio(fast[:, None], RATE))
    assert m is not None and m.track.track_id == 3
    assert abs(m.offset_s - 8) < 0.5
    assert abs(m.speed - speed) < 0.02


def test_unknown_song_is_no_match(catalog):
    cat, _ = catalog
    for seed in (900, 901, 902):
        q = song(seed, 10.0, RATE)
        assert identify_audio(cat, Audio(q[:, None], RATE)) is None


def test_noise_and_silence_are_no_match(catalog):
    cat, _ = catalog
    rng = np.random.default_rng(0)
    assert identify_audio(cat, Audio(rng.standard_normal((RATE * 8, 1)).astype(np.float32) * 0.1, RATE)) is None
    assert identify_audio(cat, Audio(np.zeros((RATE * 8, 1), np.float32), RATE)) is None


def test_evidence_accumulates_across_hops(catalog):
    """The daemon's path: peaks fed hop by hop into one session reach a sure match."""
    from earshot.audio.resample import Resampler
    from earshot.fingerprint import PeakStream
    from earshot.matcher import MatchSession

    cat, songs = catalog
    x = add_noise(query(songs[6], 20, 12), 5, seed=1)
    rs = Resampler(RATE, cat.params.sample_rate)
    ps = PeakStream(cat.params.query_peaks)
    session = MatchSession(cat, speeds=(1.0,))
    hop = RATE // 4
    confidences = []
    for i in range(0, len(x), hop):
        peaks = ps.process(rs.process(x[i:i + hop]))
        session.add_peaks(peaks, ps.frames_final)
        m = session.best()
        confidences.append(m.confidence if m and m.track.track_id == 6 else 0.0)
    assert confidences[-1] > 0.999
    assert confidences[2] < confidences[-1]


def _peaks(x, rate=RATE):
    from earshot.fingerprint import DEFAULT_PARAMS, extract_peaks
    from earshot.ingest import fingerprint_rate_signal

    return extract_peaks(fingerprint_rate_signal(Audio(x[:, None], rate), DEFAULT_PARAMS),
                         DEFAULT_PARAMS.query_peaks)


def test_a_sure_excerpt_settles_on_its_exact_gaps(catalog):
    """A clean excerpt is sure on the hashes of its exact gaps alone: the first test answers
    (its session hashed no tolerance and one speed), with what the full test finds."""
    from earshot.matcher import match_peaks

    cat, songs = catalog
    peaks = _peaks(query(songs[3], 17.5, 8))
    session, m = match_peaks(cat, peaks, accept_p=1e-3)
    full_session, full = match_peaks(cat, peaks, accept_p=1e-3, settle_p=0.0)
    assert session.params.query_hash.dt_tolerance == 0.0 and session.speeds == (1.0,)
    assert full_session.params.query_hash.dt_tolerance == cat.params.query_hash.dt_tolerance > 0
    assert m is not None and full is not None and m.p_value <= 1e-9
    assert (m.track.track_id, m.speed) == (full.track.track_id, full.speed) == (3, 1.0)
    assert abs(m.offset_s - full.offset_s) < 0.05
    # a caller asking for more certainty than the first test's own bound is given it
    _, strict = match_peaks(cat, peaks, accept_p=1e-300)
    assert strict is not None and strict.track.track_id == 3


def test_an_unsettled_query_gets_exactly_the_full_answer(catalog):
    """Where the exact gaps are not enough (here: a speed change, which the nominal speed's
    exact gaps miss), the answer is the full test's, field for field."""
    from earshot.matcher import match_peaks

    cat, songs = catalog
    x = query(songs[5], 8, 10 * 1.04)
    peaks = _peaks(resample(x, int(round(RATE * 1.04)), RATE))
    session, m = match_peaks(cat, peaks, accept_p=1e-3)
    _, full = match_peaks(cat, peaks, accept_p=1e-3, settle_p=0.0)
    assert session.params.query_hash.dt_tolerance > 0
    assert m == full and m is not None and m.track.track_id == 5


class _CountingCatalog:
    """A catalog whose lookups are counted (keys asked for), the rest passed through."""

    def __init__(self, cat):
        self._cat, self.keys = cat, 0

    def lookup_grouped(self, hashes):
        self.keys += len(hashes)
        return self._cat.lookup_grouped(hashes)

    def __getattr__(self, name):
        return getattr(self._cat, name)


@pytest.mark.parametrize("speed", [0.96, 1.03, 1.05])
def test_the_speed_screen_keeps_an_off_speed_song_and_its_answer(catalog, speed):
    """An off-speed song stands out on its most salient anchors, so the screened search
    looks its hypothesis up in full and gives the full search's answer, field for field."""
    from earshot.matcher import match_peaks

    cat, songs = catalog
    x = query(songs[2], 6, 10 * speed)
    peaks = _peaks(add_noise(resample(x, round(RATE * speed), RATE), 10.0, seed=3))
    _, full = match_peaks(cat, peaks, accept_p=1e-3, screen_every=1)
    for every in (4, 8):
        _, screened = match_peaks(cat, peaks, accept_p=1e-3, screen_every=every)
        assert screened is not None and screened.track.track_id == 2 and abs(screened.offset_s - 6) < 0.5
        assert screened == full


def test_the_speed_screen_samples_the_most_salient_anchors():
    """The screen's sample: the most salient 1/n of the peaks as anchors (the same at every
    speed), hashed alone: exactly their share of hashing every anchor."""
    from earshot.errors import EarshotError
    from earshot.fingerprint import DEFAULT_PARAMS, extract_peaks, hash_peaks, hash_picked_peaks
    from earshot.matcher import salient_peaks

    peaks = extract_peaks(add_noise(song(905, 12.0, 8000), 10, seed=4), DEFAULT_PARAMS.query_peaks)
    pick = salient_peaks(peaks, 8)
    assert len(pick) == round(len(peaks) / 8) and np.all(np.diff(pick) > 0)
    chosen = np.zeros(len(peaks), bool)
    chosen[pick] = True
    assert peaks["salience"][chosen].min() >= peaks["salience"][~chosen].max()
    qh = DEFAULT_PARAMS.query_hash
    for speed in (0.94, 1.0, 1.045):
        alone = [hash_peaks(peaks, qh, speed=speed, first=int(i), end=int(i) + 1) for i in pick]
        hashes, times = hash_picked_peaks(peaks, qh, pick, speed=speed)
        assert len(hashes) > 500
        assert np.array_equal(hashes, np.concatenate([h for h, _ in alone]))
        assert np.array_equal(times, np.concatenate([t for _, t in alone]))
    assert len(salient_peaks(peaks[:0], 8)) == 0 and len(salient_peaks(peaks[:3], 8)) == 1
    with pytest.raises(EarshotError, match="anchor"):
        hash_picked_peaks(peaks, qh, pick[::-1])


def test_the_speed_screen_spares_lookups_for_an_unknown_song(catalog):
    """A song the catalog does not know: no match either way, for far fewer lookups, and the
    p-value still counts every speed hypothesis."""
    from earshot.matcher import DEFAULT_SPEEDS, match_peaks

    cat, _ = catalog
    peaks = _peaks(song(903, 10.0, RATE))
    counted = {}
    for every in (1, 4, 8):
        c = _CountingCatalog(cat)
        session, m = match_peaks(c, peaks, accept_p=1e-3, screen_every=every)
        assert m is None or m.p_value > 1e-3
        assert all(session._hits[s].query_hashes > 0 for s in DEFAULT_SPEEDS)
        counted[every] = c.keys
    assert counted[8] < counted[4] < 0.8 * counted[1]   # (the speeds share many keys: a full search is not 8 lookups)


def test_a_short_query_screens_a_larger_share_of_its_anchors(catalog, monkeypatch):
    """The screen's sample is never less than SCREEN_MIN_S seconds' share of the anchors: a
    10 s query screens its most salient 8th, a 5 s one its 4th, a 2 s one is searched in full
    (the eighth of a short query is too little evidence to keep an off-speed song). Noisy
    queries: their peaks span nearly the whole query, as a room's do."""
    from earshot import matcher
    from earshot.matcher import DEFAULT_SPEEDS, SCREEN_MIN_S, match_peaks

    assert SCREEN_MIN_S == 1.2
    cat, _ = catalog
    shares = []
    real = matcher.salient_peaks
    monkeypatch.setattr(matcher, "salient_peaks", lambda peaks, share: shares.append(share) or real(peaks, share))
    for seconds in (10.0, 5.0, 2.0):
        session, m = match_peaks(cat, _peaks(add_noise(song(903, seconds, RATE), 10.0, seed=4)), accept_p=1e-3)
        assert m is None or m.p_value > 1e-3
        assert all(session._hits[s].query_hashes > 0 for s in DEFAULT_SPEEDS)
    assert shares == [8, 4]          # the 2 s query: no screen, every anchor of every speed
    shares.clear()
    match_peaks(cat, _peaks(add_noise(song(903, 5.0, RATE), 10.0, seed=4)), accept_p=1e-3, screen_min_s=0.0)
    assert shares == [8]


def test_evidence_unchanged_is_not_scored_again(catalog, monkeypatch):
    """A hypothesis asked again with the same evidence and the same question reuses its
    scoring (identify's last step re-reads the nominal speed's): the answer is the one a
    fresh scoring gives, corrected for the hypotheses tried by then; new evidence, another
    `since` or a replaced window is scored afresh."""
    from earshot import evidence
    from earshot.matcher import MatchSession

    cat, songs = catalog
    peaks = _peaks(add_noise(query(songs[1], 4, 10), 10.0, seed=5))
    calls = []
    real = evidence.Scorer.best_cell
    monkeypatch.setattr(evidence.Scorer, "best_cell",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    half = len(peaks) // 2
    watermark = int(np.floor(peaks["time"][half]))   # the first half's peaks are all before it
    assert peaks["time"][half - 1] < watermark
    session = MatchSession(cat)
    session.add_peaks(peaks[:half], watermark, speeds=(1.0,))
    first = session.best()
    assert len(calls) == 1 and session.best() == first and len(calls) == 1
    session.best(since_frame=100.0)
    session.best()
    assert len(calls) == 3                       # another question in between: scored again
    session.add_peaks(peaks[half:], None, speeds=(1.0,))
    grown = session.best()
    assert len(calls) == 4 and grown.score > first.score
    session.try_more_speeds()                    # eight more hypotheses: one more scoring each
    again = session.best()
    assert len(calls) == 4 + 8
    fresh = MatchSession(cat)                    # the same evidence, never asked before
    fresh.add_peaks(peaks, None)
    assert again == fresh.best() and again.p_value >= grown.p_value
