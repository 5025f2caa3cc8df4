"""MQTT publishing with Home Assistant discovery: topics, discovery payloads, the disk
spool, commands, and the Publisher the service talks to."""
from __future__ import annotations

from .commands import CommandError, CommandHandler
from .publisher import Publisher

__all__ = ["CommandError", "CommandHandler", "Publisher"]
