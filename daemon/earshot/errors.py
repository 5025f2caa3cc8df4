"""earshot's exceptions: each says what went wrong in words a user can act on."""
from __future__ import annotations


class EarshotError(Exception):
    """Base of every error earshot reports to a user (never shown as a traceback)."""

    exit_code = 1


class UsageError(EarshotError):
    """The command line asks for something impossible."""

    exit_code = 2


class AudioError(EarshotError):
    """An audio input could not be read: missing, not audio, corrupt or out of bounds."""

    exit_code = 65  # EX_DATAERR


class CatalogError(EarshotError):
    """The catalog is missing, not a catalog, or built with other parameters."""

    exit_code = 66  # EX_NOINPUT


class CatalogInUse(CatalogError):
    """The catalog is open in another process (the daemon?), so it cannot be rewritten now."""


class CatalogWriteError(CatalogError):
    """A write to the catalog failed (e.g. its disk is full): nothing of that write was stored
    and everything stored before is intact."""

    exit_code = 74  # EX_IOERR


class ConfigError(EarshotError):
    """The configuration is invalid."""

    exit_code = 78  # EX_CONFIG


class DeviceError(EarshotError):
    """The audio input device is missing or cannot be opened."""

    exit_code = 69  # EX_UNAVAILABLE
