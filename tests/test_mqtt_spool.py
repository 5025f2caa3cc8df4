"""The MQTT spool on real LMDB: order, survival across reopen, acknowledgement, the full policy."""
from __future__ import annotations

import threading

import pytest
from earshot.mqtt.spool import MemorySpool, Spool, SpoolError


def kinds_and_payloads(entries):
    return [(e.kind, e.payload) for e in entries]


@pytest.fixture(params=["lmdb", "memory"])
def make_spool(request, tmp_path):
    opened = []

    def make(max_events=100):
        spool = Spool(tmp_path / "spool", max_events) if request.param == "lmdb" else MemorySpool(max_events)
        opened.append(spool)
        return spool

    yield make
    for spool in opened:
        spool.close()


def test_entries_come_back_in_arrival_order_with_increasing_sequence_numbers(make_spool):
    spool = make_spool()
    seqs = [spool.append("match", f"m{i}".encode()) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    entries = spool.read_after(0, 100)
    assert kinds_and_payloads(entries) == [("match", f"m{i}".encode()) for i in range(5)]
    assert [e.seq for e in spool.read_after(seqs[1], 2)] == seqs[2:4]
    assert spool.depth == 5


def test_removed_entries_are_gone_and_removing_twice_is_harmless(make_spool):
    spool = make_spool()
    seqs = [spool.append("match", b"x") for _ in range(4)]
    spool.remove([seqs[0], seqs[2]])
    spool.remove([seqs[0]])
    assert [e.seq for e in spool.read_after(0, 10)] == [seqs[1], seqs[3]]
    assert spool.depth == 2
    assert spool.contains(seqs[1]) and not spool.contains(seqs[0])


def test_lmdb_spool_survives_reopening_and_keeps_counting_up(tmp_path):
    spool = Spool(tmp_path / "spool", 100)
    first = [spool.append("song_report", f"r{i}".encode()) for i in range(3)]
    spool.remove([first[0]])
    spool.close()
    again = Spool(tmp_path / "spool", 100)
    assert again.depth == 2
    assert kinds_and_payloads(again.read_after(0, 10)) == [("song_report", b"r1"), ("song_report", b"r2")]
    assert again.append("match", b"new") > first[-1]  # a new event never takes an old number
    again.close()


def test_full_spool_drops_superseded_now_playing_changes_first(make_spool):
    spool = make_spool(max_events=10)
    spool.append("now_playing", b"np0")
    for i in range(7):
        spool.append("match", f"m{i}".encode())
    spool.append("now_playing", b"np1")
    spool.append("now_playing", b"np2")
    assert spool.depth == 10
    spool.append("match", b"m7")  # full: np0 is superseded by np1, np2 and goes first
    spool.append("match", b"m8")  # then np1 (superseded by np2)
    payloads = [e.payload for e in spool.read_after(0, 100)]
    assert payloads == [f"m{i}".encode() for i in range(7)] + [b"np2", b"m7", b"m8"]
    assert spool.dropped == 2 and spool.depth == 10


def test_full_spool_then_drops_the_oldest_event_never_the_newest(make_spool):
    spool = make_spool(max_events=10)
    for i in range(10):
        spool.append("match", f"m{i}".encode())
    spool.append("now_playing", b"np")  # the only now_playing is not superseded: m0 goes
    spool.append("match", b"m10")
    payloads = [e.payload for e in spool.read_after(0, 100)]
    assert payloads == [f"m{i}".encode() for i in range(2, 10)] + [b"np", b"m10"]
    assert spool.dropped == 2


def test_lmdb_spool_with_a_smaller_bound_after_restart_trims_to_it(tmp_path):
    spool = Spool(tmp_path / "spool", 50)
    for i in range(30):
        spool.append("match", f"m{i}".encode())
    spool.close()
    smaller = Spool(tmp_path / "spool", 10)
    smaller.append("match", b"new")
    assert smaller.depth == 10
    assert [e.payload for e in smaller.read_after(0, 100)][-2:] == [b"m29", b"new"]
    smaller.close()


def test_concurrent_appends_and_removals_lose_nothing(tmp_path):
    spool = Spool(tmp_path / "spool", 10_000)
    n = 300

    def writer():
        for i in range(n):
            spool.append("match", f"{i}".encode())

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[bytes] = []
    last = 0
    while thread.is_alive() or spool.depth:
        batch = spool.read_after(last, 7)
        if batch:
            seen += [e.payload for e in batch]
            last = batch[-1].seq
            spool.remove(e.seq for e in batch)
    thread.join()
    assert seen == [f"{i}".encode() for i in range(n)]
    spool.close()


def test_a_damaged_spool_is_moved_aside_and_a_fresh_one_opened(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / "data.mdb").write_bytes(b"this is not an LMDB file" * 100)
    spool = Spool(folder, 10)
    assert spool.depth == 0
    spool.append("match", b"ok")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("spool.damaged-")]
    spool.close()


def test_an_unwritable_place_is_a_clear_spool_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="cannot create the MQTT spool folder"):
        Spool(blocker / "spool", 10)
