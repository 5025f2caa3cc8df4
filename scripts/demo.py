"""earshot's demo: the whole job, end to end, on a machine with nothing set up.

1. builds a catalog from real music (the Battle for Wesnoth soundtrack, Debian package
   `wesnoth-1.16-music`, installed by `make demo` when run as root);
2. starts a private MQTT broker (mosquitto) on a free loopback port, unless the config
   names one;
3. makes a virtual microphone (a PulseAudio null sink, as the tests do) and starts
   `earshot run` listening to it and publishing to the broker; with DEMO_INPUT=mic it
   listens to the real default microphone instead (play something from the catalog near it);
4. plays two catalog songs into the room — with reverberation and room noise — then a
   song that is not in the catalog, then silence;
5. shows the MQTT messages as they arrive, as a readable log, and a summary at the end.

It cleans up after itself and exits non-zero if the two songs were not recognised (or the
song that is not in the catalog was). Usage: `make demo` (or `python scripts/demo.py`).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import soundfile as sf
from paho.mqtt.enums import CallbackAPIVersion

from earshot.audio.decode import decode
from earshot.audio.resample import resample
from earshot.catalog import Catalog
from earshot.ingest import ingest_file
from earshot.testing import virtualmic
from earshot.testing.damage import Room, pink_noise, reverberate, room_impulse_response, scale_to_snr

PACKAGE = "wesnoth-1.16-music"
MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
NOT_IN_CATALOG = "journeys_end.ogg"
PLAYLIST = [("battle.ogg", 40.0, 24.0), ("loyalists.ogg", 15.0, 24.0), (NOT_IN_CATALOG, 10.0, 18.0)]
SILENCE_S = 8.0
RATE = 48000
DEVICE_ID = "demo"


def say(text: str = "") -> None:
    print(text, flush=True)


def ensure_music() -> None:
    if MUSIC.is_dir():
        return
    if os.geteuid() != 0:
        sys.exit(f"demo: needs the {PACKAGE} package: run `sudo make demo` or `sudo apt-get install {PACKAGE}`")
    say(f"installing {PACKAGE} (real music for the demo) ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", PACKAGE], env=env, check=True, stdout=subprocess.DEVNULL)


CATALOG_SIZE = 14   # songs: enough to make recognition a real choice, quick to build


def build_catalog(path: Path) -> dict[str, str]:
    """The two songs the room will play and a dozen others (not the unknown one)."""
    played = [name for name, _, _ in PLAYLIST if name != NOT_IN_CATALOG]
    others = [p.name for p in sorted(MUSIC.glob("*.ogg")) if p.name not in played and p.name != NOT_IN_CATALOG]
    files = [MUSIC / n for n in played + others[:CATALOG_SIZE - len(played)]]
    titles: dict[str, str] = {}
    t0 = time.monotonic()
    with Catalog.open(path, create=True) as cat:
        for f in files:
            out = ingest_file(cat, f)
            track = cat.get_track(out.track_id) if out.track_id else None
            if track is not None:
                titles[f.name] = track.title
        stats = cat.stats()
    say(f"   {len(files)} songs, {stats.hours * 60:.0f} min of music, {stats.postings} hashes "
        f"in {time.monotonic() - t0:.1f} s (not in the catalog: {NOT_IN_CATALOG})")
    return titles


def room_audio(work: Path) -> tuple[Path, list[tuple[str, float, float]]]:
    """The playlist as the room hears it: reverberant, with pink noise and a hum."""
    rng = np.random.default_rng(7)
    parts, schedule, t = [], [], 0.0
    for name, start, seconds in PLAYLIST:
        a = decode(MUSIC / name)
        x = a.samples.mean(axis=1) if a.samples.ndim == 2 else a.samples
        x = x[int(start * a.sample_rate):int((start + seconds) * a.sample_rate)]
        x = resample(x.astype(np.float32), a.sample_rate, RATE)
        parts.append(x)
        schedule.append((name, t, t + seconds))
        t += seconds
    x = np.concatenate(parts + [np.zeros(int(SILENCE_S * RATE), np.float32)])
    wet = reverberate(x, room_impulse_response(Room(rt60_s=0.6), RATE, rng))[:len(x)]
    music_part = wet[: int((t) * RATE)]
    noise = scale_to_snr(music_part, pink_noise(len(wet), RATE, rng), 10.0)   # 10 dB below the music
    room = np.clip(wet + noise, -1, 1).astype(np.float32)
    wav = work / "room.wav"
    sf.write(wav, np.stack([room, room], axis=1), RATE, subtype="PCM_16")
    return wav, schedule


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(work: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        sys.exit("demo: needs mosquitto (run `sudo make demo`, or `sudo apt-get install mosquitto`)")
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("demo: mosquitto did not start")


class LiveLog:
    """Subscribes to earshot's topics and prints each message as a readable line."""

    def __init__(self, port: int, t0: float):
        self.t0 = t0
        self.matches: list[tuple[float, dict]] = []
        self.reports: list[dict] = []
        self.discovery: set[str] = set()
        self.status: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="earshot-demo-viewer")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"earshot/{DEVICE_ID}/#", 1), ("homeassistant/#", 0)])
        self.client.loop_start()

    def _line(self, text: str) -> None:
        say(f"  {time.monotonic() - self.t0:5.1f}s  {text}")

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001 - paho's signature
        topic = msg.topic
        if topic.startswith("homeassistant/"):
            if topic not in self.discovery:
                self.discovery.add(topic)
                if len(self.discovery) == 1:
                    self._line("Home Assistant discovery: the earshot device and its entities announced")
            return
        leaf = topic.split("/", 2)[2]
        text = msg.payload.decode()
        if leaf == "status":
            self.status.append(text)
            self._line(f"[{leaf}] {text}")
            return
        try:
            d = json.loads(text)
        except ValueError:
            return
        if leaf == "match":
            self.matches.append((time.monotonic() - self.t0, d))
            self._line(f"[match] ♪ {d['title']}{' — ' + d['artist'] if d.get('artist') else ''} "
                       f"at {_mmss(d['offset_s'])}, confidence {d['confidence']:.4f}, "
                       f"{d['latency_s']:.1f} s after it began")
        elif leaf == "now_playing":
            track = (d.get("track") or {}).get("title")
            self._line(f"[now_playing] {d['state']}{': ' + track if track else ''} ({d.get('reason')})")
        elif leaf == "loudness":
            self._line(f"[loudness] momentary {_db(d['momentary_lufs'])} LUFS, short-term "
                       f"{_db(d['short_term_lufs'])} LUFS, true peak {_db(d['true_peak_dbtp'])} dBTP")
        elif leaf == "report":
            self.reports.append(d)
            self._line(f"[report] {d['track']['title']}: heard {d['duration_heard_s']:.0f} s, "
                       f"{_db(d['integrated_lufs'])} LUFS integrated, range {_db(d['loudness_range_lu'])} LU, "
                       f"true peak {_db(d['true_peak_dbtp'])} dBTP")
        elif leaf == "health":
            self._line(f"[health] {d['device']} {d['device_state']}, overruns {d['overruns']}, "
                       f"CPU {d['cpu_percent']:.1f} %, {d['catalog_tracks']} songs in the catalog")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _mmss(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def _db(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def main() -> int:
    ensure_music()
    use_real_mic = os.environ.get("DEMO_INPUT", "") == "mic"
    work = Path(tempfile.mkdtemp(prefix="earshot-demo-"))
    procs: list[subprocess.Popen] = []
    vm = None
    log = None
    try:
        say(f"== 1. a catalog from real music ({PACKAGE}) in {work / 'catalog'}")
        titles = build_catalog(work / "catalog")

        say("== 2. a private MQTT broker (mosquitto) on a free loopback port")
        broker, port = start_broker(work)
        procs.append(broker)
        say(f"   listening on 127.0.0.1:{port}")

        env = dict(os.environ, EARSHOT_MQTT__HOST="127.0.0.1", EARSHOT_MQTT__PORT=str(port),
                   EARSHOT_MQTT__DEVICE_ID=DEVICE_ID, EARSHOT_STATE_DIR=str(work / "state"),
                   EARSHOT_LISTEN__HEALTH_INTERVAL_S="30", EARSHOT_LISTEN__LOUDNESS_INTERVAL_S="10")
        if use_real_mic:
            say("== 3. listening to the default microphone (DEMO_INPUT=mic): play a soundtrack song near it")
            spec = "mic"
        else:
            why = virtualmic.available()
            if why:
                sys.exit(f"demo: cannot make a virtual microphone: {why} (run `sudo make demo`)")
            say("== 3. a virtual microphone (PulseAudio null sink) — this machine plays into it")
            vm = virtualmic.VirtualMic(work / "pulse", rate=RATE)
            vm.start()
            env.update({k: v for k, v in vm.env.items() if k in ("HOME", "XDG_RUNTIME_DIR", "PULSE_SERVER")})
            spec = f"mic:{virtualmic.SINK}"
        wav, schedule = room_audio(work)

        t0 = time.monotonic()
        log = LiveLog(port, t0)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "earshot", "--log-level", "info", "run", "--catalog",
             str(work / "catalog"), "--input", spec],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(daemon)
        for line in daemon.stderr:          # wait for "ready: listening on …"
            if "ready:" in line:
                say("   earshot: " + line.split("ready:", 1)[1].strip())
                break
        else:
            sys.exit(f"demo: earshot run failed (exit {daemon.wait()})")
        threading.Thread(target=lambda: [None for _ in daemon.stderr], daemon=True).start()
        say("== 4. earshot run is listening; the room plays (reverberation, pink noise at 10 dB below the music):")
        for name, a, b in schedule:
            label = titles.get(name, name) + ("  (not in the catalog)" if name == NOT_IN_CATALOG else "")
            say(f"   {a:4.0f}–{b:3.0f} s  {label}")
        say("== 5. what earshot publishes over MQTT, as it arrives:")
        play_t0 = time.monotonic() - t0
        if vm is not None:
            player = vm.play(wav)
            player.wait()
        else:
            time.sleep(schedule[-1][2] + SILENCE_S)
        time.sleep(2.0)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        time.sleep(0.5)
        return summary(log, schedule, titles, play_t0, use_real_mic)
    finally:
        if log is not None:
            log.close()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if vm is not None:
            vm.stop()
        shutil.rmtree(work, ignore_errors=True)


def summary(log: LiveLog, schedule, titles, play_t0: float, real_mic: bool) -> int:
    say("== summary")
    expected = [titles[name] for name, _, _ in schedule if name != NOT_IN_CATALOG]
    got = [d["title"] for _, d in log.matches]
    for _, d in log.matches:
        say(f"   recognised {d['title']} {d['latency_s']:.1f} s after earshot began to hear it "
            f"(confidence {d['confidence']:.4f}, position {_mmss(d['offset_s'])})")
    for r in log.reports:
        say(f"   loudness while {r['track']['title']} played: {_db(r['integrated_lufs'])} LUFS, "
            f"range {_db(r['loudness_range_lu'])} LU, max short-term {_db(r['max_short_term_lufs'])} LUFS, "
            f"true peak {_db(r['true_peak_dbtp'])} dBTP")
    say(f"   Home Assistant discovery topics: {len(log.discovery)}; status: {' → '.join(log.status) or '—'}")
    if real_mic:
        return 0 if got else 1
    wrong = [g for g in got if g not in expected]
    if got[:len(expected)] == expected and not wrong:
        say("   OK: both songs recognised, the unknown song was not")
        return 0
    say(f"   FAILED: expected {expected}, got {got}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
