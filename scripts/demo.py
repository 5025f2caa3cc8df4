#!/usr/bin/env python3
"""earshot's demo: build a catalog from real music, then recognise damaged excerpts of it.

Uses the Battle for Wesnoth soundtrack (Debian package `wesnoth-1.16-music`, installed when
run as root). Six songs go into a fresh catalog; excerpts are cut from them and damaged the
way rooms damage music (noise, reverberation, a deck running fast, a phone's band-limited
codec); one excerpt comes from a song that is not in the catalog and must not match.
Exits non-zero if a demo excerpt is not recognised, or the unknown one is.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from earshot.audio.decode import Audio, decode
from earshot.audio.resample import mix_mono
from earshot.catalog import Catalog
from earshot.identify import identify_audio
from earshot.ingest import prepare_file
from earshot.testing import damage as dmg

PACKAGE = "wesnoth-1.16-music"
MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
SONGS = ["battle.ogg", "casualties_of_war.ogg", "elvish-theme.ogg", "frantic.ogg",
         "heroes_rite.ogg", "knolls.ogg"]
UNKNOWN = "loyalists.ogg"


def ensure_music() -> None:
    if MUSIC.is_dir():
        return
    if os.geteuid() != 0:
        sys.exit(f"demo: needs the {PACKAGE} package: run `sudo apt-get install {PACKAGE}` or `sudo make demo`")
    print(f"installing {PACKAGE} (real music for the demo) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", PACKAGE], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> int:
    ensure_music()
    songs = [MUSIC / s for s in SONGS if (MUSIC / s).exists()]
    with tempfile.TemporaryDirectory(prefix="earshot-demo-") as tmp:
        path = Path(tmp) / "catalog"
        print(f"\n== building a catalog of {len(songs)} songs in {path}")
        t0 = time.monotonic()
        with Catalog.open(path, create=True) as cat:
            items = [prepare_file(s, cat.params) for s in songs]
            for (tid, _), it in zip(cat.add_tracks(items), items):
                print(f"   #{tid} {it.title} — {it.artist or '?'} ({it.duration_s / 60:.1f} min)")
            st = cat.stats()
        print(f"   {st.hours * 60:.0f} min of music, {st.postings} hashes, "
              f"{st.file_bytes / 1e6:.1f} MB, in {time.monotonic() - t0:.1f} s")

        rng = np.random.default_rng(2026)
        damages = dmg.standard_damages()
        plan = [(songs[0], "clean"), (songs[1], "pink0"), (songs[2], "reverb1.0"),
                (songs[3], "speed+5"), (songs[4], "lowpass3k-mp3"), (songs[5], "room"),
                (MUSIC / UNKNOWN, "clean")]
        print("\n== identifying 10 s excerpts (damaged like a room would)")
        failures = 0
        with Catalog.open(path, readonly=True) as cat:
            for song, name in plan:
                audio = decode(song)
                mono = mix_mono(audio.samples)
                start = int(rng.integers(0, len(mono) - 12 * audio.sample_rate))
                q = dmg.apply(damages[name], mono, audio.sample_rate, start, 10 * audio.sample_rate, rng)
                t = time.perf_counter()
                m = identify_audio(cat, Audio(q[:, None], audio.sample_rate))
                ms = (time.perf_counter() - t) * 1000
                known = song.name != UNKNOWN
                truth = f"{song.stem} at {start / audio.sample_rate:5.1f} s" if known else "an unknown song"
                if m is None:
                    got, ok = "no match", not known
                else:
                    got = f"{m.track.title} at {m.offset_s:5.1f} s (confidence {m.confidence:.3f})"
                    ok = known and m.track.source == str(song.resolve()) and abs(m.offset_s - start / audio.sample_rate) < 1
                failures += not ok
                print(f"   {'ok ' if ok else 'BAD'} {name:14s} {truth:34s} → {got}  [{ms:.0f} ms]")
    print(f"\n== loudness of {songs[0].name} (earshot analyze)")
    subprocess.run([sys.executable, "-m", "earshot", "analyze", "--no-cache", str(songs[0])], check=False)
    print("\nall excerpts recognised correctly" if not failures else f"\n{failures} excerpt(s) wrong")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
