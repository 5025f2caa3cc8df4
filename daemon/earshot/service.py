"""The service: config, catalog, listener, publisher and systemd, wired and supervised.

`earshot run` calls `Service.run()`. It opens the catalog and the audio input, then tells
systemd READY=1 (never waiting for the broker), keeps STATUS= current in words, sends
WATCHDOG=1 only while audio flows and the pipeline keeps up, reloads config and catalog on
SIGHUP (a bad new config is refused and the old one kept), and on SIGTERM/SIGINT stops
capture, ends the song playing, delivers what must be sent, publishes `offline` and exits 0.
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .audio.decode import Limits
from .audio.sources import Source, open_source
from .catalog import Catalog
from .config import Config, load_config
from .errors import CatalogError, ConfigError, DeviceError, EarshotError
from .events import EventBase, utc_now
from .listener import Listener
from .pipeline import audio_clock_stamp, wall_clock_stamp
from .sdnotify import Notifier

log = logging.getLogger(__name__)
STATUS_EVERY_S = 5.0


@dataclass(frozen=True)
class RunOptions:
    """What the command line adds to the config."""

    input: str | None = None          # overrides [listen] input
    fast: bool = False                # files: as fast as the pipeline goes
    rate: int | None = None           # stdin
    channels: int | None = None
    format: str = "s16le"
    catalog: Path | None = None
    config_path: Path | None = None
    duration_s: float | None = None   # stop after this much audio (tests, demos)
    stdout: bool = False              # JSON lines on stdout even when publishing over MQTT
    wait_for_input: bool = False      # a microphone missing at start is waited for (the unit)


class JsonLinesSink:
    """Events as one JSON object per line (stdout by default), flushed per line."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, event: EventBase) -> None:
        line = event.to_json()
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def open_catalog(config: Config, override: Path | None) -> Catalog:
    path = override or config.catalog_path
    if not Path(path).exists():
        raise CatalogError(f"no catalog at {path}: build one with `earshot ingest --catalog {path} MUSIC_FOLDER`")
    return Catalog.open(Path(path), readonly=True)


class Service:
    def __init__(self, config: Config, options: RunOptions, *, stdout: TextIO | None = None):
        self.config = config
        self.options = options
        self.notifier = Notifier.from_env()
        self.stdout = stdout
        self.catalog: Catalog | None = None
        self.listener: Listener | None = None
        self.publisher: Any = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._status = ""

    # -- parts -----------------------------------------------------------------------------
    def _source_factory(self) -> Callable[[], Source]:
        o, c = self.options, self.config
        spec = o.input or c.listen.input
        limits = Limits(max_bytes=int(c.limits.max_file_mb * 1024 * 1024),
                        max_seconds=float(c.limits.max_duration_min * 60))
        return lambda: open_source(spec, channels=o.channels or c.listen.channels, realtime=not o.fast,
                                   limits=limits, rate=o.rate, fmt=o.format)  # type: ignore[arg-type]

    def _sink(self) -> Callable[[EventBase], None]:
        if self.config.mqtt.enabled:
            from .mqtt.publisher import Publisher

            self.publisher = Publisher(self.config.mqtt, self.config.state_dir, self.handle_command)
            self.publisher.start()
            if not self.options.stdout:
                return self.publisher.publish
            publish, lines = self.publisher.publish, JsonLinesSink(self.stdout)

            def both(event: EventBase) -> None:
                publish(event)
                if event.event == "health":   # as published: with the spool's depth
                    event = event.model_copy(update={"spool_depth": self.publisher.spool_depth})
                lines(event)
            return both
        return JsonLinesSink(self.stdout)

    # -- commands (MQTT `cmd`) ----------------------------------------------------------------
    def handle_command(self, name: str, args: dict) -> dict:
        listener = self.listener
        if listener is None:
            raise EarshotError("not listening yet")
        if name == "pause":
            return listener.pause()
        if name == "resume":
            return listener.resume()
        if name == "identify_now":
            return listener.identify_now()
        if name == "health":
            health = listener.health()
            if self.publisher is not None:
                self.publisher.publish(health)
            return health.to_json_dict()
        if name == "reload":
            self._reload.set()
            return {"reload": "requested"}
        raise EarshotError(f"unknown command {name!r}")

    # -- the main thread -----------------------------------------------------------------------
    def run(self) -> int:
        self.catalog = open_catalog(self.config, self.options.catalog)
        factory = self._source_factory()
        try:
            source: Source | None = factory()   # DeviceError / AudioError / UsageError: nothing started yet
        except DeviceError:
            if not self.options.wait_for_input:
                raise
            source = None                       # a microphone: the listener waits for it
        stamp = audio_clock_stamp(utc_now()) if source is not None and not source.info.realtime else wall_clock_stamp
        sink = self._sink()
        first = [source] if source is not None else []
        self.listener = Listener(self.config, self.catalog,
                                 lambda: first.pop() if first else factory(), sink, stamp=stamp)
        try:
            self.listener.start(wait_for_input=self.options.wait_for_input)
        except EarshotError:
            self._stop_publisher()
            raise
        self._install_signals()
        self._update_status(force=True)
        self.notifier.ready(self._status)
        log.info("ready: %s", self._status)
        try:
            self._supervise()
        finally:
            self._shutdown()
        return 0 if self.listener.state != "failed" else 1

    def _supervise(self) -> None:
        listener = self.listener
        assert listener is not None
        interval = self.notifier.watchdog_interval_s()
        next_watchdog = time.monotonic()
        next_status = time.monotonic() + STATUS_EVERY_S
        while not self._stop.is_set():
            if listener.finished.is_set():
                return
            if self.options.duration_s is not None and listener.audio_s >= self.options.duration_s:
                return
            if self._reload.is_set():
                self._reload.clear()
                self._do_reload()
            now = time.monotonic()
            if interval is not None and now >= next_watchdog:
                if listener.keeping_up():
                    self.notifier.watchdog()
                else:
                    log.warning("watchdog withheld: audio not flowing or pipeline behind")
                next_watchdog = now + interval
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self._update_status()
            self._stop.wait(0.1 if interval is None else min(0.1, interval / 4))

    def _update_status(self, force: bool = False) -> None:
        assert self.listener is not None
        text = self.listener.status_text()
        if self.publisher is not None:
            text += "; " + self.publisher.status_text()
        if force or text != self._status:
            self._status = text
            if not force:
                self.notifier.status(text)

    def _do_reload(self) -> None:
        """SIGHUP: read the config and reopen the catalog; keep running on the old ones if
        the new config is bad."""
        self.notifier.reloading()
        try:
            config = load_config(self.options.config_path)
            catalog = open_catalog(config, self.options.catalog)
        except (ConfigError, CatalogError) as exc:
            log.error("reload refused, still running on the previous configuration: %s", exc)
            self.notifier.ready(self._status)
            return
        old_catalog = self.catalog
        assert self.listener is not None
        self.listener.reload(config, catalog)
        self.config, self.catalog = config, catalog
        if old_catalog is not None and old_catalog is not catalog:
            old_catalog.close()
        log.info("configuration and catalog reloaded (%d tracks)", catalog.track_count())
        self._update_status(force=True)
        self.notifier.ready(self._status)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def stop(self) -> None:
        self._stop.set()

    def _shutdown(self) -> None:
        self.notifier.stopping("stopping: ending capture, delivering events")
        if self.listener is not None:
            self.listener.stop()
        self._stop_publisher()
        if self.catalog is not None:
            self.catalog.close()

    def _stop_publisher(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()


def describe_devices() -> list[dict[str, Any]]:
    """Input devices PortAudio sees (for `earshot run --list-devices`)."""
    from .audio.sources import load_sounddevice
    sd = load_sounddevice()
    out = []
    for d in sd.query_devices():
        if d.get("max_input_channels", 0) > 0:
            out.append({"name": d["name"], "channels": d["max_input_channels"],
                        "default_rate": d["default_samplerate"], "hostapi": d.get("hostapi")})
    return out


def dump_devices(stream: TextIO | None = None) -> None:
    for d in describe_devices():
        (stream or sys.stdout).write(json.dumps(d) + "\n")
