"""The systemd notifier against a real bound datagram socket, through systemd-python and the fallback."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from earshot.sdnotify import Notifier, monotonic_usec
from helpers_notify import NotifySocket

BACKENDS = ["systemd-python", "fallback"]


def make(backend: str, address: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> Notifier:
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if backend == "systemd-python":
        pytest.importorskip("systemd.daemon", reason="systemd-python is not installed")
        notifier = Notifier.from_env()
    else:
        notifier = Notifier.from_env(use_systemd_python=False)
    assert notifier.backend == backend
    return notifier


@pytest.mark.parametrize("backend", BACKENDS)
def test_ready_with_status_is_one_datagram_from_this_process(
        backend: str, notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    n = make(backend, notify_socket.path, monkeypatch)
    n.ready("listening on USB PnP Sound Device at 48 kHz")
    msg = notify_socket.wait_for("READY", timeout=5)
    assert msg.fields == {"READY": "1", "STATUS": "listening on USB PnP Sound Device at 48 kHz"}
    assert msg.pid == os.getpid()


@pytest.mark.parametrize("backend", BACKENDS)
def test_status_stopping_and_watchdog(backend: str, notify_socket: NotifySocket,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    n = make(backend, notify_socket.path, monkeypatch)
    n.status("now playing: Battle Music\nsecond line")
    n.watchdog()
    n.stopping("stopping: flushing 3 events")
    notify_socket.wait_for("STOPPING", timeout=5)
    assert [m.raw for m in notify_socket.messages()] == [
        "STATUS=now playing: Battle Music second line",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping: flushing 3 events",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reloading_carries_the_monotonic_clock(backend: str, notify_socket: NotifySocket,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    n = make(backend, notify_socket.path, monkeypatch)
    before = monotonic_usec()
    n.reloading()
    msg = notify_socket.wait_for("RELOADING", timeout=5)
    after = monotonic_usec()
    assert msg["RELOADING"] == "1"
    assert before <= int(msg["MONOTONIC_USEC"]) <= after
    assert abs(int(msg["MONOTONIC_USEC"]) / 1e6 - time.monotonic()) < 60  # the same clock


@pytest.mark.parametrize("backend", BACKENDS)
def test_abstract_namespace_socket(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = NotifySocket(abstract=True)
    try:
        assert sock.path.startswith("@")
        make(backend, sock.path, monkeypatch).ready()
        assert sock.wait_for("READY", timeout=5).raw == "READY=1"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier.from_env()
    assert not n.enabled and n.backend == "off"
    n.ready("x")
    n.watchdog()
    assert n.send("READY=1") is False
    assert n.watchdog_interval_s() is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vanished_socket_does_not_raise(backend: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    n = make(backend, str(tmp_path / "gone"), monkeypatch)
    assert n.send("READY=1") is False
    n.watchdog()  # still no exception


def test_an_unsupported_address_turns_notifications_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert not Notifier.from_env(use_systemd_python=False).enabled


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "OURS"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(
        env: dict[str, str], expected: float | None, notify_socket: NotifySocket) -> None:
    env = {k: str(os.getpid()) if v == "OURS" else v for k, v in env.items()}
    n = Notifier.from_env({"NOTIFY_SOCKET": notify_socket.path, **env})
    assert n.watchdog_interval_s() == expected
