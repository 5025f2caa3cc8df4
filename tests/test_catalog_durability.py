"""The catalog loses nothing when its disk fills up or `earshot ingest` dies mid-run.

Real LMDB files written by the real CLI in a subprocess: a disk that is really full (a small
tmpfs, when this runs as root and may mount one), a file size limit (anywhere), and an ingest
killed with SIGKILL at a series of moments, as a power cut would stop it.
"""
import json
import resource
import signal
import subprocess
import sys
import time
import uuid

import pytest
import soundfile as sf

from music import song
from small_disk import fill, small_tmpfs

RATE = 22050


def earshot(*args, **kw):
    proc = subprocess.run([sys.executable, "-m", "earshot", *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kw)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def titles(catalog):
    listing = earshot("catalog", "list", "--json", "--catalog", catalog)
    assert listing.returncode == 0, listing.stderr
    return sorted(json.loads(line)["title"] for line in listing.stdout.splitlines())


def write_songs(folder, first_seed, n, seconds=20.0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"song{first_seed + i:03d}.flac", song(first_seed + i, seconds, RATE), RATE)
    return folder


def identify_title(catalog, source, tmp_path):
    x, rate = sf.read(source, dtype="float32")
    clip = tmp_path / f"clip-{uuid.uuid4().hex}.wav"
    sf.write(clip, x[5 * rate:13 * rate], rate)
    proc = earshot("identify", "--json", "--catalog", catalog, clip)
    assert proc.returncode == 0, proc.stderr
    match = json.loads(proc.stdout)["match"]
    return match and match["title"]


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "disk", "6m") as mnt:
        yield mnt


def test_a_full_disk_stops_ingest_with_one_line_and_keeps_what_was_stored(small_disk, tmp_path):
    first = write_songs(tmp_path / "first", 300, 2)
    more = write_songs(tmp_path / "more", 310, 3)
    catalog = small_disk / "catalog"
    assert earshot("ingest", "--catalog", catalog, first).returncode == 0
    before = titles(catalog)
    assert before == ["song300", "song301"]
    filler = fill(small_disk)
    proc = earshot("ingest", "--catalog", catalog, more)
    assert proc.returncode == 74, proc.stderr
    assert "could not write to the catalog: its disk is full" in proc.stderr
    assert "3 file(s) not ingested" in proc.stderr and "run the same command again" in proc.stderr
    # nothing stored before is lost, and the catalog still recognises it
    assert titles(catalog) == before
    assert identify_title(catalog, first / "song301.flac", tmp_path) == "song301"
    # room again: the same command finishes the job, each song once
    filler.unlink()
    proc = earshot("ingest", "--catalog", catalog, first, more)
    assert proc.returncode == 0, proc.stderr
    assert "2 duplicate(s)" in proc.stderr
    assert titles(catalog) == ["song300", "song301", "song310", "song311", "song312"]
    assert identify_title(catalog, more / "song312.flac", tmp_path) == "song312"


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def test_a_failed_write_is_a_clear_error_and_the_catalog_is_unchanged(tmp_path):
    """Wherever tmpfs cannot be mounted: the catalog's file may not grow (a file size limit),
    so LMDB's write fails as it does on a full disk."""
    first = write_songs(tmp_path / "first", 320, 1)
    more = write_songs(tmp_path / "more", 330, 3)
    catalog = tmp_path / "catalog"
    assert earshot("ingest", "--catalog", catalog, first).returncode == 0
    size = (catalog / "data.mdb").stat().st_size
    proc = earshot("ingest", "--no-compact", "--catalog", catalog, more,
                   preexec_fn=_limit_file_size(size))
    assert proc.returncode == 74, proc.stderr
    assert "could not write to the catalog" in proc.stderr
    assert "This change was not made; the catalog is as it was before" in proc.stderr
    assert titles(catalog) == ["song320"]
    assert identify_title(catalog, first / "song320.flac", tmp_path) == "song320"


def test_an_ingest_killed_at_any_moment_leaves_a_catalog_that_opens_and_completes(tmp_path):
    """SIGKILL, as a power cut stops a process, at moments spread over one ingest (40 songs:
    two write transactions of 32 and 8, then the compaction), each into a catalog of its own;
    after each the catalog opens and holds whole batches only; the same command then finishes
    the job."""
    from earshot.cli.ingest import BATCH_TRACKS

    n = BATCH_TRACKS + 8
    music = write_songs(tmp_path / "music", 400, n, seconds=10.0)
    expected = sorted(f"song{400 + i:03d}" for i in range(n))
    command = [sys.executable, "-m", "earshot", "ingest", "--catalog"]
    t0 = time.monotonic()
    assert earshot("ingest", "--catalog", tmp_path / "whole", music).returncode == 0
    whole_s = time.monotonic() - t0
    killed = 0
    for k in range(1, 7):
        catalog = tmp_path / f"catalog{k}"
        proc = subprocess.Popen([*command, str(catalog), str(music)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            proc.wait(timeout=whole_s * k / 7)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, err = proc.communicate()
        assert "Traceback" not in err, err
        if (catalog / "data.mdb").exists():
            assert earshot("catalog", "stats", "--catalog", catalog).returncode == 0
            assert len(titles(catalog)) in (0, BATCH_TRACKS, n)   # whole transactions only
        proc = earshot("ingest", "--catalog", catalog, music)
        assert proc.returncode == 0, proc.stderr
        assert titles(catalog) == expected
    assert killed >= 3
    assert identify_title(tmp_path / "catalog1", music / "song417.flac", tmp_path) == "song417"
