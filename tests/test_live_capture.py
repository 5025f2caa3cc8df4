"""`earshot run` on a real PortAudio capture device: a PulseAudio null sink's monitor, seen
through ALSA as `vmic`, into which real music (with room noise) is played. The daemon must
recognise the song, track its position, notice the song change and the silence after, and
survive the sound server being killed mid-song and coming back."""
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import pulse
from earshot.audio.decode import decode
from earshot.audio.resample import resample
from earshot.catalog import Catalog
from earshot.ingest import ingest_file
from earshot.testing.damage import pink_noise, scale_to_snr

MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
TRACKS = ["battle.ogg", "knolls.ogg", "loyalists.ogg", "elvish-theme.ogg"]
RATE = 48000

why_not = pulse.available() or (None if all((MUSIC / t).exists() for t in TRACKS) else
                                "real music missing (Debian package wesnoth-1.16-music; `make test` as root installs it)")
pytestmark = pytest.mark.skipif(why_not is not None, reason=str(why_not))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("livecap") / "catalog"
    with Catalog.open(path, create=True) as cat:
        for t in TRACKS:
            ingest_file(cat, MUSIC / t)
    return path


@pytest.fixture
def vmic(tmp_path):
    vm = pulse.VirtualMic(tmp_path / "pulse")
    vm.start()
    yield vm
    vm.stop()


def excerpt(name, start_s, seconds):
    a = decode(MUSIC / name)
    x = a.samples if a.samples.ndim == 1 else a.samples.mean(axis=1)
    x = x[int(start_s * a.sample_rate):int((start_s + seconds) * a.sample_rate)]
    return resample(x.astype(np.float32), a.sample_rate, RATE)


def room_noise(x, snr_db, seed):
    rng = np.random.default_rng(seed)
    return (x + scale_to_snr(x, pink_noise(len(x), RATE, rng), snr_db)).astype(np.float32)


class Daemon:
    """`earshot run --input mic:vmic` with its JSON lines collected as they come."""

    def __init__(self, vm, catalog, tmp_path, extra_env=None, args=()):
        env = dict(vm.env, EARSHOT_LISTEN__HEALTH_INTERVAL_S="2", EARSHOT_STATE_DIR=str(tmp_path / "state"),
                   **(extra_env or {}))
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "earshot", "run", "--catalog", str(catalog), "--input", "mic:vmic", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[tuple[float, dict]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append((time.monotonic() - self.t0, json.loads(line)))

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, e in list(self.events):
                if pred(e):
                    return t, e
            if self.proc.poll() is not None:
                raise AssertionError("earshot run exited: " + "".join(self.stderr)[-2000:])
            time.sleep(0.1)
        raise AssertionError(f"timed out; events: {[e['event'] + ':' + str(e.get('state', '')) for _, e in self.events]}"
                             + "".join(self.stderr)[-2000:])

    def ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not any("ready:" in line for line in self.stderr):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("not ready: " + "".join(self.stderr)[-2000:])
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(2)
        self.proc.wait(20)
        return self.proc.returncode


def test_recognises_song_change_and_silence(vmic, catalog, tmp_path):
    a, b = excerpt("battle.ogg", 30, 14), excerpt("loyalists.ogg", 20, 14)
    x = room_noise(np.concatenate([a, b]), 10.0, seed=1)
    x = np.concatenate([x, np.zeros(8 * RATE, np.float32)])
    wav = tmp_path / "play.wav"
    sf.write(wav, np.stack([x, x], axis=1), RATE, subtype="PCM_16")

    d = Daemon(vmic, catalog, tmp_path)
    d.ready()
    vmic.play(wav)
    t1, m1 = d.wait_for(lambda e: e["event"] == "match", 20)
    assert m1["title"].lower().startswith("battle"), m1
    # position: the excerpt starts 30 s into the track; the announced position minus what
    # earshot had heard of the song by then lands near 30 s (no wall clock involved: paplay's
    # start-up and the sound server's latency vary on a busy machine)
    assert 30.0 < m1["offset_s"] < 44.0, m1
    assert 29.5 < m1["offset_s"] - m1["latency_s"] < 33.0, m1
    t2, m2 = d.wait_for(lambda e: e["event"] == "match" and e["track_id"] != m1["track_id"], 25)
    assert "loyal" in (m2["title"] + m2["source"]).lower(), m2
    t3, _ = d.wait_for(lambda e: e["event"] == "now_playing" and e["state"] == "ended"
                       and e["reason"] in ("music stopped", "no longer heard"), 25)
    assert t3 > t2
    assert d.stop() == 0
    kinds = [e["event"] for _, e in d.events]
    assert kinds.count("match") == 2 and kinds.count("song_report") == 2
    health = [e for _, e in d.events if e["event"] == "health"]
    assert health and health[-1]["overruns"] == 0 and health[-1]["device"] == "vmic"


def test_survives_the_sound_server_restarting(vmic, catalog, tmp_path):
    part1 = room_noise(excerpt("knolls.ogg", 40, 8), 15.0, seed=2)
    part2 = room_noise(excerpt("elvish-theme.ogg", 25, 14), 15.0, seed=3)
    w1, w2 = tmp_path / "one.wav", tmp_path / "two.wav"
    sf.write(w1, part1, RATE, subtype="PCM_16")
    sf.write(w2, part2, RATE, subtype="PCM_16")

    d = Daemon(vmic, catalog, tmp_path)
    d.ready()
    vmic.play(w1)
    _, m1 = d.wait_for(lambda e: e["event"] == "match", 15)
    assert "knolls" in m1["source"].lower()
    vmic.kill()                      # the sound server dies mid-song
    d.wait_for(lambda e: e["event"] == "health" and e["device_state"] == "lost", 15)
    time.sleep(1.0)
    vmic.start()                     # ... and comes back
    d.wait_for(lambda e: e["event"] == "health" and e["device_state"] == "ok" and e["device_errors"] >= 1, 40)
    vmic.play(w2)
    _, m2 = d.wait_for(lambda e: e["event"] == "match" and "elvish" in e["source"].lower(), 25)
    assert d.proc.poll() is None
    assert d.stop() == 0


class Blackhole:
    """A "broker" that accepts TCP connections and never answers: the slowest broker there is."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)       # held open, never read from

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def test_a_broker_that_never_answers_causes_no_overrun(vmic, catalog, tmp_path):
    """MQTT is never in the audio path: with a broker that accepts and then hangs, the song is
    still recognised, no capture block is dropped, and the events wait in the spool."""
    hole = Blackhole()
    x = room_noise(excerpt("loyalists.ogg", 30, 14), 15.0, seed=4)
    wav = tmp_path / "song.wav"
    sf.write(wav, x, RATE, subtype="PCM_16")
    d = Daemon(vmic, catalog, tmp_path, args=("--stdout",),
               extra_env={"EARSHOT_MQTT__HOST": "127.0.0.1", "EARSHOT_MQTT__PORT": str(hole.port)})
    try:
        d.ready()
        vmic.play(wav)
        _, m = d.wait_for(lambda e: e["event"] == "match", 20)
        assert "loyal" in m["source"].lower()
        time.sleep(6)
        health = [e for _, e in d.events if e["event"] == "health"]
        assert health and all(h["overruns"] == 0 and h["dropped_frames"] == 0 for h in health)
        assert health[-1]["spool_depth"] >= 1      # the match waits for a broker that never acknowledges
        assert d.proc.poll() is None
    finally:
        d.proc.send_signal(2)
        d.proc.wait(30)
        hole.close()


def test_waits_for_a_microphone_plugged_in_after_start(vmic, catalog, tmp_path, notify_socket):
    """The unit runs `earshot run --wait-for-input`: a USB microphone that appears after boot
    is waited for (READY at once, STATUS says so, the watchdog fed), then used."""
    vmic.kill()                                   # no sound server: the device cannot be opened
    d = Daemon(vmic, catalog, tmp_path, args=("--wait-for-input",),
               extra_env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "2000000"})
    ready = notify_socket.wait_for("READY", "1", timeout=30)
    assert "waiting for the audio input" in ready.get("STATUS", ""), ready.raw
    d.wait_for(lambda e: e["event"] == "health" and e["device_state"] == "lost", 15)
    n = len(notify_socket.messages())
    waiting = notify_socket.messages(timeout=3.0)[n:]
    assert len([m for m in waiting if m.get("WATCHDOG") == "1"]) >= 2, [m.raw for m in waiting]
    vmic.start()                                  # plugged in
    d.wait_for(lambda e: e["event"] == "health" and e["device_state"] == "ok", 45)
    part = room_noise(excerpt("knolls.ogg", 40, 12), 15.0, seed=4)
    wav = tmp_path / "knolls.wav"
    sf.write(wav, part, RATE, subtype="PCM_16")
    vmic.play(wav)
    _, m = d.wait_for(lambda e: e["event"] == "match", 20)
    assert "knolls" in m["source"].lower()
    assert d.stop() == 0


def test_without_waiting_a_missing_microphone_is_exit_69(vmic, catalog, tmp_path):
    vmic.kill()
    d = Daemon(vmic, catalog, tmp_path)
    assert d.proc.wait(30) == 69
    err = "".join(d.stderr) if d.stderr else d.proc.stderr.read()
    assert "vmic" in err
