"""cffi (API mode) builder for earshot's C kernels.

Every kernel in native/ is a pair `<name>.c` + `<name>.h`; the declarations cffi needs
are the part of each header between the `CFFI-BEGIN` and `CFFI-END` markers, so the
header stays the single contract. All kernels go into one extension, `earshot._native`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
KERNELS = ["fft", "resample", "fingerprint", "gating", "loudness", "evidence", "score", "postings"]
# libraries the kernels link: postings.c reads the catalog through liblmdb (Debian liblmdb-dev)
LIBRARIES = ["m", "lmdb"]
_MARKED = re.compile(r"/\* CFFI-BEGIN \*/(.*?)/\* CFFI-END \*/", re.S)


def _declarations(header: Path) -> str:
    """The cffi-visible part of a header (between the markers)."""
    return "\n".join(_MARKED.findall(header.read_text()))


def _present() -> list[str]:
    return [k for k in KERNELS if (HERE / f"{k}.c").exists() and (HERE / f"{k}.h").exists()]


ffibuilder = FFI()
_kernels = _present()
ffibuilder.cdef("\n".join(_declarations(HERE / f"{k}.h") for k in _kernels))
# -ftree-vectorize: the loudness kernel's true-peak interpolator relies on it (same results,
# several times faster); no fast-math, so floating-point results do not change.
# -fno-wrapv undoes the -fwrapv that Python's own CFLAGS put first on the command line:
# with wrapping signed ints GCC cannot prove that a[i] and a[i + 1] are neighbours, and it
# left the FFT's and the resampler's loops scalar (measured: the FFT half as fast). It also
# builds the extension as native/tests builds the kernels it tests (no -fwrapv there).
_flags = ["-std=c99", "-O2", "-ftree-vectorize", "-fno-wrapv", "-Wall", "-Wextra"]
if os.environ.get("EARSHOT_NATIVE_WERROR"):
    _flags.append("-Werror")
ffibuilder.set_source(
    "earshot._native",
    "\n".join(f'#include "{k}.h"' for k in _kernels),
    sources=[str((HERE / f"{k}.c").relative_to(HERE.parent)) for k in _kernels],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=_flags,
    libraries=LIBRARIES,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
