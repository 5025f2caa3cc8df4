"""The whole daemon (`earshot run`) publishing to a real mosquitto: songs play (raw PCM on
stdin, so the test decides when each song plays), the broker is stopped while some of them
play, and after it is back every match has arrived, in order, none missing; then a clean
stop says `offline`.

The outage lasts a few seconds in `make test`; `EARSHOT_LONG_TESTS=1` adds the issue's
30-second outage.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from mqtt_broker import Mosquitto, Recorder, have_mosquitto, retained
from music import add_noise
from catalogs import song_catalog

pytestmark = pytest.mark.skipif(not have_mosquitto(), reason="mosquitto is not installed (scripts/setup-system)")

RATE = 44100
SONGS = 6
DEVICE = "daemon-test"
BASE = f"earshot/{DEVICE}"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("daemon") / "catalog"
    songs = song_catalog(path, range(701, 701 + SONGS), 30.0, RATE, artist="Band", source="/m/{n}.wav")
    return path, songs


def pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def played(songs: dict, n: int) -> bytes:
    """Fifteen seconds of song n in a noisy room, then five of near silence (it ends)."""
    excerpt = add_noise(songs[n][5 * RATE:20 * RATE], 15.0, seed=n)
    quiet = add_noise(np.zeros(5 * RATE, np.float32), 60.0, seed=100 + n) * 1e-3
    return pcm(np.concatenate([excerpt, quiet]))


def matches(rec: Recorder) -> list[dict]:
    return [json.loads(m.payload) for m in rec.on(f"{BASE}/match")]


OUTAGE_S = [3.0] + ([30.0] if os.environ.get("EARSHOT_LONG_TESTS") else [])


@pytest.mark.parametrize("outage_s", OUTAGE_S)
def test_broker_stopped_while_songs_play_every_match_arrives_in_order(catalog, tmp_path, outage_s):
    path, songs = catalog
    broker = Mosquitto(tmp_path / "broker", persistent=True).start()
    rec = Recorder(broker, f"{BASE}/#", session="home-assistant")
    config = tmp_path / "earshot.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "{DEVICE}"\n'
                      "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\nkeepalive_s = 5\n")
    env = dict(os.environ, EARSHOT_STATE_DIR=str(tmp_path / "state"))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "earshot", "--config", str(config), "run", "--catalog", str(path),
         "--input", "-", "--rate", str(RATE), "--channels", "1", "--format", "s16le"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        rec.wait_for(lambda ms: any(m.topic == f"{BASE}/status" and m.payload == b"online" for m in ms))
        daemon.stdin.write(played(songs, 1))
        daemon.stdin.flush()
        rec.wait_for(lambda ms: len(matches(rec)) >= 1, timeout=30)

        broker.stop()
        stopped_at = time.monotonic()
        for n in (2, 3, 4):  # these songs play while the broker is away
            daemon.stdin.write(played(songs, n))
            daemon.stdin.flush()
        time.sleep(max(0.0, outage_s - (time.monotonic() - stopped_at)))
        broker.start()

        for n in (5, 6):
            daemon.stdin.write(played(songs, n))
            daemon.stdin.flush()
        rec.wait_for(lambda ms: {m["track_id"] for m in matches(rec)} >= set(range(1, SONGS + 1)), timeout=60)
        got = matches(rec)
        first_id: dict[int, str] = {}
        for m in got:
            assert first_id.setdefault(m["track_id"], m["id"]) == m["id"]  # a duplicate repeats its id
        assert list(dict.fromkeys(m["title"] for m in got)) == [f"Song {n}" for n in range(1, SONGS + 1)]

        daemon.stdin.close()  # the input ends: a clean stop (the last song's report is sent then)
        assert daemon.wait(60) == 0, daemon.stderr.read().decode()[-3000:]
        rec.wait_for(lambda ms: len({json.loads(m.payload)["id"] for m in ms if m.topic == f"{BASE}/report"})
                     >= SONGS)
        reports = [json.loads(m.payload) for m in rec.on(f"{BASE}/report")]
        assert list(dict.fromkeys(r["track"]["title"] for r in reports)) == [f"Song {n}" for n in range(1, SONGS + 1)]
        status = [m for m in rec.on(f"{BASE}/status")]
        assert status[-1].payload == b"offline" and status[-1].retain
        assert retained(broker, f"{BASE}/status")[f"{BASE}/status"].payload == b"offline"
        print(f"outage {outage_s:.0f} s: {len(got)} match messages for {SONGS} songs "
              f"({len(got) - SONGS} duplicates), {len(reports)} song reports")
    finally:
        if daemon.poll() is None:
            daemon.kill()
        rec.close()
        broker.stop()
