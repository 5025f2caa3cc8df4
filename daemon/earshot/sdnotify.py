"""Telling systemd how the service is doing: READY, STATUS, RELOADING, STOPPING, WATCHDOG.

The sd_notify(3) protocol is one datagram of "KEY=value" lines to the AF_UNIX socket named
by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). systemd-python's
`systemd.daemon.notify` is used when it is installed (the `systemd` extra; `make install`
puts it in the service's venv); otherwise a dozen lines here send the same datagram. With
no $NOTIFY_SOCKET (earshot run by hand) every call is a no-op.

This module is named sdnotify, not systemd: a module `systemd.py` next to its importer
(a script run from this folder, or this folder on sys.path) would shadow systemd-python's
`systemd` package.
"""
from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Sender = Callable[[str], bool]


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def systemd_python_sender() -> Sender | None:
    """systemd-python's sd_notify wrapper, or None when systemd-python is not installed.

    libsystemd reads $NOTIFY_SOCKET from the process environment at each call.
    """
    try:
        daemon = importlib.import_module("systemd.daemon")
    except ImportError:
        return None

    def send(message: str) -> bool:
        return bool(daemon.notify(message))

    return send


class DatagramSender:
    """The fallback: the datagram sent by hand to a path or an abstract ("@name") socket."""

    def __init__(self, address: str):
        if not address.startswith(("/", "@")):
            raise ValueError(f"NOTIFY_SOCKET={address!r}: only AF_UNIX sockets are supported")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._lock = threading.Lock()

    def __call__(self, message: str) -> bool:
        with self._lock:
            self._sock.sendto(message.encode("utf-8"), self.address)
        return True

    def close(self) -> None:
        self._sock.close()


def _one_line(text: str) -> str:
    """A value must not break the KEY=value framing."""
    return " ".join(text.splitlines()).strip()


class Notifier:
    """The service's line to systemd; every method is a no-op when not run by systemd."""

    def __init__(self, sender: Sender | None, environ: Mapping[str, str] | None = None):
        self._send = sender
        self._environ = os.environ if environ is None else environ
        self._failed = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 use_systemd_python: bool = True) -> Notifier:
        """A notifier for $NOTIFY_SOCKET (a no-op one when it is unset).

        systemd-python is used when installed and `use_systemd_python`; it reads the process
        environment, so with another `environ` (tests) the fallback is used.
        """
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if not address:
            return cls(None, env)
        sender = systemd_python_sender() if use_systemd_python and environ is None else None
        if sender is None:
            try:
                sender = DatagramSender(address)
            except ValueError as exc:
                log.warning("systemd notifications are off: %s", exc)
                return cls(None, env)
        return cls(sender, env)

    @property
    def enabled(self) -> bool:
        return self._send is not None

    @property
    def backend(self) -> str:
        """'systemd-python', 'fallback' or 'off' (for diagnostics)."""
        if self._send is None:
            return "off"
        return "fallback" if isinstance(self._send, DatagramSender) else "systemd-python"

    def send(self, *assignments: str) -> bool:
        """Send "KEY=value" lines as one datagram; False when off or when sending failed."""
        if self._send is None:
            return False
        try:
            ok = self._send("\n".join(assignments))
        except OSError as exc:
            ok = False
            if not self._failed:  # once: a vanished socket must not flood the log
                log.warning("cannot notify systemd (%s)", exc.strerror or exc)
        self._failed = not ok
        return ok

    def ready(self, status: str | None = None) -> None:
        """Startup (or a reload) is complete: READY=1, with a STATUS line if given."""
        self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> None:
        """What the service is doing, in words (`systemctl status` shows it)."""
        self.send(f"STATUS={_one_line(text)}")

    def reloading(self) -> None:
        """A reload began; READY=1 must follow when it is done (Type=notify-reload ready)."""
        self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self, status: str | None = None) -> None:
        """Shutdown began."""
        self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog(self) -> None:
        """The service is alive and keeping up (send every watchdog_interval_s())."""
        self.send("WATCHDOG=1")

    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half of $WATCHDOG_USEC, or None when systemd expects
        no pings from this process (no watchdog, another $WATCHDOG_PID, or notifications off)."""
        if self._send is None:
            return None
        pid = self._environ.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):
            return None
        try:
            usec = int(self._environ.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 2e6 if usec > 0 else None
