"""`earshot run` as systemd sees it, through a bound NOTIFY_SOCKET: READY once input and
catalog are open, STATUS in words, WATCHDOG while the daemon works (audio flowing and kept
up with, or a lost input being retried) and not when the pipeline falls behind, RELOADING/READY on
SIGHUP (a bad new config refused, the old one kept), STOPPING on SIGTERM, exit 0."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

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
        # audio stops (a stalled input): the loss is reported and retried, and the watchdog
        # is still fed while the daemon retries (a restart would not bring a device back;
        # systemd would give up after five); only a pipeline that stops keeping up starves it
        feeder.flowing.clear()
        n1 = len(notify_socket.messages())
        notify_socket.wait_for("STATUS", timeout=10, after=n1)
        assert any("audio input lost" in m.get("STATUS", "") for m in notify_socket.messages()[n1:])
        n2 = len(notify_socket.messages())
        lost = notify_socket.messages(timeout=3.0)[n2:]
        assert len([m for m in lost if m.get("WATCHDOG") == "1"]) >= 2, [m.raw for m in lost]
        # audio flows again: listening again
        feeder.flowing.set()
        back = notify_socket.wait_for("STATUS", timeout=20, after=len(notify_socket.messages()))
        assert "listening on stdin" in back["STATUS"], back.raw
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


def test_a_pipeline_that_falls_behind_starves_the_watchdog(tmp_path, catalog, monkeypatch):
    """The one case a restart helps: audio arrives but the pipeline no longer keeps up."""
    from earshot.audio.sources import open_source
    from earshot.config import Config
    from earshot.listener import Listener

    wav = tmp_path / "song.wav"
    sf.write(wav, song(41, 30.0, RATE), RATE)
    config = Config.model_validate({"listen": {"stall_timeout_s": 1.0}})
    cat = Catalog.open(catalog, readonly=True)
    listener = Listener(config, cat, lambda: open_source(f"file:{wav}", channels=1, realtime=True), lambda e: None)
    listener.start()
    try:
        deadline = time.monotonic() + 10
        while not listener.keeping_up():
            assert time.monotonic() < deadline, "never keeping up"
            time.sleep(0.1)
        slow = listener.pipeline.process
        monkeypatch.setattr(listener.pipeline, "process", lambda block, evaluate=True: (time.sleep(3.0), slow(block))[1])
        deadline = time.monotonic() + 15
        while listener.keeping_up():
            assert time.monotonic() < deadline, "a pipeline 12x slower than real time still fed the watchdog"
            time.sleep(0.1)
        monkeypatch.undo()      # full speed again, so stopping drains the ring before the catalog closes
    finally:
        listener.stop(timeout=10)
        cat.close()


class _SilentInput:
    """An input that opens but never delivers audio (a stuck sound server, a stdin that
    stopped): every reopen succeeds and stalls again."""

    def __init__(self, opened: list):
        from earshot.audio.sources import SourceInfo
        self.info = SourceInfo("silent", RATE, 1, realtime=True)
        self.error, self.finished = None, False
        opened.append(time.monotonic())

    def start(self, ring) -> None:  # noqa: ANN001
        pass

    def stop(self) -> None:
        pass


def test_an_input_that_reopens_but_stays_silent_keeps_the_watchdog_fed(tmp_path, catalog):
    """Regression: after each reopen, the moments before the first hop withheld the watchdog,
    so a stalled input fed it only now and then. And the backoff must keep growing across
    reopens that bring no audio, not restart at its first step each time."""
    from earshot.config import Config
    from earshot.listener import Listener

    config = Config.model_validate({"listen": {"stall_timeout_s": 0.5, "retry_max_s": 2.0}})
    cat = Catalog.open(catalog, readonly=True)
    opened: list[float] = []
    listener = Listener(config, cat, lambda: _SilentInput(opened), lambda e: None)
    listener.start()
    try:
        samples = []
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            samples.append(listener.keeping_up())
            time.sleep(0.05)
        assert all(samples), f"watchdog withheld in {samples.count(False)} of {len(samples)} samples"
        assert len(opened) >= 3, opened
        waits = np.diff(opened)
        # each wait = stall timeout + backoff (0.5, 1, 2, 2 …): growing, capped
        assert waits[1] > waits[0] + 0.3 and waits.max() < 0.5 + 2.0 + 1.0, waits
    finally:
        listener.stop(timeout=10)
        cat.close()
