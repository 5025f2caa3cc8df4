"""When is a playing song still "heard"? With time-tolerant hashes its recent hits at its own
offset must beat the track's own coincidence rate, not merely reach a count: a noisy room
goes on meeting a track's hashes after the music stops, a few hits every few seconds in any
cell of a track with many postings. With exact gaps (the live default) the count suffices:
the same test there ended songs still playing in noisy rooms. The state machine is driven
here by a session whose evidence the test sets, so the rule is tested on its own; the
pipeline tests drive it with real audio."""
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from earshot.catalog import Track
from earshot.matcher import Match
from earshot.nowplaying import NowPlaying, NowPlayingParams, _Song

FRAME_S = 0.016
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Evidence:
    """What a MatchSession would say about the playing song's offset: `in_cell` hits there in
    any span asked about (the latest half a second ago), of `of_track` hits of the track."""

    in_cell: int
    of_track: int
    now_s: float = 0.0
    speeds: tuple[float, ...] = (1.0,)

    def support(self, track_id, offset_frames, speed, since_frame=None, tolerance_frames=4.0):
        return self.in_cell, ((self.now_s - 0.5) / FRAME_S if self.in_cell else None), self.of_track

    def track_support(self, track_id, offset_frames, speed, since_frame=None, tolerance_frames=4.0):
        return self.in_cell, self.of_track

    def best(self, since_frame=None, mute=None, speeds=None, max_p=None):
        return None          # no other song


def playing(now_s: float, params: NowPlayingParams | None = None) -> NowPlaying:
    track = Track(track_id=7, title="Song", artist=None, album=None, duration_s=240.0,
                  source="/music/song.ogg", digest="d", hashes=20000, added=0.0)
    m = Match(track=track, offset_s=30.0, confidence=1.0, score=50, speed=1.0, p_value=1e-12)
    np_ = NowPlaying(frame_s=FRAME_S, stamp=lambda t: T0 + timedelta(seconds=t), params=params or NowPlayingParams())
    np_.state, np_.state_since_s = "playing", now_s
    np_.song = _Song(m, m.offset_s / FRAME_S, first_heard_s=0.0, last_heard_s=now_s, since_s=0.0,
                    clearly_heard_s=now_s)
    return np_


def states(evidence: Evidence, start_s: float = 60.0, seconds: float = 20.0,
           params: NowPlayingParams | None = None) -> list[tuple[float, str]]:
    machine = playing(start_s, params)
    out = []
    t = start_s
    while t < start_s + seconds:
        t += 0.5
        evidence.now_s = t
        for e in machine.update(t, evidence, quiet=False):
            if e.event == "now_playing":
                out.append((t, e.state))
    return out


def test_a_few_hits_of_a_track_with_many_elsewhere_do_not_keep_it_playing():
    # 4 hits in the cell, but the track has 3000 more over its 4 minutes in the same span:
    # about 4 in any cell of 2 x 0.25 s by chance
    ended = states(Evidence(in_cell=4, of_track=3000))
    assert ended and ended[0][1] == "ended"
    assert 60.0 + NowPlayingParams().lost_after_s <= ended[0][0] <= 60.0 + NowPlayingParams().lost_after_s + 0.5


def test_the_same_hits_against_a_quiet_background_keep_it_playing():
    assert states(Evidence(in_cell=4, of_track=40)) == []


def test_a_song_heard_clearly_keeps_playing_in_a_busy_room():
    # many hits at the offset stand out however many the track has elsewhere
    assert states(Evidence(in_cell=40, of_track=3000)) == []


def test_nothing_at_the_offset_ends_the_song_after_lost_after_s():
    ended = states(Evidence(in_cell=0, of_track=3000))
    assert [s for _, s in ended][:1] == ["ended"]


def test_with_exact_gaps_a_few_recent_hits_keep_it_playing():
    # the first test's evidence, without the recent background test
    assert states(Evidence(in_cell=4, of_track=3000), params=NowPlayingParams(recent_beyond_chance=False)) == []
    # fewer than min_support recent hits, sparse against the background: it ends all the same
    ended = states(Evidence(in_cell=2, of_track=3000), params=NowPlayingParams(recent_beyond_chance=False))
    assert [s for _, s in ended][:1] == ["ended"]


def test_the_pipeline_takes_the_recent_test_with_the_time_tolerance(tmp_path):
    from earshot.catalog import Catalog
    from earshot.config import ListenSection
    from earshot.pipeline import Pipeline

    with Catalog.open(tmp_path / "cat", create=True) as cat:
        def recent_test(**listen):
            return Pipeline(cat, 48000, 1, listen=ListenSection(**listen)).nowplaying.params.recent_beyond_chance

        assert recent_test() is False and recent_test(time_tolerance=0) is False
        assert recent_test(time_tolerance=1) is True
