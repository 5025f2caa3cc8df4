"""What the live listener tells the world: one pydantic model per kind of event.

Every event carries `event` (its kind), a unique `id`, `ts` (when it happened, ISO 8601
UTC) and `schema` (the payload version). `earshot run` writes them as JSON lines; the MQTT
publisher carries the same objects. Events that matter (match, now_playing, song_report)
are worth spooling; periodic loudness and health are not (they would be stale).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1

PlayState = Literal["idle", "candidate", "playing", "ended"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_event_id() -> str:
    return uuid.uuid4().hex


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=new_event_id, description="unique per event; QoS 1 retries repeat it")
    ts: datetime = Field(default_factory=utc_now, description="when it happened (UTC)")
    schema_: int = Field(SCHEMA_VERSION, alias="schema", serialization_alias="schema")

    #: whether this kind of event must survive a broker outage (spooled) or is stale later
    durable: ClassVar[bool] = False

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class TrackInfo(BaseModel):
    """The catalog track, as `earshot identify --json` names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    track_id: int
    title: str
    artist: str | None = None
    album: str | None = None
    source: str | None = None


class MatchEvent(EventBase):
    """A song recognised: identify's match fields, plus when the song was heard to start."""

    event: Literal["match"] = "match"
    durable: ClassVar[bool] = True
    track_id: int
    title: str
    artist: str | None = None
    album: str | None = None
    source: str | None = None
    offset_s: float = Field(description="position in the track at `ts`")
    confidence: float
    speed: float = 1.0
    started_at: datetime = Field(description="when the song (as heard) reached `offset_s` minus the time listened")
    latency_s: float = Field(description="seconds of audio listened before the announcement")


class NowPlayingEvent(EventBase):
    """A state change of the now-playing machine (idle → candidate → playing → ended)."""

    event: Literal["now_playing"] = "now_playing"
    durable: ClassVar[bool] = True
    state: PlayState
    previous: PlayState | None = None
    track: TrackInfo | None = None
    position_s: float | None = None
    confidence: float | None = None
    since: datetime | None = Field(None, description="when the current state began")
    reason: str | None = Field(None, description="why the state changed, in words")


class BandLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    low_hz: float
    high_hz: float
    level_db: float | None


class LoudnessEvent(EventBase):
    """Periodic loudness of the room (capture rate, BS.1770 / R128)."""

    event: Literal["loudness"] = "loudness"
    momentary_lufs: float | None
    short_term_lufs: float | None
    integrated_lufs: float | None = Field(description="over the rolling window")
    loudness_range_lu: float | None
    true_peak_dbtp: float | None = Field(description="over the rolling window")
    window_s: float = Field(description="the rolling window's length (or less, since start)")
    bands: list[BandLevel]


class SongReportEvent(EventBase):
    """The loudness of one song while it played in the room."""

    event: Literal["song_report"] = "song_report"
    durable: ClassVar[bool] = True
    track: TrackInfo
    started_at: datetime
    ended_at: datetime
    duration_heard_s: float
    integrated_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None
    bands: list[BandLevel]


class HealthEvent(EventBase):
    """How the listener is doing."""

    event: Literal["health"] = "health"
    device: str | None = Field(description="the input being listened to")
    device_state: Literal["ok", "lost", "paused", "ended"]
    sample_rate: int | None
    overruns: int = Field(description="ring-buffer overruns since start (frames dropped)")
    dropped_frames: int
    cpu_percent: float = Field(description="process CPU over the last interval, % of one core")
    audio_s: float = Field(description="seconds of audio processed since start")
    catalog_tracks: int
    uptime_s: float
    device_errors: int = Field(0, description="times the device was lost since start")
    last_error: str | None = None
    spool_depth: int | None = Field(None, description="events waiting for the broker (MQTT only)")
    spool_dropped: int | None = Field(None, description="events dropped since start because the spool "
                                      "was full (MQTT only)")


Event = Annotated[
    Union[MatchEvent, NowPlayingEvent, LoudnessEvent, SongReportEvent, HealthEvent],
    Field(discriminator="event"),
]
EVENT_ADAPTER: TypeAdapter = TypeAdapter(Event)


def parse_event(data: str | bytes | dict) -> EventBase:
    """An event back from its JSON (e.g. from the spool)."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)
