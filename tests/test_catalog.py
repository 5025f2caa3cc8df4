"""The LMDB catalog, on real LMDB files."""
import multiprocessing as mp
from dataclasses import replace

import numpy as np
import pytest

from earshot.catalog import Catalog, NewTrack
from earshot.errors import CatalogError
from earshot.fingerprint import DEFAULT_PARAMS, FingerprintParams


def track(n: int, seed: int, digest: str) -> NewTrack:
    rng = np.random.default_rng(seed)
    return NewTrack(f"Song {seed}", "Artist", "Album", n / 60.0, f"/music/{seed}.flac", digest, None,
                    rng.integers(0, 1 << 21, n).astype(np.uint32), np.sort(rng.uniform(0, 10000, n)).astype(np.float32))


def postings_of(cat: Catalog, track_id: int) -> int:
    with cat.reader() as txn:
        return sum(1 for _, v in txn.cursor(db=cat._postings) if int.from_bytes(v[:3], "big") == track_id)


def test_add_and_reopen(tmp_path):
    path = tmp_path / "cat"
    with Catalog.open(path, create=True) as cat:
        (tid, added), = cat.add_tracks([track(500, 1, "d1")])
        assert added and tid == 1
    with Catalog.open(path, readonly=True) as cat:
        t = cat.get_track(1)
        assert t.title == "Song 1" and t.hashes == 500
        st = cat.stats()
        assert st.tracks == 1 and st.postings == 500


def test_postings_are_found_by_hash(tmp_path):
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        item = track(300, 2, "d2")
        cat.add_tracks([item])
        h = np.unique(item.hashes)[:10]
        found = cat.lookup(h)
        assert set(found["hash"].tolist()) == set(h.tolist())
        assert np.all(found["track"] == 1)
        expected = sum(int(np.sum(item.hashes == x)) for x in h)
        assert len(found) == expected


def test_same_digest_is_never_stored_twice(tmp_path):
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        first = cat.add_tracks([track(100, 3, "same")])[0]
        second = cat.add_tracks([track(100, 4, "same")])[0]
        assert first == (1, True) and second == (1, False)
        assert cat.track_count() == 1
        # also within one batch
        res = cat.add_tracks([track(50, 5, "x"), track(50, 6, "x")])
        assert res[0][1] and not res[1][1]


def test_remove_deletes_every_posting(tmp_path):
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        cat.add_tracks([track(800, 7, "a"), track(800, 8, "b")])
        assert postings_of(cat, 1) == 800
        removed = cat.remove_track(1)
        assert removed.title == "Song 7"
        assert postings_of(cat, 1) == 0
        assert postings_of(cat, 2) == 800
        assert cat.find_digest("a") is None and cat.get_track(1) is None
        with pytest.raises(CatalogError, match="no track 1"):
            cat.remove_track(1)


def test_map_grows_when_full(tmp_path):
    with Catalog.open(tmp_path / "cat", create=True, map_size=256 * 1024) as cat:
        for i in range(6):
            cat.add_tracks([track(20000, 10 + i, f"g{i}")])
        assert cat.env.info()["map_size"] > 256 * 1024
        assert cat.stats().postings == 120000


def test_other_parameters_are_refused_with_advice(tmp_path):
    path = tmp_path / "cat"
    Catalog.open(path, create=True).close()
    other = FingerprintParams(catalog_hash=replace(DEFAULT_PARAMS.catalog_hash, fanout=5))
    with pytest.raises(CatalogError, match=r"other fingerprint parameters.*fanout.*--rebuild"):
        Catalog.open(path, params=other)


def test_another_time_unit_is_refused_but_a_query_tolerance_is_not(tmp_path):
    """dt_step changes every stored hash; dt_tolerance only widens a query's lookups."""
    path = tmp_path / "cat"
    Catalog.open(path, create=True).close()
    coarse = FingerprintParams(catalog_hash=replace(DEFAULT_PARAMS.catalog_hash, dt_step=2.0),
                               query_hash=replace(DEFAULT_PARAMS.query_hash, dt_step=2.0))
    with pytest.raises(CatalogError, match=r"other fingerprint parameters.*dt_step.*--rebuild"):
        Catalog.open(path, params=coarse)
    wider = FingerprintParams(query_hash=replace(DEFAULT_PARAMS.query_hash, dt_tolerance=2.0))
    Catalog.open(path, params=wider).close()


def test_missing_and_foreign_folders_are_clear_errors(tmp_path):
    with pytest.raises(CatalogError, match="no catalog here"):
        Catalog.open(tmp_path / "nothing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("hello")
    with pytest.raises(CatalogError, match="not an earshot catalog"):
        Catalog.open(tmp_path / "junk", create=True)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(CatalogError, match="is a file"):
        Catalog.open(tmp_path / "plain")


def test_a_catalog_whose_start_was_cut_short_is_started_again(tmp_path):
    """LMDB creates its lock file before the data file: a power cut between the two leaves a
    folder that is still an empty place for a catalog, not a foreign one."""
    path = tmp_path / "cut"
    path.mkdir()
    (path / "in-use").write_bytes(b"")
    (path / "lock.mdb").write_bytes(b"\0" * 8192)
    with pytest.raises(CatalogError, match="no catalog here"):
        Catalog.open(path)
    with Catalog.open(path, create=True) as cat:
        cat.add_tracks([track(100, 1, "first")])
    with Catalog.open(path, readonly=True) as cat:
        assert [t.title for t in cat.tracks()] == ["Song 1"]


def _writer(path, ready, go):
    with Catalog.open(path) as cat:
        ready.set()
        go.wait(10)
        cat.add_tracks([track(1000, 99, "late")])


def test_reader_sees_new_tracks_at_its_next_transaction(tmp_path):
    path = tmp_path / "cat"
    with Catalog.open(path, create=True) as cat:
        cat.add_tracks([track(100, 1, "early")])
    ctx = mp.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    with Catalog.open(path, readonly=True) as reader:
        with reader.reader() as old_txn:
            proc = ctx.Process(target=_writer, args=(path, ready, go))
            proc.start()
            assert ready.wait(30)
            go.set()
            proc.join(60)
            assert proc.exitcode == 0
            # the open transaction still sees the old snapshot
            assert old_txn.stat(reader._tracks)["entries"] == 1
        assert reader.track_count() == 2
        assert reader.find_digest("late") == 2


def _expected_postings(items: list[NewTrack], first_id: int = 1) -> np.ndarray:
    """(hash, track, frame) of every distinct posting, in the order lookup gives them."""
    rows = {(int(h), first_id + i, int(np.rint(t))) for i, it in enumerate(items)
            for h, t in zip(it.hashes, it.times)}
    return np.array(sorted(rows), dtype=np.int64)


def _looked_up(cat: Catalog, hashes: np.ndarray) -> np.ndarray:
    found = cat.lookup(np.unique(hashes))
    return np.stack([found["hash"], found["track"], found["time"]], axis=1).astype(np.int64)


def test_six_byte_postings_round_trip_every_field(tmp_path):
    # frames past 16 bits and several tracks: the u24 fields come back whole, in order
    items = [replace(track(400, s, f"r{s}"), times=np.sort(np.random.default_rng(s).uniform(0, 9e6, 400)))
             for s in range(3)]
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        cat.add_tracks(items[:1])
        cat.add_tracks(items[1:])
        every = np.concatenate([it.hashes for it in items])
        assert np.array_equal(_looked_up(cat, every), _expected_postings(items))
        with cat.reader() as txn:
            assert {len(v) for _, v in txn.cursor(db=cat._postings)} == {6}


def test_a_track_longer_than_the_posting_frame_field_is_refused(tmp_path):
    long = replace(track(10, 1, "long"), times=np.array([0, 2**24], np.float32)[np.arange(10) % 2],
                   duration_s=80 * 3600.0, hashes=np.arange(10, dtype=np.uint32))
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        with pytest.raises(CatalogError, match="longer than a catalog track can be"):
            cat.add_tracks([long])
        assert cat.track_count() == 0 and cat.stats().postings == 0


def test_a_catalog_out_of_track_ids_is_refused(tmp_path):
    import struct
    from earshot.catalog import MAX_TRACK_ID

    with Catalog.open(tmp_path / "cat", create=True) as cat:
        with cat.env.begin(write=True) as txn:
            txn.put(b"next_track_id", struct.pack(">I", MAX_TRACK_ID + 1), db=cat._meta)
        with pytest.raises(CatalogError, match="catalog is full"):
            cat.add_tracks([track(10, 1, "one too many")])


def test_an_older_schema_is_refused_with_advice(tmp_path):
    import json

    path = tmp_path / "cat"
    with Catalog.open(path, create=True) as cat:
        with cat.env.begin(write=True, db=cat._meta) as txn:
            meta = json.loads(txn.get(b"meta"))
            txn.put(b"meta", json.dumps({**meta, "schema": 1}).encode())
    with pytest.raises(CatalogError, match=r"schema 1 is not the supported 2: rebuild it with `earshot ingest --rebuild"):
        Catalog.open(path)


def test_compact_rebuilds_full_pages_and_keeps_every_record(tmp_path):
    items = [track(3000, s, f"c{s}") for s in range(8)]
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        for it in items:  # one transaction per track, as ingest does: free pages pile up
            cat.add_tracks([it])
        cat.remove_track(3)
        every = np.concatenate([it.hashes for it in items])
        looked = _looked_up(cat, every)
        tracks_before = [t.to_json() for t in cat.tracks()]
        before, after = cat.compact()
        assert after < before / 2
        assert np.array_equal(_looked_up(cat, every), looked)
        assert [t.to_json() for t in cat.tracks()] == tracks_before
        expected = _expected_postings(items)
        assert np.array_equal(looked, expected[expected[:, 1] != 3])
        # still a working catalog: dedup, new ids after the old ones, removal
        assert cat.add_tracks([track(10, 99, "c0")]) == [(1, False)]
        assert cat.add_tracks([track(10, 100, "new")]) == [(9, True)]
        cat.remove_track(1)
        assert postings_of(cat, 1) == 0 and postings_of(cat, 9) == 10


def test_a_failed_compaction_leaves_the_catalog_as_it_was(tmp_path, monkeypatch):
    """E.g. the disk fills up while the new file is written: one clear error, the old file
    untouched and still open, no scratch folder left behind, and a later compaction works."""
    import os

    with Catalog.open(tmp_path / "cat", create=True) as cat:
        for s in range(3):
            cat.add_tracks([track(2000, s, f"f{s}")])
        size = (tmp_path / "cat" / "data.mdb").stat().st_size

        def full(*_a, **_k):
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(os, "replace", full)
            with pytest.raises(CatalogError, match=r"could not compact .*No space left.*unchanged"):
                cat.compact()
        assert not (tmp_path / "cat" / "compact.tmp").exists()
        assert (tmp_path / "cat" / "data.mdb").stat().st_size == size
        assert cat.track_count() == 3 and postings_of(cat, 2) == 2000
        cat.add_tracks([track(100, 7, "after")])
        before, after = cat.compact()
        assert after < before and cat.track_count() == 4 and postings_of(cat, 4) == 100


def test_compact_is_refused_while_another_process_reads(tmp_path):
    """A daemon reading the catalog would stay on the replaced file and never see another
    track: compaction waits until it is stopped, and nothing is lost meanwhile."""
    import subprocess
    import sys

    path = tmp_path / "cat"
    with Catalog.open(path, create=True) as cat:
        cat.add_tracks([track(500, 1, "a")])
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom earshot.catalog import Catalog\n"
         f"c = Catalog.open({str(path)!r}, readonly=True)\nc.tracks()\nprint('open', flush=True)\n"
         "sys.stdin.read()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        with Catalog.open(path) as cat:
            with pytest.raises(CatalogError, match=r"open in another process.*stop it"):
                cat.compact()
            assert cat.track_count() == 1
    finally:
        reader.communicate("", timeout=20)
    with Catalog.open(path) as cat:      # the reader gone: compaction goes ahead
        cat.compact()
        assert cat.track_count() == 1 and postings_of(cat, 1) == 500
