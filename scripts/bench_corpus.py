"""The benchmark's music: Debian game soundtracks, listed deterministically, split known/unknown.

Used by bench_recognition.py and bench_live.py, which also share the 10-hour catalog built
from it (`ensure_large_catalog`). Commits no audio: the packages are installed (as root) and the
one archive among them (Nexuiz's music.pk3, a zip) is unpacked into bench-out/corpus/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# -- the 10-hour catalog: the known songs plus more soundtracks ------------------------------
EXTRA_PACKAGES = ("ufoai-music", "singularity-music", "hyperrogue-music")
LARGE_CATALOG_MIN_HOURS = 10.0


def catalog_figures(path: Path) -> dict[str, Any]:
    from earshot.catalog import Catalog

    with Catalog.open(path, readonly=True) as cat:
        st = cat.stats()
        sources = sorted(t.source for t in cat.tracks())
    size = sum(f.stat().st_size for f in path.iterdir())
    return {"path": str(path), "tracks": st.tracks, "hours": st.hours, "postings": st.postings,
            "file_mb": size / 1e6, "sources": sources}


def catalog_opens(path: Path) -> bool:
    """Whether this earshot can read the catalog (not one built with another format)."""
    from earshot.catalog import Catalog
    from earshot.errors import CatalogError

    try:
        Catalog.open(path, readonly=True).close()
    except CatalogError as exc:
        print(f"not reusing {path}: {exc}", file=sys.stderr)
        return False
    return True


def ensure_large_catalog(path: Path, known: list[CorpusTrack], unknown: list[CorpusTrack],
                         cache: Path) -> dict[str, Any]:
    """The known songs plus more Debian soundtracks (never the unknown songs), at least
    LARGE_CATALOG_MIN_HOURS, built once with `earshot ingest` and compacted; reused while it
    holds exactly what this split asks for. `cache` is where archives are unpacked."""
    marker = path.parent / (path.name + ".json")
    if marker.exists() and (path / "data.mdb").exists():
        info = json.loads(marker.read_text())
        sources = set(info["sources"])
        if (info["hours"] >= LARGE_CATALOG_MIN_HOURS and not {str(t.path) for t in unknown} & sources
                and {str(t.path) for t in known} <= sources and catalog_opens(path)):
            print(f"reusing the catalog {path} ({info['hours']:.2f} h)", file=sys.stderr)
            return info
    if path.exists():
        shutil.rmtree(path)     # another split, or built by an older earshot: build it afresh
    extra_packages = ensure_packages(EXTRA_PACKAGES)
    extra = build_corpus(extra_packages, cache)
    files = [t.path for t in known] + [t.path for t in extra]
    hours = sum(t.duration_s for t in known + extra) / 3600
    print(f"ingesting {len(files)} files ({hours:.2f} h) into {path} ...", file=sys.stderr)
    t0 = time.perf_counter()
    # ingest compacts the file when it is done (full pages, no free ones), as for a user
    subprocess.run([sys.executable, "-m", "earshot", "ingest", "--catalog", str(path), "-q",
                    *map(str, files)], check=True)
    info = catalog_figures(path)
    info.update(packages=list(PACKAGES) + extra_packages,
                known_hours=sum(t.duration_s for t in known) / 3600,
                extra_hours=sum(t.duration_s for t in extra) / 3600,
                ingest_s=time.perf_counter() - t0)
    leaked = {str(t.path) for t in unknown} & set(info["sources"])
    if leaked:
        raise SystemExit(f"{path}: holds songs meant to be unknown: {sorted(leaked)[:3]}")
    marker.write_text(json.dumps(info, indent=1))
    return info
