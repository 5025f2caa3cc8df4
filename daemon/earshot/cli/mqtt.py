"""`earshot mqtt purge`: remove this device's retained topics (Home Assistant discovery
configs, status, now_playing) from the broker configured in [mqtt]."""
from __future__ import annotations

import argparse

from ..errors import ConfigError
from .common import config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mqtt", help="MQTT housekeeping", description="MQTT housekeeping.")
    cmds = p.add_subparsers(dest="mqtt_command", metavar="ACTION")
    pu = cmds.add_parser(
        "purge", help="remove this device from Home Assistant (its retained discovery configs and state)",
        description="Remove the device's retained Home Assistant discovery configs and its retained "
        "state (status, now_playing) from the broker. Stop the service first, or it announces "
        "itself again when it reconnects.")
    pu.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                    help="configuration file (TOML); as `earshot --config FILE mqtt purge`")
    pu.add_argument("--device-id", metavar="ID", help="another device than [mqtt] device_id")
    pu.add_argument("--timeout", type=float, default=10.0, metavar="S", help="give up after S seconds")
    pu.set_defaults(handler=purge_command)
    p.set_defaults(handler=lambda a: (p.print_help(), 2)[1])


def purge_command(args: argparse.Namespace) -> int:
    from ..config import sanitise_device_id
    from ..mqtt.purge import purge

    section = config_from_args(args).mqtt
    if not section.enabled:
        raise ConfigError("[mqtt] host is not set: no broker to purge (set mqtt.host in the config)")
    device_id = sanitise_device_id(args.device_id) if args.device_id else section.device_id
    found = purge(section, device_id=device_id, timeout=args.timeout)
    where = f"{section.host}:{section.effective_port}"
    print(f"removed device {device_id} from {where}: {len(found)} retained topic(s) cleared")
    for topic in found:
        print(f"  {topic}")
    return 0
