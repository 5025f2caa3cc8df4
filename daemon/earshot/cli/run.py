"""`earshot run`: listen, recognise, measure; events as JSON lines or over MQTT.

Exit codes: 0 clean stop (or the input ended); 66 no usable catalog; 69 the audio device
is missing or cannot be opened (unless --wait-for-input); 65 an input file cannot be read;
78 a bad config.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..service import RunOptions, Service, dump_devices
from .common import add_catalog_option, config_from_args


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="listen continuously: recognise songs, measure loudness, publish events",
        description="Listen to a microphone (or a file, or raw PCM on stdin), recognise what plays "
        "and measure the room's loudness. Without a broker in the config, events are printed as "
        "JSON lines on stdout (one object per line with an `event` field). Ctrl-C stops cleanly.")
    p.add_argument("--input", metavar="SPEC", help="mic | mic:NAME | file:PATH | - (default: [listen] input)")
    p.add_argument("--fast", action="store_true", help="file input: as fast as possible instead of real time")
    p.add_argument("--rate", type=int, help="stdin input: sample rate (Hz)")
    p.add_argument("--channels", type=int, help="channels to capture (stdin: channels in the stream)")
    p.add_argument("--format", default="s16le", choices=["s16le", "s32le", "f32le"], help="stdin input: sample format")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    p.add_argument("--stdout", action="store_true", help="also print the events as JSON lines when publishing over MQTT")
    p.add_argument("--wait-for-input", action="store_true",
                   help="a microphone missing at start is waited for (retrying with backoff, as after "
                   "a loss) instead of exiting with 69; the systemd unit runs with this")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    add_catalog_option(p)
    p.set_defaults(handler=run, log_level_default="info")


def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        dump_devices()
        return 0
    config = config_from_args(args)
    options = RunOptions(
        input=args.input, fast=args.fast, rate=args.rate, channels=args.channels, format=args.format,
        catalog=Path(args.catalog) if args.catalog else None,
        config_path=Path(args.config) if args.config else None, duration_s=args.duration,
        stdout=args.stdout, wait_for_input=args.wait_for_input,
    )
    return Service(config, options).run()
