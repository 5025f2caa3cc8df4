"""A stand-in for systemd's end of $NOTIFY_SOCKET: a bound datagram socket that collects.

    def test_ready(notify_socket, monkeypatch):
        monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.path)   # or pass it to a subprocess
        ...
        msg = notify_socket.wait_for("READY", timeout=10)
        assert "STATUS" in msg

Each datagram becomes a `Notification`: its KEY=value fields, the raw text, the sender's
pid (from SCM_CREDENTIALS, as systemd checks NotifyAccess=main) and when it arrived
(time.monotonic(), for the watchdog cadence).
"""
from __future__ import annotations

import os
import select
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass(frozen=True)
class Notification:
    """One datagram received on the notify socket."""

    raw: str
    pid: int | None
    received: float
    fields: dict[str, str] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.fields

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)


def parse(raw: str) -> dict[str, str]:
    fields = {}
    for line in raw.split("\n"):
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    return fields


class NotifySocket:
    """A bound AF_UNIX datagram socket; a thread stores every datagram as it arrives."""

    def __init__(self, abstract: bool = False):
        self._dir = None if abstract else tempfile.mkdtemp(prefix="earshot-notify-")  # short: sun_path <= 107
        self.path = (f"@earshot-test-{os.getpid()}-{time.monotonic_ns()}" if abstract
                     else os.path.join(self._dir or "", "notify"))
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.path[1:] if abstract else self.path)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._received: list[Notification] = []
        self._cond = threading.Condition()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._collect, name="notify-socket", daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        creds_size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while True:
            ready, _, _ = select.select([self._sock, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            data, ancillary, _, _ = self._sock.recvmsg(65536, creds_size)
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            raw = data.decode("utf-8", "replace")
            with self._cond:
                self._received.append(Notification(raw, pid, time.monotonic(), parse(raw)))
                self._cond.notify_all()

    def messages(self, timeout: float = 0.0) -> list[Notification]:
        """Every notification so far, after waiting `timeout` seconds for more to arrive."""
        if timeout > 0:
            time.sleep(timeout)
        with self._cond:
            return list(self._received)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 10.0,
                 after: int = 0) -> Notification:
        """The first notification (from index `after` on) with `key` (equal to `value` if
        given); AssertionError listing what did arrive when none comes within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self._received[after:]:
                    if key in msg and (value is None or msg[key] == value):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [m.raw for m in self._received]
                    raise AssertionError(f"no {key}{'=' + value if value else ''} on the notify socket "
                                         f"within {timeout} s; received: {got}")
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self._received.clear()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        self._sock.close()
        os.close(self._stop_r)
        os.close(self._stop_w)
        if self._dir:
            os.unlink(self.path)
            os.rmdir(self._dir)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    """A bound notify socket at a file-system path (set NOTIFY_SOCKET to `.path`)."""
    sock = NotifySocket()
    yield sock
    sock.close()
