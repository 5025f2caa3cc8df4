"""A file system that really runs out of space: a small tmpfs mounted for one test (root only;
the test is skipped where it cannot be mounted), and a way to fill it."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(mnt: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    mnt.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; returns it (unlink it to make room again)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:   # unbuffered: closing it writes nothing more
        block = b"\0" * 65536
        while True:
            try:
                f.write(block)
            except OSError:
                if len(block) == 1:
                    break
                block = block[:len(block) // 2]   # fill what is left to the last byte
    return filler
