"""When is a candidate announced without fresh evidence? Only when the window's own evidence
is overwhelming (p ≤ `sure_p`); a candidate merely likely must wait for the audio heard after
it was raised to put its best cell on its place, and lapses when that never comes. The state
machine is driven by a session whose evidence the test sets: the same track at the same place
at every evaluation, and nothing in the audio heard since the candidate was raised."""
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from earshot.catalog import Track
from earshot.matcher import Match
from earshot.nowplaying import NowPlaying, NowPlayingParams

FRAME_S = 0.016
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRACK = Track(track_id=7, title="Song", artist=None, album=None, duration_s=240.0,
              source="/music/song.ogg", digest="d", hashes=20000, added=0.0)


@dataclass
class SameEvidence:
    """A window whose best cell is always TRACK 30 s in (at stream time 0) at `p`; the audio
    since frame `fresh_from` holds nothing."""

    p: float
    fresh_from: float = 1.0
    speeds: tuple[float, ...] = (1.0,)

    def best(self, since_frame=None, mute=None, speeds=None, max_p=None):
        if since_frame is not None and since_frame >= self.fresh_from:
            return None
        if max_p is not None and self.p > max_p:
            return None
        return Match(track=TRACK, offset_s=30.0, confidence=1.0 - self.p, score=20, speed=1.0,
                     p_value=self.p)

    def first_heard(self, track_id, offset_frames, speed, tolerance_frames=4.0):
        return 0.0

    def support(self, track_id, offset_frames, speed, since_frame=None, tolerance_frames=4.0):
        return 0, None, 0

    def track_support(self, track_id, offset_frames, speed, since_frame=None, tolerance_frames=4.0):
        return 0, 0


def run(p: float, seconds: float = 12.0) -> list[tuple[float, str, str]]:
    machine = NowPlaying(frame_s=FRAME_S, stamp=lambda t: T0 + timedelta(seconds=t))
    session = SameEvidence(p)
    out = []
    t = 0.5
    while t <= seconds:
        # a candidate raised at t is fresh from t on: nothing has been heard since
        for e in machine.update(t, session, quiet=False):
            out.append((t, e.event, getattr(e, "state", "")))
        if machine.song is not None:
            session.fresh_from = machine.song.since_s / FRAME_S
        t += 0.5
    return out


def test_the_default_sure_p_is_far_stricter_than_a_candidates():
    assert NowPlayingParams().sure_p == pytest.approx(1e-6)
    assert NowPlayingParams().sure_p < NowPlayingParams().max_p


def test_an_overwhelming_candidate_is_announced_at_the_next_evaluation():
    events = run(p=3e-7)
    assert events[0] == (0.5, "now_playing", "candidate")
    assert (1.0, "match", "") in events
    assert (1.0, "now_playing", "playing") in events


@pytest.mark.parametrize("p", [5e-6, 5e-5])
def test_a_likely_candidate_needs_fresh_evidence_and_lapses_without_it(p):
    events = run(p=p)
    assert events[0] == (0.5, "now_playing", "candidate")
    assert not any(kind == "match" for _, kind, _ in events)
    lapsed = [t for t, kind, state in events if state == "idle"]
    assert lapsed and lapsed[0] > NowPlayingParams().candidate_timeout_s
