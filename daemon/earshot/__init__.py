"""earshot: an always-on room listener that recognises songs and measures loudness."""
import os

# earshot does no linear algebra: numpy's OpenBLAS would start a thread per core that spins
# for a while after import (a quarter of a short command's CPU on a 2-core machine, more on
# a 4-core Pi). One thread, unless the environment asks for others; set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
