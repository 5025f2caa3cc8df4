"""`earshot analyze` end to end: files on disk, the CLI's output, its cache and its errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from earshot.cli import main

RATE = 48000


def tone_file(path: Path, level_db: float = -23.0, seconds: float = 6.0, channels: int = 2,
              rate: int = RATE, subtype: str = "FLOAT") -> Path:
    t = np.arange(int(rate * seconds)) / rate
    x = 10 ** (level_db / 20) * np.sin(2 * np.pi * 1000 * t)
    sf.write(str(path), np.repeat(x[:, None], channels, axis=1), rate, subtype=subtype)
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated state folder (for the cache) and no system config."""
    monkeypatch.setenv("EARSHOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr("earshot.config.SYSTEM_CONFIG", tmp_path / "none.toml")
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    code = main(["analyze", "--json", *args])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def test_json_has_every_field_with_real_values(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "tone.wav")
    code, [res] = run_json(capsys, str(f))
    assert code == 0
    for key in ("file", "integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs",
                "max_momentary_lufs", "max_short_term_lufs", "bands", "verdict"):
        assert key in res
    assert res["file"] == str(f)
    assert res["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert res["true_peak_dbtp"] == pytest.approx(-23.0, abs=0.05)
    assert res["sample_peak_dbfs"] == pytest.approx(-23.0, abs=0.05)
    assert res["max_momentary_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert res["max_short_term_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert res["loudness_range_lu"] == pytest.approx(0.0, abs=0.1)
    assert set(res["bands"]) == {"sub", "bass", "low_mid", "mid", "high_mid", "air"}
    assert res["bands"]["mid"]["level_db"] == pytest.approx(0.0, abs=0.01)
    checks = {n["check"]: n["status"] for n in res["verdict"]["notes"]}
    assert checks["broadcast"] == "ok" and checks["streaming"] == "quieter"
    assert checks["true_peak"] == "ok"
    assert "series" not in res


def test_series_step_and_nulls_until_windows_are_full(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "tone.wav", seconds=4.0)
    _, [res] = run_json(capsys, "--series", str(f))
    s = res["series"]
    assert s["step_s"] <= 0.01
    assert len(s["momentary_lufs"]) == len(s["short_term_lufs"]) == 400
    assert s["momentary_lufs"][38] is None and s["momentary_lufs"][39] == pytest.approx(-23.0, abs=0.1)
    assert s["short_term_lufs"][298] is None and s["short_term_lufs"][299] == pytest.approx(-23.0, abs=0.1)
    assert main(["analyze", "--series", str(f)]) == 0  # --series alone prints JSON too
    assert json.loads(capsys.readouterr().out)["series"]["step_s"] == s["step_s"]


def test_silence_and_too_short_give_nulls(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silent = env / "silent.wav"
    sf.write(str(silent), np.zeros((RATE * 3, 2)), RATE)
    short = tone_file(env / "short.wav", seconds=0.2)
    code, results = run_json(capsys, str(silent), str(short))
    assert code == 0
    s, t = results
    for key in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs",
                "max_momentary_lufs", "max_short_term_lufs"):
        assert s[key] is None
    assert all(b["level_db"] is None for b in s["bands"].values())
    assert t["integrated_lufs"] is None and t["max_momentary_lufs"] is None
    assert t["sample_peak_dbfs"] == pytest.approx(-23.0, abs=0.05)


def test_five_channel_file_uses_surround_weights(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.arange(RATE * 5) / RATE
    levels = [-28.0, -28.0, -24.0, -30.0, -30.0]  # EBU 3341 case 6: L R C Ls Rs
    x = np.stack([10 ** (lv / 20) * np.sin(2 * np.pi * 1000 * t) for lv in levels], axis=1)
    f = env / "five.wav"
    sf.write(str(f), x, RATE, subtype="FLOAT")
    _, [res] = run_json(capsys, str(f))
    assert res["channels"] == 5
    assert res["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert res["true_peak_per_channel_dbtp"] == pytest.approx(levels, abs=0.05)


def test_mono_file_follows_mono_mode(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "mono.wav", channels=1)
    _, [single] = run_json(capsys, str(f))
    _, [dual] = run_json(capsys, "--mono", "dual", str(f))
    assert single["integrated_lufs"] == pytest.approx(-26.0, abs=0.1)
    assert dual["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert single["mono_mode"] == "single" and dual["mono_mode"] == "dual"


def test_second_analysis_is_served_from_the_cache(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "tone.flac", subtype="PCM_24")
    _, [first] = run_json(capsys, str(f))
    _, [second] = run_json(capsys, str(f))
    _, [fresh] = run_json(capsys, "--no-cache", str(f))
    assert not first["cached"] and second["cached"] and not fresh["cached"]
    for key in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu", "bands"):
        assert first[key] == second[key] == fresh[key]
    entries = list((env / "state" / "analysis-cache").rglob("*.json"))
    assert len(entries) == 1


def test_cache_key_carries_the_meter_version(env: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    f = tone_file(env / "tone.wav")
    run_json(capsys, str(f))
    monkeypatch.setattr("earshot.analysis_cache.METER_VERSION", "999")
    _, [after_upgrade] = run_json(capsys, str(f))
    assert not after_upgrade["cached"]


def test_genre_changes_the_comparison_not_the_measurement(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "tone.wav")
    _, [general] = run_json(capsys, str(f))
    _, [rock] = run_json(capsys, "--genre", "rock", str(f))
    assert general["integrated_lufs"] == rock["integrated_lufs"]
    assert rock["verdict"]["genre"] == "rock"
    assert rock["bands"]["mid"]["status"] == "above"  # a pure 1 kHz tone is all midrange
    assert any(n["check"] == "band_mid" for n in rock["verdict"]["notes"])


def test_unknown_genre_is_a_usage_error(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "tone.wav")
    assert main(["analyze", "--genre", "polka-metal", str(f)]) == 2
    err = capsys.readouterr().err
    assert "unknown genre" in err and "rock" in err and "Traceback" not in err


def test_bad_inputs_give_one_clear_line_each(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = env / "missing.wav"
    empty = env / "empty.wav"
    empty.write_bytes(b"")
    junk = env / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    good = tone_file(env / "good.wav")
    code = main(["analyze", "--json", str(missing), str(empty), str(junk), str(good)])
    out, err = capsys.readouterr()
    assert code == 1  # some failed, the rest done
    assert len(out.splitlines()) == 1 and json.loads(out)["file"] == str(good)
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("earshot: ") for line in lines)
    assert "no such file" in lines[0] and "empty" in lines[1]
    assert "not a readable audio file" in lines[2]
    assert "Traceback" not in err
    assert main(["analyze", str(missing)]) == 65


def test_folders_are_searched_for_audio(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    album = env / "album"
    album.mkdir()
    tone_file(album / "a.wav")
    tone_file(album / "b.flac", subtype="PCM_16")
    (album / "cover.txt").write_text("not audio")
    code, results = run_json(capsys, str(album))
    assert code == 0 and [Path(r["file"]).name for r in results] == ["a.wav", "b.flac"]
    empty = env / "empty-folder"
    empty.mkdir()
    assert main(["analyze", str(empty)]) == 2
    assert "no audio files" in capsys.readouterr().err


def test_inputs_over_the_configured_length_are_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = env / "earshot.toml"
    cfg.write_text("[limits]\nmax_duration_min = 0.05\n")  # 3 s
    f = tone_file(env / "long.wav", seconds=6.0)
    assert main(["--config", str(cfg), "analyze", str(f)]) == 65
    assert "0.1 min is over the 0.1 min input limit" in capsys.readouterr().err
    cfg.write_text("[limits]\nmax_file_mb = 0.1\n")
    assert main(["--config", str(cfg), "analyze", str(f)]) == 65
    assert "input limit" in capsys.readouterr().err


def test_default_limits_admit_a_three_hour_set() -> None:
    from earshot.config import Config
    cfg = Config()
    assert cfg.limits.max_duration_min >= 180
    assert cfg.limits.max_file_mb * 1024 * 1024 >= 3 * 3600 * 44100 * 2 * 2  # 16-bit stereo WAV


def test_human_report_is_short_and_readable(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tone_file(env / "tone.wav", level_db=-1.0)
    assert main(["analyze", str(f)]) == 0
    out = capsys.readouterr().out
    assert "integrated" in out and "LUFS" in out and "dBTP" in out and "verdict" in out
    assert "not mastering advice" in out
    assert len(out.splitlines()) < 30
    assert math.isfinite(float(out.split("integrated")[1].split("LUFS")[0]))
