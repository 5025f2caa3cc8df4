"""`earshot run` as systemd sees it, through a bound NOTIFY_SOCKET: READY once input and
catalog are open, STATUS in words, WATCHDOG only while audio flows, RELOADING/READY on
SIGHUP (a bad new config refused, the old one kept), STOPPING on SIGTERM, exit 0."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from earshot.audio.decode import Audio
from earshot.catalog import Catalog
from earshot.ingest import ingest_audio
from music import song

RATE = 16000


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("svc") / "catalog"
    with Catalog.open(path, create=True) as cat:
        ingest_audio(cat, Audio(song(41, 30.0, RATE)[:, None], RATE), {"title": "Service Song"}, "/m/s.wav")
    return path


class Feeder:
    """Writes raw f32le audio to the daemon's stdin at about real time, until paused."""

    def __init__(self, proc):
        self.proc = proc
        self.flowing = threading.Event()
        self.flowing.set()
        self.done = threading.Event()
        self.x = song(41, 30.0, RATE)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        i, hop = 0, RATE // 10
        try:
            while not self.done.is_set():
                if not self.flowing.is_set():
                    time.sleep(0.05)
                    continue
                block = self.x[i % len(self.x):][:hop]
                self.proc.stdin.write(block.astype("<f4").tobytes())
                self.proc.stdin.flush()
                i += len(block)
                time.sleep(0.1)
        except (BrokenPipeError, ValueError):
            pass


def start(tmp_path, notify_socket, catalog, config_text="", watchdog_usec=2_000_000):
    cfg = tmp_path / "earshot.toml"
    cfg.write_text("[listen]\nstall_timeout_s = 1.0\nhealth_interval_s = 1.0\n" + config_text)
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.path, WATCHDOG_USEC=str(watchdog_usec),
               EARSHOT_STATE_DIR=str(tmp_path / "state"))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "earshot", "--config", str(cfg), "run", "--catalog", str(catalog),
         "--input", "-", "--rate", str(RATE), "--channels", "1", "--format", "f32le"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return proc, cfg, Feeder(proc)


def stop(proc, feeder):
    feeder.done.set()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return err.decode()


def gaps(msgs, key):
    times = [m.received for m in msgs if key in m]
    return np.diff(times) if len(times) > 1 else np.array([])


def test_ready_status_watchdog_and_stop(tmp_path, notify_socket, catalog):
    proc, _, feeder = start(tmp_path, notify_socket, catalog)
    try:
        ready = notify_socket.wait_for("READY", "1", timeout=30)
        assert ready.pid == proc.pid                               # NotifyAccess=main
        assert "listening on stdin" in ready.get("STATUS", "")
        # while audio flows, the watchdog is fed well within WATCHDOG_USEC (2 s)
        n0 = len(notify_socket.messages())
        notify_socket.wait_for("STATUS", timeout=30, after=n0)     # status changes: song recognised
        flowing = notify_socket.messages(timeout=4.0)[n0:]
        wd = [m for m in flowing if m.get("WATCHDOG") == "1"]
        assert len(wd) >= 2
        assert gaps(flowing, "WATCHDOG").max() < 2.0
        assert any("now playing: Service Song" in m.get("STATUS", "") for m in notify_socket.messages())
        # audio stops (a stalled input): the watchdog is withheld, so systemd would restart us
        feeder.flowing.clear()
        time.sleep(2.0)                                            # stall detected after 1 s
        n1 = len(notify_socket.messages())
        stalled = notify_socket.messages(timeout=3.0)[n1:]
        assert not [m for m in stalled if m.get("WATCHDOG") == "1"], [m.raw for m in stalled]
        # audio flows again: fed again
        feeder.flowing.set()
        notify_socket.wait_for("WATCHDOG", "1", timeout=20, after=len(notify_socket.messages()))
    finally:
        err = stop(proc, feeder)
    assert proc.returncode == 0, err
    stopping = notify_socket.wait_for("STOPPING", "1", timeout=5)
    assert stopping.pid == proc.pid


def test_sighup_reloads_and_a_bad_config_is_refused(tmp_path, notify_socket, catalog):
    proc, cfg, feeder = start(tmp_path, notify_socket, catalog)
    try:
        notify_socket.wait_for("READY", "1", timeout=30)
        n = len(notify_socket.messages())
        cfg.write_text("[listen]\nstall_timeout_s = 1.0\nloudness_interval_s = 2.0\n")
        proc.send_signal(signal.SIGHUP)
        reloading = notify_socket.wait_for("RELOADING", "1", timeout=10, after=n)
        usec = int(reloading["MONOTONIC_USEC"])
        assert abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 30   # CLOCK_MONOTONIC, µs
        notify_socket.wait_for("READY", "1", timeout=10, after=n + 1)
        # a typo in the new config: refused, the daemon keeps running on the old one
        n = len(notify_socket.messages())
        cfg.write_text("[listen]\nstall_timeout_s = 1.0\nloudnes_interval_s = 2.0\n")
        proc.send_signal(signal.SIGHUP)
        notify_socket.wait_for("RELOADING", "1", timeout=10, after=n)
        notify_socket.wait_for("READY", "1", timeout=10, after=n + 1)
        notify_socket.wait_for("WATCHDOG", "1", timeout=10, after=n + 2)
        assert proc.poll() is None
    finally:
        err = stop(proc, feeder)
    assert proc.returncode == 0
    assert "reload refused" in err and "loudnes_interval_s" in err, err
