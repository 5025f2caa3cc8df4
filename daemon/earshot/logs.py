"""Where log lines go: the journal with structured fields under systemd, readable lines otherwise.

systemd says "your stderr is the journal" by setting $JOURNAL_STREAM to the device and inode
of that stream. Then each record goes to the journal once, through systemd-python, with
fields a user can filter on: `log.info("...", extra={"earshot_event": "match",
"earshot_track_id": 3})` becomes EARSHOT_EVENT=match EARSHOT_TRACK_ID=3
(`journalctl -u earshot EARSHOT_EVENT=match`). systemd-python's own JournalHandler would
pass such extras on in lower case, which journald drops (field names must be upper case),
hence the small handler here. Without systemd-python the lines still reach the journal
through stderr, with a "<N>" priority prefix journald understands.

Anywhere else: "2026-11-22 10:00:00 earshot.listener INFO message" lines on stderr.
Strings registered with hide() (passwords) are replaced by *** in every line and field.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error", "critical")
STDERR_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
STDERR_DATEFMT = "%Y-%m-%d %H:%M:%S"
EXTRA_PREFIX = "earshot_"  # extra={"earshot_x": ...} becomes the journal field EARSHOT_X
IDENTIFIER = "earshot"
MASK = "***"
_FIELD_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_]*$")  # journald's rule (no leading _: trusted fields)



class Redactor:
    """The secrets of this process (passwords), replaced by *** wherever they would appear."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def secrets(self) -> list[str]:
        with self._lock:
            return list(self._secrets)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text


def hide(secret: str | None) -> None:
    """Never let this string reach a log line or field (call after configure())."""
    if not secret:
        return
    for handler in logging.getLogger().handlers:
        redactor = getattr(handler, "redactor", None)
        if isinstance(redactor, Redactor):
            redactor.add(secret)


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """$JOURNAL_STREAM ("DEV:INODE") names the stream `fd` is connected to."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def syslog_priority(levelno: int) -> int:
    """Python level -> syslog priority (journald's PRIORITY)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def journal_fields(record: logging.LogRecord, redact: Callable[[str], str] = str) -> dict[str, str | int]:
    """The journal fields of a record besides MESSAGE: priority, origin, earshot_* extras
    (CODE_LINE an int, as systemd.journal.send wants it; everything else text)."""
    fields: dict[str, str | int] = {
        "PRIORITY": str(syslog_priority(record.levelno)),
        "LOGGER": record.name,
        "THREAD_NAME": record.threadName or "",
        "CODE_FILE": record.pathname,
        "CODE_LINE": record.lineno,
        "CODE_FUNC": record.funcName,
        "SYSLOG_IDENTIFIER": IDENTIFIER,
    }
    for key, value in record.__dict__.items():
        if value is None:
            continue
        if key.startswith(EXTRA_PREFIX):
            name = key.upper()
        elif _FIELD_NAME.match(key):  # extra={"MESSAGE_ID": ...} passes through as it is
            name = key
        else:
            continue
        if _FIELD_NAME.match(name):
            fields[name] = redact(value if isinstance(value, str) else str(value))
    return fields


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor, fmt: str, datefmt: str | None = None):
        super().__init__(fmt, datefmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class JournalFieldsHandler(logging.Handler):
    """Sends each record to the journal as MESSAGE plus journal_fields()."""

    def __init__(self, send: Callable[..., Any] | None = None):
        super().__init__()
        if send is None:  # ImportError when systemd-python is missing
            send = importlib.import_module("systemd.journal").send
        self._send = send
        self.redactor = Redactor()
        self.setFormatter(_RedactingFormatter(self.redactor, "%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(self.format(record), **journal_fields(record, self.redactor))
        except Exception:  # noqa: BLE001 - logging's convention: handleError reports it
            self.handleError(record)


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (tests swap it)."""

    def __init__(self, redactor: Redactor, stream: TextIO | None = None):
        super().__init__(stream)
        self._fixed = stream
        self.redactor = redactor

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._fixed = value


class _PrefixFormatter(_RedactingFormatter):
    """"<6>earshot.listener: message": journald reads the priority from the prefix."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.splitlines())


def configure(level: str = "info", journal: bool | None = None,
              stream: TextIO | None = None) -> str:
    """Set up the root logger once per process (again replaces the earlier setup).

    `journal`: None = when stderr is the journal. Returns where the lines go:
    "journal" (structured), "journal-stream" (stderr with priority prefixes) or "stderr".
    """
    name = level.lower()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if journal is None:
        journal = stderr_is_journal()
    handler: logging.Handler
    redactor = Redactor()
    where = "stderr"
    if journal:
        try:
            handler = JournalFieldsHandler()
            redactor = handler.redactor
            where = "journal"
        except ImportError:
            handler = _CurrentStderrHandler(redactor, stream)
            handler.setFormatter(_PrefixFormatter(redactor, "%(name)s: %(message)s"))
            where = "journal-stream"
    else:
        handler = _CurrentStderrHandler(redactor, stream)
        handler.setFormatter(_RedactingFormatter(redactor, STDERR_FORMAT, STDERR_DATEFMT))
    handler.set_name("earshot")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "earshot"]:
        old_redactor = getattr(old, "redactor", None)
        if isinstance(old_redactor, Redactor):  # secrets hidden before stay hidden
            redactor.add(*old_redactor.secrets())
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name.upper())
    logging.captureWarnings(True)
    return where
