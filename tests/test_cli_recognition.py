"""`earshot ingest`, `identify` and `catalog` end to end, as a user runs them."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from music import song

RATE = 44100


def earshot(*args, env_home=None):
    proc = subprocess.run([sys.executable, "-m", "earshot", *map(str, args)], capture_output=True,
                          text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    music = root / "music"
    (music / "sub").mkdir(parents=True)
    files = {}
    for i, (name, fmt) in enumerate([("Alpha Band - First Light.wav", "WAV"), ("second.flac", "FLAC"),
                                     ("sub/third.ogg", "OGG"), ("sub/fourth.mp3", "MP3")]):
        x = song(200 + i, 30.0, RATE)
        path = music / name
        if fmt == "MP3":
            sf.write(path, np.stack([x, x], 1), RATE, format="MP3")
        elif fmt == "OGG":
            sf.write(path, x, RATE, format="OGG", subtype="VORBIS")
        else:
            sf.write(path, x, RATE, format=fmt)
        files[name] = x
    from mutagen.flac import FLAC

    tags = FLAC(music / "second.flac")
    tags["title"], tags["artist"], tags["album"] = "Second Song", "Beta", "The Album"
    tags.save()
    (music / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    catalog = root / "catalog"
    proc = earshot("ingest", "--catalog", catalog, music)
    return root, music, catalog, files, proc


def test_ingest_adds_every_format_and_reports_the_broken_file(library):
    root, music, catalog, files, proc = library
    assert proc.returncode == 1  # one file failed
    assert "broken.wav" in proc.stderr
    assert "added 4 track(s)" in proc.stderr
    listing = earshot("catalog", "list", "--json", "--catalog", catalog)
    tracks = [json.loads(line) for line in listing.stdout.splitlines()]
    titles = {t["title"]: t for t in tracks}
    assert set(titles) == {"First Light", "Second Song", "third", "fourth"}
    assert titles["First Light"]["artist"] == "Alpha Band"
    assert titles["Second Song"]["artist"] == "Beta" and titles["Second Song"]["album"] == "The Album"


def test_ingest_again_skips_duplicates(library):
    root, music, catalog, files, _ = library
    proc = earshot("ingest", "--catalog", catalog, music / "second.flac", music / "sub")
    assert proc.returncode == 0
    assert "3 duplicate(s)" in proc.stderr and "added 0" in proc.stderr


def test_identify_json_names_track_source_and_offset(library, tmp_path):
    root, music, catalog, files, _ = library
    clip = tmp_path / "clip.wav"
    sf.write(clip, files["sub/third.ogg"][int(12.5 * RATE):int(20.5 * RATE)], RATE)
    proc = earshot("identify", "--json", "--catalog", catalog, clip)
    assert proc.returncode == 0
    result = json.loads(proc.stdout)
    assert result["file"] == str(clip)
    m = result["match"]
    assert m["title"] == "third" and m["source"] == str((music / "sub/third.ogg").resolve())
    assert abs(m["offset_s"] - 12.5) < 0.1 and 0.99 <= m["confidence"] <= 1.0
    assert set(m) == {"track_id", "title", "artist", "album", "source", "offset_s", "confidence"}


def test_identify_unknown_and_unreadable_files(library, tmp_path):
    root, music, catalog, files, _ = library
    other = tmp_path / "other.wav"
    sf.write(other, song(999, 8.0, RATE), RATE)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 50)
    proc = earshot("identify", "--json", "--catalog", catalog, other, empty, text, tmp_path / "missing.wav")
    assert proc.returncode == 1
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(lines) == 4
    assert lines[0] == {"file": str(other), "match": None}
    assert "empty" in lines[1]["error"]
    assert "not a readable audio file" in lines[2]["error"]
    assert "no such file" in lines[3]["error"]


def test_human_identify_output(library, tmp_path):
    root, music, catalog, files, _ = library
    clip = tmp_path / "c.flac"
    sf.write(clip, files["second.flac"][RATE * 3:RATE * 11], RATE)
    proc = earshot("identify", "--catalog", catalog, clip)
    assert proc.returncode == 0
    assert "Second Song — Beta (The Album) at 0:03.0" in proc.stdout


def test_catalog_stats_search_and_remove(tmp_path, library):
    root, music, _, files, _ = library
    catalog = tmp_path / "cat"
    assert earshot("ingest", "-q", "--catalog", catalog, music / "second.flac", music / "sub").returncode == 0
    stats = json.loads(earshot("catalog", "stats", "--json", "--catalog", catalog).stdout)
    assert stats["tracks"] == 3 and stats["postings"] > 1000
    found = earshot("catalog", "search", "--json", "--catalog", catalog, "secnd song")
    assert json.loads(found.stdout.splitlines()[0])["title"] == "Second Song"
    assert earshot("catalog", "search", "--catalog", catalog, "zzzzqqq").returncode == 1
    assert earshot("catalog", "remove", "--catalog", catalog, "1").returncode == 0
    stats2 = json.loads(earshot("catalog", "stats", "--json", "--catalog", catalog).stdout)
    assert stats2["tracks"] == 2 and stats2["postings"] < stats["postings"]
    bad = earshot("catalog", "remove", "--catalog", catalog, "42")
    assert bad.returncode == 66 and "no track 42" in bad.stderr


def test_bad_inputs_get_one_clear_line(tmp_path, library):
    root, music, catalog, files, _ = library
    proc = earshot("identify", "--catalog", tmp_path / "nowhere", music / "second.flac")
    assert proc.returncode == 66 and "no catalog here" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    notcat = tmp_path / "notcat"
    notcat.mkdir()
    (notcat / "x.txt").write_text("x")
    proc = earshot("identify", "--catalog", notcat, music / "second.flac")
    assert proc.returncode == 66 and "not an earshot catalog" in proc.stderr
    proc = earshot("ingest", "--catalog", tmp_path / "c2", tmp_path / "no-such-folder")
    assert proc.returncode == 1 and "no such file or folder" in proc.stderr


def test_size_and_length_limits_from_the_config(tmp_path, library):
    root, music, catalog, files, _ = library
    cfg = tmp_path / "earshot.toml"
    cfg.write_text("[limits]\nmax_duration_min = 0.25\n")
    proc = earshot("--config", cfg, "ingest", "--catalog", tmp_path / "c3", music / "second.flac")
    assert proc.returncode == 1 and "30 s is over the 15 s input length limit" in proc.stderr
    cfg.write_text("[limits]\nmax_file_mb = 0.01\n")
    proc = earshot("--config", cfg, "identify", "--catalog", catalog, music / "second.flac")
    assert proc.returncode == 1 and "MB input limit" in proc.stderr
    cfg.write_text("[limits]\nmax_fiel_mb = 3\n")
    proc = earshot("--config", cfg, "identify", "--catalog", catalog, music / "second.flac")
    assert proc.returncode == 78 and "limits.max_fiel_mb" in proc.stderr


def test_rebuild_replaces_the_catalog(tmp_path, library):
    root, music, _, files, _ = library
    catalog = tmp_path / "cat"
    earshot("ingest", "-q", "--catalog", catalog, music / "second.flac")
    proc = earshot("ingest", "-q", "--rebuild", "--catalog", catalog, music / "sub")
    assert proc.returncode == 0
    stats = json.loads(earshot("catalog", "stats", "--json", "--catalog", catalog).stdout)
    assert stats["tracks"] == 2


def test_ingest_leaves_the_catalog_compacted(tmp_path, library):
    """Each write transaction leaves copied pages behind, so an ingest ends by rewriting the
    file full (unless told not to); the tracks and their answers are the same either way."""
    music = library[1]
    sizes = {}
    for name, extra in (("grown", ["--no-compact"]), ("compacted", [])):
        catalog = tmp_path / name
        for f in ("second.flac", "sub/third.ogg", "Alpha Band - First Light.wav"):
            proc = earshot("ingest", "-q", *extra, "--catalog", catalog, music / f)
            assert proc.returncode == 0, proc.stderr
            assert ("MB →" in proc.stderr) == (not extra), proc.stderr
        sizes[name] = (catalog / "data.mdb").stat().st_size
        assert not (catalog / "compact.tmp").exists()
        found = earshot("identify", "--json", "--catalog", catalog, music / "sub" / "third.ogg")
        assert json.loads(found.stdout)["match"]["title"] == "third"
    assert sizes["compacted"] < sizes["grown"] / 1.5, sizes
    # nothing added: nothing rewritten
    before = (tmp_path / "compacted" / "data.mdb").stat().st_mtime_ns
    proc = earshot("ingest", "--catalog", tmp_path / "compacted", music / "second.flac")
    assert proc.returncode == 0 and "MB →" not in proc.stderr
    assert (tmp_path / "compacted" / "data.mdb").stat().st_mtime_ns == before


def test_ingest_while_the_daemon_reads_stores_and_leaves_compaction(tmp_path, library):
    """Another process reading the catalog (the daemon) would stay on a replaced file:
    ingest adds the tracks, says why it did not compact, and still exits 0."""
    music = library[1]
    catalog = tmp_path / "cat"
    assert earshot("ingest", "-q", "--catalog", catalog, music / "second.flac").returncode == 0
    reader = subprocess.Popen(
        [sys.executable, "-c", ("import sys\nfrom earshot.catalog import Catalog\n"
                                f"c = Catalog.open({str(catalog)!r}, readonly=True)\n"
                                "print('open', flush=True)\nsys.stdin.readline()\n"
                                "print(c.track_count(), flush=True)\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        proc = earshot("ingest", "--catalog", catalog, music / "sub")
        assert proc.returncode == 0, proc.stderr
        assert "not compacted" in proc.stderr and "open in another process" in proc.stderr
        assert "added 2 track(s)" in proc.stderr
        out, _ = reader.communicate("\n", timeout=20)
        assert out.strip() == "3"   # the reader sees the new tracks at its next transaction
    finally:
        if reader.poll() is None:
            reader.kill()
    stats = json.loads(earshot("catalog", "stats", "--json", "--catalog", catalog).stdout)
    assert stats["tracks"] == 3


def test_cli_and_api_share_one_confidence_threshold():
    from earshot.config import Config
    from earshot.identify import DEFAULT_MIN_CONFIDENCE

    assert Config().recognition.min_confidence == DEFAULT_MIN_CONFIDENCE == 0.999
