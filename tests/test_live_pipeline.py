"""The live pipeline on a stream: announce once, track the position, notice a song change,
someone talking over a song, the silence after, and tracks added while it runs."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from earshot.audio.decode import Audio
from earshot.catalog import Catalog
from earshot.config import ListenSection
from earshot.ingest import ingest_audio
from earshot.pipeline import Pipeline
from music import add_noise, song

RATE = 48000
HOP = RATE // 4


@pytest.fixture(scope="module")
def catalog(live_catalog):
    return live_catalog


def run(pipeline, x):
    """Feed a mono stream hop by hop; events with the audio time they happened at."""
    out = []
    for i in range(0, len(x), HOP):
        for e in pipeline.process(x[i:i + HOP, None]):
            out.append((pipeline.stats.audio_s, e))
    for e in pipeline.flush():
        out.append((pipeline.stats.audio_s, e))
    return out


def kinds(events, kind):
    return [(t, e) for t, e in events if e.event == kind]


def silence(seconds):
    return np.zeros(int(seconds * RATE), np.float32)


def test_songs_change_then_silence(catalog):
    _, cat, songs = catalog
    a, b = songs[1][10 * RATE:30 * RATE], songs[2][5 * RATE:25 * RATE]
    unknown = song(999, 15.0, RATE)
    stream = np.concatenate([silence(2), a, b, unknown, silence(8)])
    stream = add_noise(stream, 10.0, seed=3)
    events = run(Pipeline(cat, RATE, 1), stream)

    matches = kinds(events, "match")
    assert [e.track_id for _, e in matches] == [1, 2], [e.title for _, e in matches]
    (t1, m1), (t2, m2) = matches
    assert 2.0 < t1 <= 2.0 + 6.0 and 22.0 < t2 <= 22.0 + 6.0      # announced within seconds
    assert abs(m1.offset_s - (10.0 + t1 - 2.0)) < 0.3               # position in the song, now
    assert abs(m2.offset_s - (5.0 + t2 - 22.0)) < 0.3
    assert 0 <= m1.latency_s <= t1 - 2.0 + 0.5
    assert m1.confidence >= ListenSection().min_confidence

    states = [(t, e.state, e.reason) for t, e in kinds(events, "now_playing")]
    ended = [(t, r) for t, s, r in states if s == "ended"]
    assert len(ended) == 2
    assert 22.0 < ended[0][0] < 32.0                                 # the first song gave way
    # into an unknown song: lost_after_s (10 s) after the last hits that stood out over the window
    assert 42.0 < ended[1][0] <= 42.0 + 15.0 and ended[1][1] in ("no longer heard", "music stopped")
    assert states[-1][1] == "idle"

    reports = kinds(events, "song_report")
    assert [e.track.track_id for _, e in reports] == [1, 2]
    for _, r in reports:
        assert 14.0 <= r.duration_heard_s <= 23.0     # 20 s played; a stray hit in its cell may follow
        assert r.integrated_lufs is not None and -40 < r.integrated_lufs < 0
        assert r.true_peak_dbtp is not None and len(r.bands) == 6


def test_talking_over_a_song_keeps_it_playing(catalog):
    _, cat, songs = catalog
    x = songs[3][:40 * RATE].copy()
    rng = np.random.default_rng(5)
    talk = slice(15 * RATE, 20 * RATE)      # 5 s of loud babble over the music
    babble = rng.standard_normal(talk.stop - talk.start).astype(np.float32)
    envelope = (np.abs(np.sin(np.linspace(0, 40, len(babble)))) > 0.3).astype(np.float32)
    x[talk] = 0.2 * x[talk] + 0.8 * babble * envelope / np.abs(babble).max()
    events = run(Pipeline(cat, RATE, 1), x)
    assert [e.track_id for _, e in kinds(events, "match")] == [3]
    ended = [(t, e.reason) for t, e in kinds(events, "now_playing") if e.state == "ended"]
    assert ended == [(40.0, "end of input")]


def test_silence_ends_a_song_quickly(catalog):
    _, cat, songs = catalog
    x = np.concatenate([songs[4][:20 * RATE], silence(10)])
    events = run(Pipeline(cat, RATE, 1), x)
    ended = [(t, e.reason) for t, e in kinds(events, "now_playing") if e.state == "ended"]
    assert len(ended) == 1 and ended[0][1] == "music stopped" and 20.0 < ended[0][0] <= 20.0 + 5.0


def test_nothing_is_announced_for_unknown_music_noise_or_silence(catalog):
    _, cat, _ = catalog
    rng = np.random.default_rng(8)
    x = np.concatenate([song(1234, 30.0, RATE), silence(5),
                        (0.3 * rng.standard_normal(10 * RATE)).astype(np.float32), song(4321, 30.0, RATE)])
    events = run(Pipeline(cat, RATE, 1), x)
    assert kinds(events, "match") == []


def test_evidence_memory_stays_bounded(catalog):
    _, cat, songs = catalog
    p = Pipeline(cat, RATE, 1)
    x = songs[5]
    sizes, stored = [], []
    for loop in range(4):   # four minutes of the same song over and over
        run_part = [p.process(x[i:i + HOP, None]) for i in range(0, len(x), HOP)]
        del run_part
        sizes.append(sum(len(h) for h in p.session._hits.values()))
        stored.append(sum(h.nbytes for h in p.session._hits.values()))
        assert len(p.session._chunks) <= 2
    assert max(sizes) < 3 * min(sizes) + 1000   # a window's worth, not a growing history
    assert max(stored) <= 3 * 12 * max(sizes) + 9 * 3 * 12 * 4096   # buffers: 12 B a hit, bounded slack


def test_tracks_added_while_listening_are_recognised(catalog, tmp_path):
    path, _, _ = catalog
    newcomer = song(777, 40.0, RATE)
    wav = tmp_path / "newcomer.wav"
    sf.write(wav, newcomer, RATE)
    # a private copy of the catalog, so the module's fixture stays as it was
    private = tmp_path / "catalog"
    subprocess.run(["cp", "-r", str(path), str(private)], check=True)
    with Catalog.open(private, readonly=True) as cat:
        p = Pipeline(cat, RATE, 1)
        assert kinds(run_stream(p, newcomer[:15 * RATE]), "match") == []
        # another process adds the song while this one listens
        subprocess.run([sys.executable, "-m", "earshot", "ingest", "--catalog", str(private), str(wav)],
                       check=True, capture_output=True)
        matches = kinds(run_stream(p, newcomer[15 * RATE:]), "match")
        assert [e.title for _, e in matches] == ["newcomer"]


def run_stream(pipeline, x):
    out = []
    for i in range(0, len(x), HOP):
        out += [(pipeline.stats.audio_s, e) for e in pipeline.process(x[i:i + HOP, None])]
    return out


def test_a_shared_intro_names_no_track_until_what_follows_does(tmp_path):
    """Two catalog tracks open with the same 8 s (an album's shared intro). An unknown song
    with that intro is named after neither (the matcher's null sees the twin cell in the
    other track, so neither is sure); a catalog track with it is named, rightly, once its own
    music follows."""
    intro = song(55, 8.0, RATE)
    body_a, body_b, body_u = song(56, 40.0, RATE), song(57, 40.0, RATE), song(58, 30.0, RATE)
    with Catalog.open(tmp_path / "catalog", create=True) as cat:
        for name, body in (("Intro A", body_a), ("Intro B", body_b)):
            ingest_audio(cat, Audio(np.concatenate([intro, body])[:, None], RATE), {"title": name}, f"/m/{name}.wav")
        for i in range(8):      # other music, so the matcher's null is learnt from more than two tracks
            ingest_audio(cat, Audio(song(60 + i, 40.0, RATE)[:, None], RATE), {"title": f"Other {i}"}, f"/m/o{i}.wav")
    with Catalog.open(tmp_path / "catalog", readonly=True) as cat:
        unknown = np.concatenate([silence(2), intro, body_u, silence(6)])
        events = run(Pipeline(cat, RATE, 1), add_noise(unknown, 15.0, seed=4))
        assert kinds(events, "match") == [], [e.title for _, e in kinds(events, "match")]
        known = np.concatenate([silence(2), intro, body_b[:25 * RATE]])
        events = run(Pipeline(cat, RATE, 1), add_noise(known, 15.0, seed=5))
        matches = kinds(events, "match")
        assert [e.title for _, e in matches] == ["Intro B"]
        assert matches[0][0] > 2.0 + 8.0                     # named from its own music
        assert abs(matches[0][1].offset_s - (matches[0][0] - 2.0)) < 0.3


def test_rarity_weights_are_the_listen_setting_and_name_no_unknown_music(catalog):
    """Weighted live evidence (the default): the weights reach the session's hits; unknown
    music, noise and silence still announce nothing, and a known song is still named; 0
    turns them off."""
    _, cat, songs = catalog
    assert ListenSection().rarity_weight == 16
    off = Pipeline(cat, RATE, 1, listen=ListenSection(rarity_weight=0))
    off.process(songs[2][:3 * RATE, None], evaluate=False)
    assert off.session._hits[1.0].weights().max() == 1
    listen = ListenSection()
    rng = np.random.default_rng(8)
    x = np.concatenate([song(1234, 30.0, RATE), silence(5),
                        (0.3 * rng.standard_normal(10 * RATE)).astype(np.float32), song(4321, 30.0, RATE)])
    assert kinds(run(Pipeline(cat, RATE, 1, listen=listen), x), "match") == []
    pipe = Pipeline(cat, RATE, 1, listen=listen)
    found = [e.track_id for _, e in kinds(run(pipe, songs[2][:20 * RATE]), "match")]
    assert found[:1] == [2]
    assert pipe.session._hits[1.0].weights().max() > 1


def test_live_time_tolerance_is_the_listen_setting(catalog):
    _, cat, _ = catalog

    def tolerances(**listen):
        session = Pipeline(cat, RATE, 1, listen=ListenSection(**listen)).session
        return {s: session.query_hash_params(s).dt_tolerance for s in (1.0, 0.97, 1.03)}

    # off by default; when on, only the nominal-speed hypothesis takes it ('all': every one)
    assert tolerances(time_tolerance=1) == {1.0: 1.0, 0.97: 0.0, 1.03: 0.0}
    assert tolerances() == tolerances(time_tolerance=0) == {1.0: 0.0, 0.97: 0.0, 1.03: 0.0}
    assert tolerances(time_tolerance=1, time_tolerance_speeds="all") == {1.0: 1.0, 0.97: 1.0, 1.03: 1.0}
    assert cat.params.query_hash.dt_tolerance == 1.0      # identify's queries keep theirs


def test_nominal_time_tolerance_finds_more_of_a_smeared_song_at_nominal_speed_only(catalog):
    """A room's reverberation moves peaks by a frame: the tolerant nominal hypothesis
    collects more of the true song's hits than the exact one, and an off-speed hypothesis,
    which was not given the tolerance, hashes exactly as before."""
    _, cat, songs = catalog
    track_id, x = next(iter(songs.items()))
    excerpt = x[20 * RATE:32 * RATE]
    rng = np.random.default_rng(3)
    tail = rng.standard_normal(int(0.6 * RATE)) * np.exp(-np.arange(int(0.6 * RATE)) / (0.08 * RATE))
    wet = np.convolve(excerpt, tail)[:len(excerpt)]
    room = add_noise((0.5 * excerpt + 0.5 * wet / np.max(np.abs(wet))).astype(np.float32), 10.0, seed=8)
    offset = 20.0 / cat.params.frame_seconds          # the excerpt's place in the song, frames
    in_cell, off_speed = {}, {}
    for tol in (0, 1):
        pipe = Pipeline(cat, RATE, 1, listen=ListenSection(time_tolerance=tol))
        for i in range(0, len(room), HOP):
            pipe.process(room[i:i + HOP, None], evaluate=False)
        track, t_ref, t_q = pipe.session.hits(1.0)
        in_cell[tol] = int(np.sum((track == track_id) & (np.abs(t_ref - t_q - offset) <= 2)))
        off_speed[tol] = [a.tolist() for a in pipe.session.hits(0.97)]
    assert in_cell[1] > in_cell[0] > 0, in_cell
    assert off_speed[1] == off_speed[0]
