"""Lookups read in C through liblmdb (native/postings.c) against py-lmdb's, on real LMDB files:
the same postings in the same order, only inside the caller's snapshot, following a map
that another process grew, and through py-lmdb whenever the C side cannot read."""
import multiprocessing as mp

import numpy as np
import pytest

from earshot.catalog import Catalog, NewTrack
from earshot.evidence import PostingRuns
from earshot.postings_reader import PostingsReader


def _track(n: int, seed: int, digest: str, hash_range: int = 1 << 16, common: int = 0) -> NewTrack:
    """n postings; `common` of them on hash 7 (a hash with many pages of duplicates)."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(8, hash_range, n).astype(np.uint32)
    hashes[:common] = 7
    times = np.sort(rng.uniform(0, 2e6, n)).astype(np.float32)
    return NewTrack(f"Song {seed}", "Artist", None, n / 60.0, f"/music/{seed}.flac", digest, None, hashes, times)


def _through_py_lmdb(cat: Catalog, keys: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setattr(cat.postings_reader, "lookup", lambda keys, txn_id: None)
        return cat.lookup(keys)


def test_the_same_postings_as_py_lmdb_in_the_same_order(tmp_path, monkeypatch):
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        # hash 7 gets 3 x 1500 duplicates: several pages, so several MDB_GET_MULTIPLE batches
        cat.add_tracks([_track(20000, s, f"d{s}", common=1500) for s in range(3)])
        rng = np.random.default_rng(1)
        keys = np.unique(np.r_[rng.integers(0, 1 << 16, 40000), 7, 0, (1 << 32) - 1]).astype(np.uint32)
        before = cat.postings_reader.direct
        direct = cat.lookup(keys)
        assert cat.postings_reader.direct == before + 1      # it was read in C
        expected = _through_py_lmdb(cat, keys, monkeypatch)
        assert len(direct) > 20000 and direct.dtype == expected.dtype
        assert np.array_equal(direct, expected)
        # one key of ~4500 postings: more than the first try's room, read again with room for all
        seven = cat.lookup(np.array([7], np.uint32))
        assert len(seven) > 4400 and np.all(seven["hash"] == 7)   # (two postings may share a frame)
        assert np.array_equal(seven, _through_py_lmdb(cat, np.array([7], np.uint32), monkeypatch))
        # where each key's postings begin, as the reader wrote them: what a pass over them finds
        grouped, starts = cat.lookup_grouped(keys)
        assert np.array_equal(grouped, direct)
        assert np.array_equal(starts, PostingRuns(direct, keys).starts)
        assert list(cat.lookup_grouped(np.array([7], np.uint32))[1]) == [0, len(seven)]   # after a retry
        with monkeypatch.context() as m:                 # py-lmdb's lookups leave that to the pass
            m.setattr(cat.postings_reader, "lookup", lambda keys, txn_id: None)
            assert cat.lookup_grouped(keys)[1] is None
        with pytest.raises(ValueError, match="do not fit"):
            PostingRuns(direct, keys, starts[:-1])


def test_absent_keys_give_nothing(tmp_path):
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        cat.add_tracks([_track(100, 1, "a", hash_range=1000)])
        found = cat.lookup(np.array([5000, 6000, 70000], np.uint32))
        assert len(found) == 0 and cat.postings_reader.direct == 1


def _writer(path, ready, go, n, map_size):
    with Catalog.open(path, map_size=map_size) as cat:
        ready.set()
        go.wait(30)
        cat.add_tracks([_track(n, 99, "late")])


def _in_another_process(path, n, map_size=64 << 20):
    ctx = mp.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(path, ready, go, n, map_size))
    proc.start()
    assert ready.wait(30)
    go.set()
    proc.join(60)
    assert proc.exitcode == 0


def test_a_snapshot_older_than_the_newest_is_read_through_py_lmdb(tmp_path):
    path = tmp_path / "cat"
    with Catalog.open(path, create=True) as cat:
        cat.add_tracks([_track(2000, 1, "early")])
    keys = np.arange(8, 1 << 16, dtype=np.uint32)
    with Catalog.open(path, readonly=True) as reader:
        with reader.reader() as old_txn:
            _in_another_process(path, 2000)
            old = reader.lookup(keys, old_txn)
            # a writer committed since this transaction began: C declines, py-lmdb reads
            # the transaction's own snapshot, without the new track
            assert reader.postings_reader.declined == 1 and reader.postings_reader.direct == 0
            assert set(old["track"].tolist()) == {1} and len(old) == 2000
        new = reader.lookup(keys)
        assert reader.postings_reader.direct == 1
        assert set(new["track"].tolist()) == {1, 2} and len(new) == 4000


def test_a_map_grown_by_another_process_is_followed(tmp_path):
    path = tmp_path / "cat"
    with Catalog.open(path, create=True, map_size=256 * 1024) as cat:
        cat.add_tracks([_track(1000, 1, "small")])
    keys = np.arange(8, 1 << 16, dtype=np.uint32)
    with Catalog.open(path, readonly=True, map_size=256 * 1024) as reader:
        assert len(reader.lookup(keys)) == 1000 and reader.postings_reader.direct == 1
        _in_another_process(path, 200000, map_size=256 * 1024)   # the writer doubles its map
        grown = reader.lookup(keys)
        assert reader.postings_reader.direct == 2 and reader.postings_reader.declined == 0
        assert len(grown) == reader.stats().postings > 150000   # (a few repeat a posting)


def test_lookups_go_on_after_an_in_process_compaction(tmp_path, monkeypatch):
    with Catalog.open(tmp_path / "cat", create=True) as cat:
        for s in range(4):
            cat.add_tracks([_track(5000, s, f"c{s}")])
        keys = np.arange(8, 1 << 16, dtype=np.uint32)
        before = cat.lookup(keys)
        cat.compact()                           # a new data file, the catalog reopened on it
        after = cat.lookup(keys)
        assert cat.postings_reader.direct == 1  # the reopened catalog's own reader
        assert np.array_equal(before, after)
        assert np.array_equal(after, _through_py_lmdb(cat, keys, monkeypatch))


def test_a_folder_liblmdb_cannot_open_is_left_to_py_lmdb(tmp_path, caplog):
    reader = PostingsReader(tmp_path / "not-a-catalog")
    with caplog.at_level("INFO", logger="earshot.postings_reader"):
        assert reader.lookup(np.array([1, 2], np.uint32), 1) is None
        assert reader.lookup(np.array([1, 2], np.uint32), 1) is None   # not retried, said once
    assert "could not open" in reader.unavailable
    assert [r.getMessage().count("through py-lmdb") for r in caplog.records] == [1]
    reader.close()


def _busy_writer(path, ready, n_tracks):
    with Catalog.open(path, map_size=256 * 1024) as cat:   # small: the map grows while read
        ready.set()
        for s in range(n_tracks):
            cat.add_tracks([_track(3000, 100 + s, f"busy{s}")])


def test_lookups_while_another_process_writes_match_py_lmdb_in_every_snapshot(tmp_path, monkeypatch):
    path = tmp_path / "cat"
    with Catalog.open(path, create=True) as cat:
        cat.add_tracks([_track(3000, 1, "first")])
    keys = np.arange(8, 1 << 16, 7, dtype=np.uint32)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_busy_writer, args=(path, ready, 40))
    with Catalog.open(path, readonly=True) as reader:
        proc.start()
        assert ready.wait(30)
        sizes = set()
        while proc.is_alive() or not sizes:
            with reader.reader() as txn:
                got = reader.lookup(keys, txn)
                # py-lmdb's own answer in the same transaction
                with monkeypatch.context() as m:
                    m.setattr(reader.postings_reader, "lookup", lambda keys, txn_id: None)
                    expected = reader.lookup(keys, txn)
                assert np.array_equal(got, expected)
                sizes.add(len(got))
        proc.join(60)
        assert proc.exitcode == 0
        assert len(sizes) > 3                          # it read while the catalog grew
        assert reader.postings_reader.direct > 0
