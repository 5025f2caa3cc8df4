"""The Publisher: what the service talks to. Events in, MQTT out, on a thread of its own.

`publish()` is called from the pipeline thread and never touches the network: a durable
event is written to the disk spool (synced) and the call returns; the MQTT thread sends it
and removes it once the broker has acknowledged it. A slow, absent or refusing broker
therefore costs the pipeline nothing but that one disk write per durable event (a few per
song), and never a ring-buffer overrun.

The MQTT thread connects in the background, reconnects with a doubling wait
(`reconnect_min_s` .. `reconnect_max_s`), and keeps `status_text()` current for systemd's
STATUS line.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..config import MqttSection
from ..errors import ConfigError
from ..events import EventBase, HealthEvent
from . import discovery
from .broker import resolve_password, tls_context
from .commands import CommandHandler, CommandRunner
from .connection import BrokerSettings, Connection, Outcome
from .outbox import Outbox
from .spool import MemorySpool, Spool, SpoolError, SpoolLike
from .topics import Topics

log = logging.getLogger("earshot.mqtt")


class Publisher:
    """Publishes earshot's events to one MQTT broker, with Home Assistant discovery."""

    def __init__(self, section: MqttSection, state_dir: Path, commands: CommandHandler | None = None,
                 *, device_name: str | None = None):
        if not section.enabled:
            raise ConfigError("[mqtt] host is not set: there is no broker to publish to")
        self._section = section
        self.topics = Topics.from_section(section)
        self._address = f"{section.host}:{section.effective_port}"
        device_name = device_name or f"earshot {section.device_id}"
        self._settings = BrokerSettings(
            section=section,
            topics=self.topics,
            password=resolve_password(section),
            tls=tls_context(section),
            discovery=discovery.entities(self.topics, device_name=device_name,
                                         sound_level_offset_db=section.sound_level_offset_db),
        )
        self._spool_note = ""
        spool: SpoolLike
        try:
            spool = Spool(Path(state_dir) / "spool", section.spool_max_events)
        except SpoolError as exc:  # MQTT must not stop the listener: keep events in memory
            log.error("%s; events wait in memory instead (lost if earshot stops)", exc)
            spool = MemorySpool(section.spool_max_events)
            self._spool_note = "; spool in memory only"
        self._spool = spool
        self._outbox = Outbox(spool, MemorySpool(section.spool_max_events))
        self._commands = CommandRunner(commands, self._outbox.add_reply)
        self._stopping = threading.Event()
        self._drain_until = 0.0
        self._thread: threading.Thread | None = None
        self._connected = False
        self._status = "not started"
        self._closed = False

    # --- the service's API -------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (returns at once); reconnects until `stop`."""
        if self._thread is not None:
            return
        self._status = f"connecting to broker {self._address}"
        self._thread = threading.Thread(target=self._run, name="earshot-mqtt", daemon=True)
        self._thread.start()

    def publish(self, event: EventBase) -> None:
        """Queue an event; never blocks on the network. A durable event (match, song report,
        now_playing) is on disk when this returns; periodic ones are sent only while
        connected. `health` gets the spool's depth filled in."""
        if self._closed:
            log.warning("%s event published after the MQTT publisher stopped: not sent",
                        getattr(event, "event", "an"))
            return
        if isinstance(event, HealthEvent):
            event = event.model_copy(update={"spool_depth": self.spool_depth,
                                             "spool_dropped": self._outbox.dropped})
        self._outbox.add(event)

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is spooled while `timeout` allows, publish `offline` (retained),
        disconnect. What could not be delivered stays spooled for the next start."""
        if self._closed:
            return
        # leave a second of the budget for `offline` and the disconnect
        self._drain_until = time.monotonic() + max(0.0, timeout - 1.0)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + 0.5)
        self._commands.close(timeout=0.5)
        self._closed = True
        if self._thread is None or not self._thread.is_alive():
            self._spool.close()
        self._status = "stopped"

    @property
    def spool_depth(self) -> int:
        """Events waiting for the broker's acknowledgement."""
        return self._outbox.depth

    @property
    def connected(self) -> bool:
        return self._connected

    def status_text(self) -> str:
        """A short line for systemd's STATUS: 'broker connected', 'broker unreachable, ...'."""
        depth = self.spool_depth
        waiting = f"; {depth} event{'s' if depth != 1 else ''} spooled" if depth else ""
        return self._status + waiting + self._spool_note

    # --- the MQTT thread ---------------------------------------------------------------

    def _set_ready(self, ready: bool) -> None:
        was, self._connected = self._connected, ready
        self._outbox.set_connected(ready)
        if not ready:
            if was:
                self._status = "broker connection lost, reconnecting"
        else:
            self._status = "broker connected"
            log.info("connected to the MQTT broker %s as %s (topics under %s/)", self._address,
                     self._section.effective_client_id, self.topics.base)

    def _run(self) -> None:
        section = self._section
        delay = section.reconnect_min_s
        last_reason = None
        while not self._stopping.is_set():
            connection = Connection(self._settings, self._outbox, self._commands, self._set_ready)
            try:
                outcome = connection.run(self._stopping, lambda: self._drain_until)
            except Exception as exc:
                log.exception("MQTT connection failed unexpectedly")
                outcome = Outcome(False, f"internal error: {type(exc).__name__}")
            if outcome.stopped or self._stopping.is_set():
                break
            if outcome.established:
                delay = section.reconnect_min_s
                log.warning("MQTT broker %s: %s; %d events spooled, reconnecting",
                            self._address, outcome.reason, self.spool_depth)
                last_reason = None
                self._status = f"broker {outcome.reason}, reconnecting"
            else:
                level = logging.WARNING if outcome.reason != last_reason else logging.DEBUG
                if outcome.refused:
                    log.log(level, "MQTT broker %s refused the login: %s (check [mqtt] username and "
                            "password); retrying in %.1f s", self._address, outcome.reason, delay)
                else:
                    log.log(level, "MQTT broker %s unreachable: %s; retrying in %.1f s",
                            self._address, outcome.reason, delay)
                last_reason = outcome.reason
                what = "broker refused the login" if outcome.refused else "broker unreachable"
                self._status = f"{what} ({outcome.reason}), retrying"
            if self._stopping.wait(delay if not outcome.established else 0.0):
                break
            if not outcome.established:
                delay = min(delay * 2, section.reconnect_max_s)
