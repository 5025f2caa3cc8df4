"""`earshot config check [FILE]` and `earshot config show`: is the config valid, what is in force.

Both read what the daemon would read: the file (FILE, `--config`, `$EARSHOT_CONFIG`, then
/etc/earshot/earshot.toml), else the defaults, plus the `EARSHOT_<SECTION>__<KEY>`
environment overrides. An invalid config exits 78 (EX_CONFIG) listing every error.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import config_file, load_config
from ..config_env import find_overrides
from ..config_toml import render


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="check or show the configuration",
                       description="Check a configuration file, or show the configuration in force.")
    actions = p.add_subparsers(dest="config_action", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check", help="validate a config file (exit 0: OK, 78: every error listed)",
        description="Validate a configuration file and the EARSHOT_* environment overrides. "
        "Prints 'OK: FILE' and exits 0, or lists every error with its field path and what is "
        "accepted, and exits 78.")
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="the file to check (default: the one earshot would read)")
    check.set_defaults(handler=run_check)

    show = actions.add_parser(
        "show", help="print the effective configuration as TOML (secrets masked)",
        description="Print the configuration in force (file, defaults and environment "
        "overrides) as TOML; secrets are shown as ***.")
    # SUPPRESS: without --config here, the global `earshot --config FILE config show` stands
    show.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                      help="configuration file (TOML)")
    show.set_defaults(handler=run_show)


def _chosen_file(args: argparse.Namespace) -> Path | None:
    given = getattr(args, "file", None) or getattr(args, "config", None)
    return Path(given) if given else None


def _override_names() -> list[str]:
    from ..config import Config

    overrides, _ = find_overrides(os.environ, Config)
    return [o.variable for o in overrides]


def _describe_source(path: Path | None) -> str:
    source = str(path) if path else "built-in defaults (no config file)"
    names = _override_names()
    if names:
        source += f" + environment: {', '.join(names)}"
    return source


def run_check(args: argparse.Namespace) -> int:
    explicit = _chosen_file(args)
    load_config(explicit)  # raises ConfigError (exit 78) listing every problem
    print(f"OK: {_describe_source(config_file(explicit))}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    explicit = _chosen_file(args)
    config = load_config(explicit)
    header = (f"effective earshot configuration\nfrom: {_describe_source(config_file(explicit))}\n"
              "secrets are shown as ***")
    sys.stdout.write(render(config, header))
    return 0
