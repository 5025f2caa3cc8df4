"""A real mosquitto for the tests, and a recording subscriber.

`Mosquitto` runs the Debian `mosquitto` binary with its own config on a free loopback port
(persistence off, optional password file and TLS listener); `stop()` / `start()` restart it
on the same port for outage tests. `Recorder` is a paho MQTT 5 client subscribed with
retain-as-published, so each recorded message shows the retain flag and QoS its publisher
used.
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range. Outage tests restart the
    broker on its port while a client keeps reconnecting to it: a port the kernel may also
    hand out as a connection's source port can be taken meanwhile (a client connecting to
    127.0.0.1:P from source port P connects to itself), and the restart fails with "Address
    already in use"."""
    rng = random.Random()
    high = max(_ephemeral_low(), 11000)
    for _ in range(200):
        port = rng.randrange(10000, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def have_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


def mosquitto_binary() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


class Mosquitto:
    """One broker process with its own config file in `workdir`."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, tls: TlsFiles | None = None,
                 persistent: bool = False):
        self.workdir = Path(workdir)
        self.persistent = persistent
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = users
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / "mosquitto.log"
        self.conf = self.workdir / "mosquitto.conf"
        self._write_conf()

    def _write_conf(self) -> None:
        # persistence only for outage tests: a recorder's session (and what was queued for
        # it) must survive the broker's restart, as Home Assistant's does on a real broker
        persistence = (["persistence true", f"persistence_location {self.workdir}/"]
                       if self.persistent else ["persistence false"])
        lines = [f"listener {self.port} 127.0.0.1", *persistence, "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true", "max_keepalive 3600"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read our files
        if self.users:
            pw = self.workdir / "passwd"
            pw.unlink(missing_ok=True)
            pw.touch(mode=0o600)
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}", f"keyfile {self.tls.key}",
                      "require_certificate false"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        assert self.proc is None or self.proc.poll() is not None
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float


class Recorder:
    """Subscribes to topics and records every message with its QoS and retain flag."""

    def __init__(self, broker: Mosquitto, topics: list[str] | str = "#", *, username: str | None = None,
                 password: str | None = None, tls_ca: Path | None = None, port: int | None = None,
                 session: str | None = None):
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._topics = [topics] if isinstance(topics, str) else topics
        self._subscribed = threading.Event()
        # with `session`, a persistent session (kept by a persistent broker across restarts):
        # what is published while the recorder is away is queued for it, not lost
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=session or f"recorder-{time.monotonic_ns()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.reconnect_delay_set(0.05, 0.5)
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        props = None
        if session:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port or broker.port, 30, clean_start=session is None,
                            properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(5):
            raise RuntimeError("recorder could not subscribe")

    def _on_connect(self, client, userdata, flags, reason, props):
        opts = SubscribeOptions(qos=2, retainAsPublished=True)
        client.subscribe([(t, opts) for t in self._topics])

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                                          time.monotonic()))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        """Wait until predicate(messages) holds; returns the messages (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {[(m.topic, m.payload[:80]) for m in self.messages]}")
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()  # first: it wakes the network thread, so loop_stop returns at once
        self.client.loop_stop()


def retained(broker: Mosquitto, pattern: str, *, settle: float = 0.5, **kw) -> dict[str, Received]:
    """The retained messages currently held by the broker under `pattern`."""
    rec = Recorder(broker, pattern, **kw)
    time.sleep(settle)
    rec.close()
    return {m.topic: m for m in rec.messages if m.retain}
