"""`earshot identify FILE…`: name the catalog song each file is an excerpt of."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..audio.decode import Audio, decode
from ..catalog import Catalog
from ..errors import AudioError
from ..identify import identify_audio
from ..matcher import Match
from ..plots import check_plot_target, numbered_paths
from .common import (
    add_catalog_option,
    catalog_path,
    config_from_args,
    limits_from,
    open_catalog_for_reading,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "identify", help="recognise songs in audio files",
        description="Recognise which catalog track each file is an excerpt of, and where in it. "
        "Exit status 0 when every file was read (matched or not), 1 when some could not be read.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (5-10 s excerpts are plenty)")
    add_catalog_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument("--min-confidence", type=float, metavar="C",
                   help="report matches at least this sure (0-1; default from the config)")
    p.add_argument("--no-speed-search", action="store_true",
                   help="assume the audio plays at its catalogued speed (faster)")
    p.add_argument("--plot", metavar="OUT.png",
                   help="also draw why each file matched or not: its spectrogram with the hashes "
                   "that matched, and the offset histograms of the best track and the runner-up "
                   "(.png, .svg or .pdf; with several files OUT-1.png, OUT-2.png… in order; "
                   "needs matplotlib: pip install 'earshot[plot]')")
    p.set_defaults(handler=run)


def _format_position(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    return f"{sign}{int(seconds // 60)}:{seconds % 60:04.1f}"


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    limits = limits_from(config)
    min_conf = args.min_confidence if args.min_confidence is not None else config.recognition.min_confidence
    if not 0.0 <= min_conf <= 1.0:
        raise AudioError("--min-confidence must be between 0 and 1") from None
    speed_search = config.recognition.speed_search and not args.no_speed_search
    pictures: list[Path | None] = [None] * len(args.files)
    if args.plot:
        pictures = list(numbered_paths(check_plot_target(args.plot), len(args.files)))
    failed = 0
    with open_catalog_for_reading(catalog_path(args, config)) as catalog:
        for name, picture in zip(args.files, pictures):
            path = Path(name)
            try:
                audio = decode(path, limits)
            except AudioError as exc:
                failed += 1
                if args.json:
                    print_json({"file": str(path), "match": None, "error": str(exc)})
                print(f"earshot: {exc}", file=sys.stderr)
                continue
            if picture is None:
                match = identify_audio(catalog, audio, min_confidence=min_conf, speed_search=speed_search)
            else:
                match = _explain_and_draw(catalog, audio, path, picture, min_conf, speed_search)
            if args.json:
                out = {"file": str(path), "match": match.to_json() if match else None}
                print_json(out | ({"plot": str(picture)} if picture else {}))
            elif match is None:
                print(f"{path}: no match")
            else:
                t = match.track
                who = f" — {t.artist}" if t.artist else ""
                album = f" ({t.album})" if t.album else ""
                speed = f", playing {100 * (match.speed - 1):+.1f}% fast" if match.speed != 1.0 else ""
                print(f"{path}: {t.title}{who}{album} at {_format_position(match.offset_s)}, "
                      f"confidence {match.confidence:.3f}{speed} [track #{t.track_id}]")
            if picture is not None and not args.json:
                print(f"  picture: {picture}")
            sys.stdout.flush()
    return 1 if failed else 0


def _explain_and_draw(catalog: Catalog, audio: Audio, path: Path, picture: Path,
                      min_conf: float, speed_search: bool) -> Match | None:
    """Identify through the explanation (the same match) and draw it."""
    from ..explain import explain_audio
    from ..plots import identify_figure, save_figure

    expl = explain_audio(catalog, audio, min_confidence=min_conf, speed_search=speed_search)
    save_figure(identify_figure(expl, path.name), picture)
    return expl.match
