"""`earshot catalog stats | list | remove | search | compact`."""
from __future__ import annotations

import argparse
import sys

from ..catalog import Catalog
from ..errors import UsageError
from .common import (add_catalog_option, catalog_path, compact_and_say, config_from_args,
                     open_catalog_for_reading, print_json)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="inspect or edit the catalog",
                       description="Inspect or edit the song catalog.")
    cmds = p.add_subparsers(dest="catalog_command", metavar="ACTION")
    s = cmds.add_parser("stats", help="size of the catalog")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=stats)
    ls = cmds.add_parser("list", help="every track")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=list_tracks)
    rm = cmds.add_parser("remove", help="remove a track and all its postings")
    rm.add_argument("track_id", type=int, metavar="TRACK")
    rm.set_defaults(handler=remove)
    se = cmds.add_parser("search", help="fuzzy search by title or artist")
    se.add_argument("text", nargs="+")
    se.add_argument("--limit", type=int, default=10)
    se.add_argument("--json", action="store_true")
    se.set_defaults(handler=search)
    co = cmds.add_parser("compact", help="rewrite the catalog file without free space "
                         "(stop the daemon first)")
    co.set_defaults(handler=compact)
    for sp in (s, ls, rm, se, co):
        add_catalog_option(sp)
    p.set_defaults(handler=lambda a: (p.print_help(), 2)[1])


def stats(args: argparse.Namespace) -> int:
    with open_catalog_for_reading(catalog_path(args, config_from_args(args))) as cat:
        st = cat.stats()
    if args.json:
        print_json(st.__dict__)
        return 0
    per_hour = st.file_bytes / st.hours / 1e6 if st.hours else 0.0
    print(f"catalog      {st.path}")
    print(f"tracks       {st.tracks} ({st.with_levels} with band levels)")
    print(f"audio        {st.hours:.2f} h")
    print(f"postings     {st.postings}  ({st.distinct_hashes} distinct hashes)")
    print(f"file size    {st.file_bytes / 1e6:.1f} MB ({per_hour:.1f} MB per hour of audio)")
    return 0


def _line(t: object) -> str:
    from ..catalog import Track

    assert isinstance(t, Track)
    who = f" — {t.artist}" if t.artist else ""
    album = f" ({t.album})" if t.album else ""
    return f"#{t.track_id:<5} {t.title}{who}{album}  [{t.duration_s / 60:.1f} min]"


def list_tracks(args: argparse.Namespace) -> int:
    with open_catalog_for_reading(catalog_path(args, config_from_args(args))) as cat:
        tracks = cat.tracks()
    for t in tracks:
        print_json(t.to_json()) if args.json else print(_line(t))
    return 0


def remove(args: argparse.Namespace) -> int:
    path = catalog_path(args, config_from_args(args))
    with Catalog.open(path) as cat:
        t = cat.remove_track(args.track_id)
    print(f"removed #{t.track_id} {t.title}", file=sys.stderr)
    return 0


def search(args: argparse.Namespace) -> int:
    # imported here: every command's parser is built for `earshot run` too, and the daemon
    # has no use for rapidfuzz's 2.4 MB
    from rapidfuzz import fuzz, process, utils

    text = " ".join(args.text).strip()
    if not text:
        raise UsageError("search needs some text")
    with open_catalog_for_reading(catalog_path(args, config_from_args(args))) as cat:
        tracks = cat.tracks()
    choices = {t.track_id: " ".join(x for x in (t.title, t.artist or "", t.album or "") if x) for t in tracks}
    found = process.extract(text, choices, scorer=fuzz.WRatio, processor=utils.default_process,
                            limit=args.limit, score_cutoff=60)
    by_id = {t.track_id: t for t in tracks}
    for _, score, tid in found:
        t = by_id[tid]
        if args.json:
            print_json({**t.to_json(), "score": round(score, 1)})
        else:
            print(f"{_line(t)}  (score {score:.0f})")
    return 0 if found else 1


def compact(args: argparse.Namespace) -> int:
    path = catalog_path(args, config_from_args(args))
    with Catalog.open(path) as cat:
        compact_and_say(cat)
    return 0
