"""`identify --plot` and `analyze --plot`: real PNGs of a fixed size whose drawn numbers are
the ones the JSON reports, the explanation's data, and the errors when plotting cannot work."""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from earshot import plots
from earshot.audio.decode import Audio
from earshot.catalog import Catalog
from earshot.cli import main
from earshot.explain import explain_audio, hashes_by_anchor, target_peak
from earshot.fingerprint import extract_peaks, hash_peaks
from earshot.ingest import fingerprint_rate_signal
from music import add_noise, song
from catalogs import song_catalog

RATE = 44100
SIZE = (1200, 700)  # plots.FIG_SIZE_IN at plots.DPI


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature and its IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def drawn(fig: Any, gid: str) -> list[Any]:
    """The artists of a figure carrying this gid."""
    return fig.findobj(lambda a: a.get_gid() == gid)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, np.ndarray]]:
    """A catalog of three synthetic tunes, and the tunes by track id."""
    root = tmp_path_factory.mktemp("plots")
    songs = song_catalog(root / "catalog", range(400, 403), 20.0, RATE, title="Tune {i}", artist="Synth",
                         source="/music/{i}.wav")
    return root / "catalog", songs


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No system config, a private state folder (analyze's cache)."""
    monkeypatch.setenv("EARSHOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr("earshot.config.SYSTEM_CONFIG", tmp_path / "none.toml")
    return tmp_path


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Path]]:
    """Every figure the CLI saves, kept (and still written) so a test can read it back."""
    saved: list[tuple[Any, Path]] = []
    real = plots.save_figure

    def keep(fig: Any, path: Path) -> None:
        saved.append((fig, path))
        real(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_identify_plot_is_a_png_that_draws_the_match_identify_reports(
        library, env, figures, capsys) -> None:
    catalog, songs = library
    clip = env / "clip.wav"
    sf.write(clip, songs[2][int(6.5 * RATE):int(14.5 * RATE)], RATE)
    out = env / "why.png"
    assert main(["identify", "--json", "--catalog", str(catalog), str(clip)]) == 0
    [plain] = json_lines(capsys)
    assert main(["identify", "--json", "--catalog", str(catalog), str(clip), "--plot", str(out)]) == 0
    [res] = json_lines(capsys)
    assert res["plot"] == str(out) and res["match"] == plain["match"]
    assert png_size(out) == SIZE
    m = res["match"]
    assert m["track_id"] == 2 and abs(m["offset_s"] - 6.5) < 0.05
    [(fig, path)] = figures
    assert path == out
    [offset_line] = drawn(fig, "offset:best")
    assert offset_line.get_xdata()[0] == pytest.approx(m["offset_s"], abs=5e-4)
    assert f"Tune 1 — Synth at 0:06.5 (confidence {m['confidence']:.3f})" in fig._suptitle.get_text()
    [best_counts] = drawn(fig, "offsets:best")
    [runner_counts] = drawn(fig, "offsets:runner_up")
    assert max(best_counts.get_ydata()) > 10 * max(runner_counts.get_ydata())


def test_explanation_is_the_match_with_its_evidence(library) -> None:
    catalog, songs = library
    clip = add_noise(songs[3][int(4.0 * RATE):int(12.0 * RATE)], 5.0)
    with Catalog.open(catalog, readonly=True) as cat:
        expl = explain_audio(cat, Audio(clip[:, None], RATE))
    m = expl.match
    assert m is not None and m.track.track_id == 3 and abs(m.offset_s - 4.0) < 0.05
    best = expl.best
    assert best is not None and best.track.track_id == 3
    assert best.offset_s == m.offset_s and best.score == m.score == int(best.cell_counts.max())
    # the hashes drawn are the ones the matcher counted in the best cell
    assert expl.pairs.hits == m.score and 0 < len(expl.pairs) <= m.score
    assert expl.runner_up is not None and expl.runner_up.track.track_id != 3
    assert expl.runner_up.score < m.score / 4
    # each pair is a real hash pair: later in time, within an octave and a half
    gap = (expl.pairs.target_s - expl.pairs.anchor_s) / expl.frame_s
    assert gap.min() > 1.4 and gap.max() < 48.6
    assert np.abs(np.log2(expl.pairs.target_hz / expl.pairs.anchor_hz)).max() < 1.5
    # the fingerprint's own 8 kHz view: n_fft 1024, hop 128
    assert expl.freqs_hz[-1] == 4000.0 and expl.spectrogram_db.shape == (513, (64000 - 1024) // 128 + 1)


def test_every_peak_sits_on_a_maximum_of_the_drawn_spectrogram(library) -> None:
    """The spectrogram is framed as the C extractor frames it (frame k starts at k·hop)."""
    catalog, songs = library
    with Catalog.open(catalog, readonly=True) as cat:
        expl = explain_audio(cat, Audio(songs[1][:RATE * 6, None], RATE))
    spec = expl.spectrogram_db
    frames = np.rint(expl.peak_s / expl.frame_s).astype(int)
    bins = np.rint(expl.peak_hz / expl.freqs_hz[1]).astype(int)
    assert len(frames) > 50
    for t, b in zip(frames, bins):
        around = spec[b - 2:b + 3, max(0, t - 1):t + 2]
        assert spec[b, t] >= around.max() - 3.0, (t, b)


def test_each_hash_target_decoded_rehashes_to_the_same_hash(library) -> None:
    catalog, songs = library
    with Catalog.open(catalog, readonly=True) as cat:
        params = cat.params
    signal = fingerprint_rate_signal(Audio(songs[1][:RATE * 5, None], RATE), params)
    peaks = extract_peaks(signal, params.query_peaks)
    for speed in (1.0, 1.03):
        anchors, hashes, _ = hashes_by_anchor(peaks, params.query_hash, speed)
        assert np.array_equal(hashes, hash_peaks(peaks, params.query_hash, speed)[0])
        for a, h in zip(anchors, hashes):
            t = target_peak(peaks, int(a), int(h), params.query_hash, speed)
            alone, _ = hash_peaks(peaks[[a, t]], params.query_hash, speed)
            assert h in alone.tolist()  # a query pair yields a hash per unit of its tolerance


def test_no_match_still_draws_the_two_best_candidates_and_several_files_are_numbered(
        library, env, figures, capsys) -> None:
    catalog, songs = library
    unknown, clip = env / "unknown.wav", env / "clip.flac"
    sf.write(unknown, song(999, 8.0, RATE), RATE)
    sf.write(clip, songs[1][RATE * 2:RATE * 10], RATE)
    out = env / "pics" / "id.png"
    out.parent.mkdir()
    assert main(["identify", "--json", "--catalog", str(catalog), str(unknown), str(clip),
                 "--plot", str(out)]) == 0
    first, second = json_lines(capsys)
    assert first == {"file": str(unknown), "match": None, "plot": str(env / "pics" / "id-1.png")}
    assert second["match"]["track_id"] == 1 and second["plot"] == str(env / "pics" / "id-2.png")
    assert sorted(p.name for p in out.parent.iterdir()) == ["id-1.png", "id-2.png"]
    assert png_size(env / "pics" / "id-1.png") == SIZE
    fig = figures[0][0]
    assert "no match (best candidate" in fig._suptitle.get_text()
    [best], [runner] = drawn(fig, "offsets:best"), drawn(fig, "offsets:runner_up")
    assert 1 <= max(runner.get_ydata()) <= max(best.get_ydata()) < 8


def test_analyze_plot_draws_the_numbers_analyze_json_reports(env, figures, capsys) -> None:
    rate = 48000
    x = song(7, 12.0, rate)
    x[: rate * 4] *= 0.2  # a quiet start, so the curve moves
    f = env / "track.wav"
    sf.write(f, np.stack([x, 0.8 * x], axis=1), rate)
    out = env / "report.png"
    assert main(["analyze", "--json", "--genre", "pop", str(f), "--plot", str(out)]) == 0
    [res] = json_lines(capsys)
    assert res["plot"] == str(out) and "series" not in res  # drawn, printed only with --series
    assert png_size(out) == SIZE
    [(fig, _)] = figures
    [integrated] = drawn(fig, "integrated")
    assert integrated.get_ydata()[0] == res["integrated_lufs"]
    [[true_peak], [sample_peak]] = drawn(fig, "true_peak"), drawn(fig, "sample_peak")
    assert true_peak.get_y() + true_peak.get_height() == pytest.approx(res["true_peak_dbtp"], abs=1e-9)
    assert sample_peak.get_y() + sample_peak.get_height() == pytest.approx(res["sample_peak_dbfs"], abs=1e-9)
    assert drawn(fig, "ceiling")[0].get_ydata()[0] == -1.0
    for name, band in res["bands"].items():
        [bar], [typical] = drawn(fig, f"band:{name}"), drawn(fig, f"range:{name}")
        assert bar.get_y() + bar.get_height() == pytest.approx(band["level_db"], abs=1e-9)
        assert [typical.get_y(), typical.get_y() + typical.get_height()] == pytest.approx(band["typical_db"])
    [short_term] = drawn(fig, "short_term")
    assert np.nanmax(short_term.get_ydata()) == pytest.approx(res["max_short_term_lufs"], abs=0.02)
    [momentary] = drawn(fig, "momentary")
    assert np.nanmax(momentary.get_ydata()) == pytest.approx(res["max_momentary_lufs"], abs=0.02)
    assert res["verdict"]["summary"] in fig._supxlabel.get_text().replace("\n", " ")


def test_plot_without_matplotlib_is_a_one_line_usage_error(library, env, monkeypatch, capsys) -> None:
    catalog, songs = library
    clip = env / "clip.wav"
    sf.write(clip, songs[1][:RATE * 3], RATE)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    for args in (["identify", "--catalog", str(catalog)], ["analyze"]):
        assert main([*args, str(clip), "--plot", str(env / "x.png")]) == 2
        err = capsys.readouterr().err
        assert err == "earshot: --plot needs matplotlib, which is not installed: pip install 'earshot[plot]'\n"
    assert not (env / "x.png").exists()


@pytest.mark.parametrize("target,message", [
    ("x.gif", "the picture must end in .png, .svg, .pdf"),
    ("missing/x.png", "does not exist"),
])
def test_plot_target_is_checked_before_any_work(env, capsys, target, message) -> None:
    clip = env / "clip.wav"
    sf.write(clip, np.zeros(RATE), RATE)
    assert main(["analyze", str(clip), "--plot", str(env / target)]) == 2
    assert message in capsys.readouterr().err
