"""The `earshot` command line: one module per subcommand, errors as one clear line.

Exit codes: 0 success; 1 some inputs failed (the rest done); 2 usage error;
65 bad audio input; 66 catalog missing or unusable; 69 audio device missing;
74 a write to the catalog failed (a full disk; nothing stored before is lost);
78 configuration error.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .. import __version__
from ..errors import EarshotError
from ..logs import LEVELS
from ..logs import configure as configure_logging

# subcommand name -> module in this package that defines `register(subparsers)`
COMMANDS = {
    "ingest": "ingest",
    "identify": "identify",
    "catalog": "catalog",
    "analyze": "analyze",
    "config": "config",
    "mqtt": "mqtt",
    "run": "run",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earshot",
        description="Recognise songs and measure loudness, from files or a microphone.",
    )
    parser.add_argument("--version", action="version", version=f"earshot {__version__}")
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument("--log-level", choices=LEVELS, type=str.lower,
                        help="log detail (default: info for `run`, warning for the others)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise
            continue  # a command still being built
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    # a command module may set_defaults(log_level_default="info"); journal or stderr: logs.py
    configure_logging(args.log_level or getattr(args, "log_level_default", "warning"))
    try:
        return int(args.handler(args) or 0)
    except EarshotError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("earshot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
