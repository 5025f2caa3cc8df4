"""The compiled C kernels (cffi, API mode), with a clear error when they are not built."""
from __future__ import annotations

from typing import Any

from .errors import EarshotError

try:
    from ._native import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise EarshotError(
        "earshot's C kernels are not built: run `make build` "
        "(or `pip install .`) in the earshot source folder"
    ) from exc

__all__ = ["ffi", "lib", "float_ptr", "uint_ptr"]


def float_ptr(array: Any) -> Any:
    """A `float *` into a C-contiguous float32 numpy array (no copy)."""
    return ffi.cast("float *", ffi.from_buffer(array))


def uint_ptr(array: Any) -> Any:
    """An `unsigned int *` into a C-contiguous uint32 numpy array (no copy)."""
    return ffi.cast("unsigned int *", ffi.from_buffer(array))
