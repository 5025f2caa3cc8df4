"""Freed heap handed back to the system (glibc's malloc_trim) after the pipeline's temporaries."""
import platform

import numpy as np
from earshot import heap


def rss_anon_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


def test_freed_heap_is_returned():
    assert platform.libc_ver()[0] != "glibc" or heap._TRIM is not None
    # mid-sized temporaries, as the pipeline makes: freed, they stay in glibc's heap
    keep = [np.ones(1 << 20, np.uint8) for _ in range(2)]
    junk = [np.ones(300_000 + 4096 * i, np.uint8) for i in range(100)]
    del junk
    before = rss_anon_kb()
    heap.release_free_heap()
    after = rss_anon_kb()
    assert after <= before
    assert all(k.sum() == 1 << 20 for k in keep)
