"""`earshot run` end to end in a subprocess: file and stdin inputs, JSON lines, clean stops,
and the documented exit codes for what can go wrong."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from music import add_noise, song
from catalogs import song_catalog

RATE = 44100


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    path = root / "catalog"
    song_catalog(path, range(500, 503), 45.0, RATE, title="Tune {n}", artist="Tester", source="/m/{i}.wav")
    excerpt = add_noise(song(501, 45.0, RATE)[8 * RATE:28 * RATE], 15.0, seed=1)
    stereo = np.stack([excerpt, 0.8 * excerpt], axis=1)
    wav = root / "excerpt.flac"
    sf.write(wav, stereo, RATE)
    return root, path, stereo


def earshot(*args, **kw):
    env = dict(os.environ, EARSHOT_STATE_DIR=str(kw.pop("state", "/nonexistent-state")))
    return subprocess.run([sys.executable, "-m", "earshot", *args], capture_output=True, text=True,
                          env=env, timeout=120, **kw)


def events(stdout):
    out = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all("event" in e and "ts" in e and "id" in e and e["schema"] == 1 for e in out)
    return out


def test_file_input_fast(setup):
    root, path, _ = setup
    r = earshot("run", "--catalog", str(path), "--input", f"file:{root / 'excerpt.flac'}", "--fast")
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    matches = [e for e in ev if e["event"] == "match"]
    assert [(m["title"], m["artist"]) for m in matches] == [("Tune 2", "Tester")]
    assert 8.0 < matches[0]["offset_s"] < 8.0 + 6.0
    reports = [e for e in ev if e["event"] == "song_report"]
    assert len(reports) == 1 and reports[0]["track"]["title"] == "Tune 2"
    assert reports[0]["integrated_lufs"] is not None
    loud = [e for e in ev if e["event"] == "loudness"]
    assert len(loud) >= 3 and all(len(e["bands"]) == 6 for e in loud)
    health = [e for e in ev if e["event"] == "health"]
    assert health and health[-1]["device_state"] == "ended" and health[-1]["catalog_tracks"] == 3


@pytest.mark.parametrize("fmt,dtype,scale", [("s16le", "<i2", 32767), ("f32le", "<f4", 1.0), ("s32le", "<i4", 2**31 - 1)])
def test_stdin_raw_pcm(setup, fmt, dtype, scale):
    _, path, stereo = setup
    raw = (stereo * scale).astype(dtype).tobytes()
    r = subprocess.run(
        [sys.executable, "-m", "earshot", "run", "--catalog", str(path), "--input", "-", "--rate", str(RATE),
         "--channels", "2", "--format", fmt], input=raw, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    ev = events(r.stdout.decode())
    assert [e["title"] for e in ev if e["event"] == "match"] == ["Tune 2"]


def test_ctrl_c_stops_cleanly_and_reports_the_song(setup):
    root, path, _ = setup
    p = subprocess.Popen([sys.executable, "-m", "earshot", "run", "--catalog", str(path),
                          "--input", f"file:{root / 'excerpt.flac'}"],      # real time
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 30
    for line in p.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "match" or time.monotonic() > deadline:
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    seen += events(out)
    assert any(e["event"] == "match" for e in seen)
    assert [e["track"]["title"] for e in seen if e["event"] == "song_report"] == ["Tune 2"]


def test_missing_catalog_exits_66(tmp_path):
    r = earshot("run", "--catalog", str(tmp_path / "none"), "--input", "file:/dev/null")
    assert r.returncode == 66 and "no catalog" in r.stderr and "earshot ingest" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["--input", "speaker"], "unknown input"),
    (["--input", "-"], "--rate"),
    (["--input", "mic:3"], "not its index"),
])
def test_bad_input_spec_exits_2(setup, args, needle):
    _, path, _ = setup
    r = earshot("run", "--catalog", str(path), *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_missing_device_exits_69(setup):
    _, path, _ = setup
    r = earshot("run", "--catalog", str(path), "--input", "mic:no-such-microphone-here")
    assert r.returncode == 69, r.stderr
    assert "no-such-microphone-here" in r.stderr


def test_unreadable_file_exits_65(setup, tmp_path):
    _, path, _ = setup
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    r = earshot("run", "--catalog", str(path), "--input", f"file:{bad}", "--fast")
    assert r.returncode == 65 and "broken.wav" in r.stderr, r.stderr


def test_bad_config_exits_78(setup, tmp_path):
    _, path, _ = setup
    cfg = tmp_path / "earshot.toml"
    cfg.write_text("[listen]\nhop_s = 'fast'\n")
    r = earshot("--config", str(cfg), "run", "--catalog", str(path), "--input", "file:/dev/null")
    assert r.returncode == 78 and "listen.hop_s" in r.stderr, r.stderr
