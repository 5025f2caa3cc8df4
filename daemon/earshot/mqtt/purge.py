"""`earshot mqtt purge`: remove a device from the broker's retained messages, and with them
from Home Assistant (an empty retained discovery config deletes the entity).

Clears every discovery config of the device (the ones this version announces, and any
other found under its node id, e.g. from an older version), and the device's retained
state (`status`, `now_playing`, anything else retained under its base topic). Stop the
service first, or it announces itself again on its next reconnect.
"""
from __future__ import annotations

import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from ..config import MqttSection
from ..errors import EarshotError
from .broker import resolve_password, tls_context
from .discovery import all_discovery_topics
from .topics import Topics

SETTLE_S = 0.5  # retained messages arrive right after the subscription is granted


class PurgeError(EarshotError):
    """The broker could not be reached or refused us."""


def purge(section: MqttSection, *, device_id: str | None = None, timeout: float = 10.0) -> list[str]:
    """Clear the device's retained topics; returns those that held a retained message."""
    topics = Topics.from_section(section, device_id)
    address = f"{section.host}:{section.effective_port}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{section.effective_client_id}-purge",
                         protocol=MQTTProtocolVersion.MQTTv5 if section.protocol == "5"
                         else MQTTProtocolVersion.MQTTv311)
    if section.username is not None:
        client.username_pw_set(section.username, resolve_password(section))
    context = tls_context(section)
    if context is not None:
        client.tls_set_context(context)
    state: dict = {"refused": None, "subscribed": None, "found": set()}

    def on_connect(c, userdata, flags, reason, props):
        if reason.is_failure:
            state["refused"] = str(reason)
            return
        c.subscribe([(topics.discovery_wildcard, 1), (f"{topics.base}/#", 1)])

    def on_subscribe(c, userdata, mid, reasons, props):
        state["subscribed"] = time.monotonic()

    def on_message(c, userdata, msg):
        if msg.retain and msg.payload:
            state["found"].add(msg.topic)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(section.host or "", section.effective_port, 30)
    except (OSError, ValueError) as exc:
        raise PurgeError(f"cannot reach the MQTT broker {address}: {exc}") from None
    deadline = time.monotonic() + timeout
    try:
        while state["subscribed"] is None or time.monotonic() < state["subscribed"] + SETTLE_S:
            _step(client, deadline, address)
            if state["refused"]:
                raise PurgeError(f"the MQTT broker {address} refused the login: {state['refused']}")
        client.unsubscribe([topics.discovery_wildcard, f"{topics.base}/#"])
        targets = sorted(set(all_discovery_topics(topics)) | set(topics.retained_state) | state["found"])
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in targets]
        while not all(info.is_published() for info in infos):
            _step(client, deadline, address)
    finally:
        client.disconnect()
        client.loop(0.1)
    return sorted(state["found"])


def _step(client: mqtt.Client, deadline: float, address: str) -> None:
    if time.monotonic() > deadline:
        raise PurgeError(f"the MQTT broker {address} did not answer in time")
    if client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise PurgeError(f"lost the connection to the MQTT broker {address}")
