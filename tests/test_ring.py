"""The capture ring: whole blocks or nothing, never torn, overruns counted, never blocking."""
import threading
import time

import numpy as np
import pytest

from earshot.audio.ring import Ring


def test_blocks_come_out_in_order_across_the_wrap():
    ring = Ring(10, 2)
    out = []
    for i in range(7):
        block = np.full((3, 2), i, np.float32)
        assert ring.write(block)
        out.append(ring.read(3))
    assert [int(b[0, 0]) for b in out] == list(range(7))
    assert all((b == b[0, 0]).all() for b in out)
    assert ring.overruns == 0


def test_a_full_ring_drops_the_new_block_and_counts_it():
    ring = Ring(8, 1)
    assert ring.write(np.ones((6, 1), np.float32))
    assert not ring.write(np.full((3, 1), 2, np.float32))   # does not fit: dropped whole
    assert ring.overruns == 1 and ring.dropped_frames == 3
    got = ring.read(100)
    assert got.shape == (6, 1) and (got == 1).all()        # what was there is intact
    assert ring.write(np.full((8, 1), 3, np.float32))      # space again
    assert (ring.read(8) == 3).all()


def test_rejects_nonsense_sizes():
    with pytest.raises(ValueError):
        Ring(0, 1)


def test_writer_outrunning_reader_loses_whole_blocks_never_tears():
    """A writer thread much faster than a slow reader: the reader sees a subsequence of
    the written blocks, each block complete, in order; every missing block is counted."""
    block_frames, blocks = 64, 4000
    ring = Ring(block_frames * 8, 2)
    done = threading.Event()

    def writer():
        b = np.empty((block_frames, 2), np.float32)
        for i in range(blocks):
            b[:] = i
            b[:, 1] = -i
            ring.write(b)
            if i % 50 == 0:
                time.sleep(0)   # let the reader in now and then
        done.set()

    seen: list[int] = []
    t = threading.Thread(target=writer)
    t.start()
    while not (done.is_set() and ring.available == 0):
        if ring.available < block_frames:
            time.sleep(0.0005)
            continue
        got = ring.read(block_frames)
        assert (got[:, 0] == got[0, 0]).all() and (got[:, 1] == -got[0, 0]).all(), "torn block"
        seen.append(int(got[0, 0]))
        time.sleep(0.0002)      # a slow pipeline
    t.join()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert ring.overruns > 0, "the writer was expected to outrun the reader"
    assert len(seen) + ring.overruns == blocks
    assert ring.dropped_frames == ring.overruns * block_frames
