"""One connection to the broker, from CONNECT to its end: a fresh paho client each time.

Everything touching the client happens on the publisher's one thread: paho's callbacks run
inside `client.loop()`, and the pump runs between loops. So the order on the wire is simply
the order the pump hands messages over.

Why a fresh client per connection: paho keeps unacknowledged QoS 1 messages and resends
them after a reconnect, *after* whatever `on_connect` publishes; with the spool as the one
place unacknowledged events live, a new client starts empty and the pump resends from the
oldest unacknowledged spool entry, in order. A message whose acknowledgement was lost is
sent again with the same event id (a duplicate, never a loss).

On connect (and when Home Assistant announces `online`): `status` = online (retained),
the discovery configs (retained), the current now_playing (retained).
"""
from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from ..config import MqttSection
from .commands import CommandRunner, reply
from .discovery import Entity, withdrawn
from .outbox import Outbox
from .topics import Topics

log = logging.getLogger("earshot.mqtt")

WINDOW = 16              # spooled events in flight at once
LOOP_TIMEOUT_S = 0.1     # the longest a new event waits for the MQTT thread
CONNECT_TIMEOUT_S = 10.0  # TCP + TLS handshake, then again for the broker's CONNACK
STATUS_ONLINE, STATUS_OFFLINE = "online", "offline"


@dataclass(frozen=True)
class Outcome:
    """How a connection ended."""

    established: bool      # the broker accepted us (CONNACK success)
    reason: str            # in words, for the log and the status line
    refused: bool = False  # the broker answered but refused the login
    stopped: bool = False  # ended by Publisher.stop()


@dataclass(frozen=True)
class BrokerSettings:
    """Everything needed to open a connection (resolved once by the Publisher)."""

    section: MqttSection
    topics: Topics
    password: str | None
    tls: Any  # ssl.SSLContext | None
    discovery: list[Entity]


class Connection:
    """One session with the broker."""

    def __init__(self, settings: BrokerSettings, outbox: Outbox, commands: CommandRunner,
                 on_ready: Callable[[bool], None]):
        self.settings = settings
        self.topics = settings.topics
        self.outbox = outbox
        self.commands = commands
        self.on_ready = on_ready
        self._ready = False
        self._ready_seen = False  # the broker accepted us at some point of this connection
        self._refused: str | None = None
        self._inflight: dict[int, tuple[int, int]] = {}   # mid -> (spool index, seq)
        self._cursor = [0, 0]                               # last seq handed over, per spool
        self._acks: list[tuple[int, Any]] = []              # (mid, reason code) from on_publish
        self._announce_again = False
        self._lost_reason = "connection lost"

    # --- the client --------------------------------------------------------------------

    def _client(self) -> mqtt.Client:
        section = self.settings.section
        v5 = section.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=section.effective_client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.max_inflight_messages_set(0)  # our WINDOW bounds it; 0 = paho never queues
        client.will_set(self.topics.status, STATUS_OFFLINE, qos=1, retain=True)
        if section.username is not None:
            client.username_pw_set(section.username, self.settings.password)
        if self.settings.tls is not None:
            client.tls_set_context(self.settings.tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def run(self, stopping: threading.Event, drain_until: Callable[[], float]) -> Outcome:
        """Connect, serve until the connection ends or a stop has drained; never raises."""
        section = self.settings.section
        client = self._client()
        try:
            client.connect(section.host or "", section.effective_port, section.keepalive_s)
        except (OSError, ValueError) as exc:  # refused, unreachable, DNS, TLS (ssl errors are OSErrors)
            return Outcome(False, _describe_error(exc))
        try:
            return self._serve(client, stopping, drain_until)
        finally:
            self._ready = False
            self.on_ready(False)
            for name in ("on_connect", "on_disconnect", "on_publish", "on_message"):
                setattr(client, name, None)  # break the cycle: the client (and its sockets) go now
            sock = client.socket()
            if sock is not None:
                sock.close()

    def _serve(self, client: mqtt.Client, stopping: threading.Event,
               drain_until: Callable[[], float]) -> Outcome:
        started = time.monotonic()
        while True:
            rc = client.loop(timeout=LOOP_TIMEOUT_S)
            if self._refused is not None:
                return Outcome(False, self._refused, refused=True)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return Outcome(self._ready_seen, self._lost_reason if self._ready_seen
                               else f"connection closed before the broker answered ({mqtt.error_string(rc)})")
            self._settle_acks()
            if not self._ready:
                if stopping.is_set():
                    return Outcome(False, "stopped", stopped=True)
                if time.monotonic() - started > CONNECT_TIMEOUT_S:
                    return Outcome(False, "the broker did not answer the connection request")
                continue
            if stopping.is_set():
                self._finish(client, drain_until())
                return Outcome(True, "stopped", stopped=True)
            self._pump(client)

    # --- callbacks (run inside client.loop, on this thread) ------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        self._ready = self._ready_seen = True
        client.subscribe([(self.topics.cmd, 1), (self.topics.ha_status, 0)])
        self._announce(client)
        self.on_ready(True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        by_server = getattr(flags, "is_disconnect_packet_from_server", False)
        self._lost_reason = f"closed the connection ({reason})" if by_server else "connection lost"
        self._ready = False

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._acks.append((mid, reason))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.cmd:
            if msg.retain:  # a retained command would run again at every reconnect
                log.warning("ignored a retained MQTT command on %s", msg.topic)
                self.outbox.add_reply(reply(None, None, error="retained commands are ignored: "
                                            "publish commands without the retain flag"))
                return
            self.commands.submit(bytes(msg.payload))
        elif msg.topic == self.topics.ha_status and msg.payload.strip() == b"online":
            log.info("Home Assistant announced itself: sending discovery and state again")
            self._announce_again = True

    # --- what is sent --------------------------------------------------------------------

    def _announce(self, client: mqtt.Client, *, periodic: bool = False) -> None:
        """Availability, discovery configs and the current state (all retained but periodic)."""
        client.publish(self.topics.status, STATUS_ONLINE, qos=1, retain=True)
        if self.settings.section.discovery:
            for entity in self.settings.discovery:
                topic = self.topics.discovery(entity.component, entity.object_id)
                client.publish(topic, _json(entity.config), qos=1, retain=True)
            for topic in withdrawn(self.topics, self.settings.discovery):
                client.publish(topic, b"", qos=1, retain=True)
        state = self.outbox.now_playing_state()
        if state is not None:
            client.publish(self.topics.now_playing, state, qos=1, retain=True)
        if periodic:
            for kind in ("health", "loudness"):
                latest = self.outbox.latest(kind)
                if latest is not None:
                    client.publish(self.topics.for_event(kind), latest, qos=0)

    def _pump(self, client: mqtt.Client) -> None:
        """Hand over what is waiting: replies, periodic events, then spooled events in order."""
        for payload in self.outbox.take_replies():
            client.publish(self.topics.cmd_result, payload, qos=1)
        if self._announce_again:
            self._announce_again = False
            self._announce(client, periodic=True)
        for kind, payload in self.outbox.take_live():
            client.publish(self.topics.for_event(kind), payload, qos=0)
        qos = self.settings.section.qos
        for index, spool in enumerate(self.outbox.spools):
            room = WINDOW - len(self._inflight)
            if room <= 0:
                return
            if spool.depth == 0:
                continue
            for entry in spool.read_after(self._cursor[index], room):
                info = client.publish(self.topics.for_event(entry.kind), entry.payload, qos=qos,
                                      retain=entry.kind == "now_playing")
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return  # connection gone: these stay spooled for the next connection
                self._inflight[info.mid] = (index, entry.seq)
                self._cursor[index] = entry.seq

    def _settle_acks(self) -> None:
        acks, self._acks = self._acks, []
        done = []
        for mid, reason in acks:
            where = self._inflight.pop(mid, None)
            if where is None:
                continue  # not a spooled event (status, discovery, a reply)
            if reason is not None and getattr(reason, "is_failure", False):
                # MQTT 5 brokers may refuse a message (e.g. not authorised for the topic):
                # retrying would block every later event, so it is dropped, loudly
                log.error("the broker refused a spooled event (%s): dropped", reason)
            done.append(where)
        if done:
            self.outbox.acknowledged(done)

    def _finish(self, client: mqtt.Client, drain_until: float) -> None:
        """Clean stop: deliver what is spooled while time allows, say `offline`, disconnect
        (a clean disconnect suppresses the will, hence the explicit `offline`)."""
        while time.monotonic() < drain_until and self._ready and (self.outbox.depth or self._inflight):
            self._pump(client)
            if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            self._settle_acks()
        info = client.publish(self.topics.status, STATUS_OFFLINE, qos=1, retain=True)
        until = time.monotonic() + 1.0
        while not info.is_published() and time.monotonic() < until:
            if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
        self._settle_acks()
        client.disconnect()
        client.loop(timeout=0.05)


def _json(config: dict[str, Any]) -> bytes:
    return json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode()


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
