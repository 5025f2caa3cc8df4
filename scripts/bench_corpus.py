"""The benchmark's music: Debian game soundtracks, listed deterministically, split known/unknown.

Used by bench_recognition.py. Commits no audio: the packages are installed (as root) and the
one archive among them (Nexuiz's music.pk3, a zip) is unpacked into bench-out/corpus/.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

PACKAGES = ("wesnoth-1.16-music", "warzone2100-music", "nexuiz-music")
AUDIO_SUFFIXES = (".ogg", ".opus", ".flac", ".mp3", ".wav")
ARCHIVE_SUFFIXES = (".pk3", ".zip")
MIN_TRACK_S = 20.0  # shorter files in these packages are jingles and a 10 s silence file
UNKNOWN_FRACTION = 0.2


@dataclass(frozen=True)
class CorpusTrack:
    """One song of the corpus."""

    path: Path  # absolute; the catalog's `source`
    package: str
    title: str
    duration_s: float
    sample_rate: int

    @property
    def meta(self) -> dict[str, str]:
        return {"title": self.title, "artist": self.package, "album": self.path.parent.name,
                "source": str(self.path)}


def _installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], check=False,
                         capture_output=True, text=True)
    return out.returncode == 0 and "install ok installed" in out.stdout


def ensure_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Install missing soundtrack packages when root; returns the packages present."""
    missing = [p for p in packages if not _installed(p)]
    if missing and os.geteuid() == 0:
        print(f"installing {' '.join(missing)} ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        if subprocess.run(cmd, check=False, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True)
            subprocess.run(cmd, check=False, env=env, capture_output=True)
    elif missing:
        print(f"not root: cannot install {' '.join(missing)}; using what is installed",
              file=sys.stderr)
    return [p for p in packages if _installed(p)]


def _package_files(package: str) -> list[Path]:
    out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    return sorted(Path(line) for line in out.stdout.splitlines() if Path(line).is_file())


def _unpack_audio(archive: Path, dest: Path) -> list[Path]:
    """Extract the audio members of a zip archive (once); their paths, sorted."""
    found = []
    with zipfile.ZipFile(archive) as zf:
        for name in sorted(zf.namelist()):
            if not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            target = dest / name
            if not target.exists() or target.stat().st_size != zf.getinfo(name).file_size:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target, "wb") as out:
                    out.write(src.read())
            found.append(target.resolve())
    return found


def build_corpus(packages: list[str], cache: Path) -> list[CorpusTrack]:
    """Every audio file of the packages at least MIN_TRACK_S long, sorted by package and path."""
    tracks = []
    for package in packages:
        paths: list[Path] = []
        for f in _package_files(package):
            if f.suffix.lower() in AUDIO_SUFFIXES:
                paths.append(f.resolve())
            elif f.suffix.lower() in ARCHIVE_SUFFIXES:
                paths.extend(_unpack_audio(f, cache / package))
        for path in sorted(paths):
            info = sf.info(str(path))
            if info.duration >= MIN_TRACK_S:
                tracks.append(CorpusTrack(path, package, path.stem, float(info.duration),
                                          int(info.samplerate)))
    return tracks


def split_known_unknown(
    tracks: list[CorpusTrack], seed: int
) -> tuple[list[CorpusTrack], list[CorpusTrack]]:
    """A seeded 20% of the tracks are kept out of the catalog (unknown songs)."""
    order = np.random.default_rng([seed, 1]).permutation(len(tracks))
    n_unknown = round(UNKNOWN_FRACTION * len(tracks))
    unknown_idx = {int(i) for i in order[:n_unknown]}
    known = [t for i, t in enumerate(tracks) if i not in unknown_idx]
    unknown = [t for i, t in enumerate(tracks) if i in unknown_idx]
    return known, unknown
