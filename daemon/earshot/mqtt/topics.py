"""Topic names: pure functions of the [mqtt] section, so tests and `mqtt purge` agree with
the publisher on every name.

Everything earshot publishes lives under `<base_topic>/<device_id>/`; Home Assistant's
discovery configs under `<discovery_prefix>/<component>/<node_id>/<object_id>/config`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import MqttSection

# event kind (EventBase.event) -> topic leaf under the device's base
EVENT_TOPICS = {
    "match": "match",
    "now_playing": "now_playing",
    "loudness": "loudness",
    "song_report": "report",
    "health": "health",
}


@dataclass(frozen=True)
class Topics:
    """Every topic of one device."""

    base_topic: str
    device_id: str
    discovery_prefix: str

    @classmethod
    def from_section(cls, section: MqttSection, device_id: str | None = None) -> Topics:
        return cls(section.base_topic, device_id or section.device_id, section.discovery_prefix)

    @property
    def base(self) -> str:
        return f"{self.base_topic}/{self.device_id}"

    @property
    def status(self) -> str:
        """`online` / `offline`, retained; the last will."""
        return f"{self.base}/status"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/result"

    def for_event(self, kind: str) -> str:
        """The topic an event of this kind (`match`, `song_report`, ...) is published on."""
        return f"{self.base}/{EVENT_TOPICS[kind]}"

    @property
    def now_playing(self) -> str:
        return self.for_event("now_playing")

    @property
    def ha_status(self) -> str:
        """Where Home Assistant announces itself (`online` after it starts)."""
        return f"{self.discovery_prefix}/status"

    @property
    def node_id(self) -> str:
        """The discovery topic's node id: one per earshot device."""
        return f"earshot_{self.device_id}"

    def discovery(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{object_id}/config"

    @property
    def discovery_wildcard(self) -> str:
        """Matches every discovery config of this device (used by `earshot mqtt purge`)."""
        return f"{self.discovery_prefix}/+/{self.node_id}/+/config"

    @property
    def retained_state(self) -> tuple[str, ...]:
        """The device's own retained topics (besides discovery)."""
        return (self.status, self.now_playing)
