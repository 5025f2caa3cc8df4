"""The listener: one audio source, the capture ring and the pipeline thread, supervised.

The pipeline thread takes hops from the ring, runs the pipeline and hands every event to
the sink (stdout JSON lines, or the MQTT publisher: both return at once). It also notices
when the device is lost (a stream error, or no audio for `stall_timeout_s`), reports it, and
reopens the device with a growing backoff; audio missed meanwhile counts as silence, so a
song that plays on across a short outage keeps its place. Commands from other threads
(pause, resume, identify now, health, reload) run on the pipeline thread between hops.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio.ring import Ring
from .audio.sources import Source, rescan_devices
from .catalog import Catalog
from .config import Config
from .errors import DeviceError, EarshotError
from .events import EventBase, HealthEvent, utc_now
from .pipeline import Pipeline, wall_clock_stamp

log = logging.getLogger(__name__)

Sink = Callable[[EventBase], None]
MAX_GAP_FILL_S = 30.0      # a longer outage is not bridged with silence (the song has ended)
RETRY_FIRST_S = 0.5        # the first retry after a loss; doubled up to [listen] retry_max_s
HEARTBEAT_LIMIT_S = 5.0    # the pipeline thread goes round its loop far more often than this


@dataclass
class Counters:
    overruns: int = 0
    dropped_frames: int = 0
    device_errors: int = 0
    last_error: str | None = None


class Listener:
    """Runs the pipeline on a source; thread-safe controls for the service and MQTT commands."""

    def __init__(
        self, config: Config, catalog: Catalog, open_source: Callable[[], Source], sink: Sink,
        *, stamp: Callable[[float], Any] | None = None,
    ):
        self.config = config
        self.catalog = catalog
        self._open_source = open_source
        self._sink = sink
        self._stamp = stamp or wall_clock_stamp
        self.source: Source | None = None
        self.ring: Ring | None = None
        self.pipeline: Pipeline | None = None
        self.counters = Counters()
        self.state = "starting"          # starting, ok, lost, paused, ended, stopped
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], Future]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._last_audio = time.monotonic()      # when audio last arrived in the ring
        self._last_hop = time.monotonic()        # when the pipeline last processed a hop
        self._retry_delay = RETRY_FIRST_S        # the next reopen's backoff
        self._heartbeat = time.monotonic()       # when the pipeline thread last went round its loop
        self._next_health = 0.0
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._audio_base_s = 0.0                 # audio of pipelines replaced after a format change
        self.finished = threading.Event()        # the input ended (files, stdin)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, wait_for_input: bool = False) -> None:
        """Open the source and start the pipeline thread. A device that cannot be opened is a
        DeviceError, or with `wait_for_input` the thread waits for it (a USB microphone
        plugged in after boot), retrying with backoff as after a loss."""
        try:
            self._attach(self._open_source())
            self.state = "ok"
        except DeviceError as exc:
            if not wait_for_input:
                raise
            self.counters.last_error = str(exc)
            self.state = "lost"
            log.warning("audio input not available (%s); waiting for it", exc)
        self._next_health = time.monotonic() + self.config.listen.health_interval_s
        self._thread = threading.Thread(target=self._run, name="earshot-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capture, process what was captured, end the song playing (its report is sent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.source is not None:
            self.source.stop()
        self.state = "stopped"

    def _attach(self, source: Source) -> None:
        info = source.info
        capacity = max(int(info.sample_rate * self.config.listen.ring_s), 4096)
        if self.ring is None or self.ring.channels != info.channels or self.ring.capacity != capacity:
            self.ring = Ring(capacity, info.channels)
        if self.pipeline is None or (self.pipeline.sample_rate, self.pipeline.channels) != (info.sample_rate, info.channels):
            if self.pipeline is not None:
                self._emit(self.pipeline.flush())
                self._audio_base_s += self.pipeline.stats.audio_s
            self.pipeline = self._new_pipeline(info.sample_rate, info.channels)
        self.source = source
        source.start(self.ring)
        # a freshly opened input counts as flowing and processed: the watchdog must not be
        # withheld in the moments before its first hop arrives
        self._last_audio = self._last_hop = time.monotonic()
        log.info("listening on %s at %g kHz, %d channel(s)", info.description, info.sample_rate / 1000, info.channels)

    def _new_pipeline(self, rate: int, channels: int) -> Pipeline:
        c = self.config
        return Pipeline(self.catalog, rate, channels, listen=c.listen, recognition=c.recognition,
                        loudness=c.loudness, stamp=self._stamp)

    # -- the pipeline thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.source is None:
                self._emit([self.health()])
                if not self._reopen(str(self.counters.last_error), time.monotonic()):
                    return
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported; the service decides what to do
            log.exception("the pipeline stopped: %s", exc)
            self.counters.last_error = f"pipeline failed: {exc}"
            self.state = "failed"
        finally:
            self.finished.set()

    def _loop(self) -> None:
        assert self.ring is not None and self.pipeline is not None
        buf = np.empty((0, 1), np.float32)
        while True:
            self._heartbeat = time.monotonic()
            self._run_commands()
            ring, source = self.ring, self.source
            assert ring is not None and source is not None and self.pipeline is not None
            hop = max(1, int(self.pipeline.sample_rate * self.config.listen.hop_s))
            if buf.shape[0] < hop or buf.shape[1] != ring.channels:
                buf = np.empty((hop, ring.channels), np.float32)
            now = time.monotonic()
            if self._stop.is_set():
                # drain what was captured, then end the song playing
                while ring.available:
                    self._process(ring.read(hop, buf))
                self._emit(self.pipeline.flush())
                return
            available = ring.available
            if available >= hop or (available and source.finished):
                block = ring.read(hop, buf)
                self._last_audio = self._last_hop = now
                self._retry_delay = RETRY_FIRST_S        # audio arrives: the next loss starts afresh
                if self.state != "paused":
                    self._process(block)
                continue
            if source.finished and not available:
                self._emit(self.pipeline.flush())
                self.state = "ended" if not source.error else "failed"
                if source.error:
                    self.counters.last_error = source.error
                    log.error("input failed: %s", source.error)
                self._emit([self.health()])
                return
            if source.error or (source.info.realtime and now - self._last_audio > self.config.listen.stall_timeout_s):
                self._recover(source.error or f"no audio for {now - self._last_audio:.1f} s")
                continue
            self._health_due(now)
            self._stop.wait(min(0.02, self.config.listen.hop_s / 4))

    def _process(self, block: np.ndarray) -> None:
        assert self.pipeline is not None
        self._emit(self.pipeline.process(block))
        self._health_due(time.monotonic())

    def _health_due(self, now: float) -> None:
        """A periodic health event, whether or not audio is arriving."""
        if now >= self._next_health:
            self._next_health = now + self.config.listen.health_interval_s
            self._emit([self.health()])

    def _emit(self, events: list[EventBase]) -> None:
        for e in events:
            _log_event(e)
            try:
                self._sink(e)
            except Exception:  # noqa: BLE001 - a sink must never stop the listener
                log.exception("could not deliver a %s event", e.event)

    # -- device loss ---------------------------------------------------------------------
    def _recover(self, reason: str) -> None:
        """Report the loss, retry with backoff until the device is back or we are stopped."""
        lost_at = time.monotonic()
        self.counters.device_errors += 1
        self.counters.last_error = reason
        self.state = "lost"
        old = self.source
        assert old is not None
        log.warning("audio input %s lost: %s; retrying", old.info.description, reason)
        old.stop()
        self._emit([self.health()])
        self._reopen(reason, lost_at)

    def _reopen(self, reason: str, lost_at: float) -> bool:
        """Try to open the input with a growing backoff until it opens (True) or we are
        stopped (False). The loop stays responsive meanwhile: commands run, health goes
        out, and the heartbeat shows the watchdog that the daemon is alive and trying."""
        while not self._stop.is_set():
            # the backoff keeps growing across an input that reopens but never delivers audio
            delay = self._retry_delay
            self._retry_delay = min(delay * 2, self.config.listen.retry_max_s)
            retry_at = time.monotonic() + delay
            while time.monotonic() < retry_at:
                self._heartbeat = time.monotonic()
                self._run_commands()
                self._health_due(self._heartbeat)
                if self._stop.wait(min(0.5, max(0.0, retry_at - time.monotonic()))):
                    return False
            try:
                rescan_devices()
                source = self._open_source()
                had_pipeline = self.pipeline is not None
                self._attach(source)
            except (DeviceError, EarshotError, OSError) as exc:
                self.counters.last_error = f"{reason}; reopening: {exc}"
                continue
            gap = time.monotonic() - lost_at
            if had_pipeline:
                self._bridge(gap)
            self.state = "ok"
            log.info("audio input %s after %.1f s", "back" if had_pipeline else "open", gap)
            self._emit([self.health()])
            return True
        return False

    def _bridge(self, gap_s: float) -> None:
        """Audio missed during an outage is fed as silence, so positions stay right; it is
        not judged (a song that plays on is still playing when the device is back)."""
        assert self.pipeline is not None
        gap_s = min(gap_s, MAX_GAP_FILL_S)
        rate, ch = self.pipeline.sample_rate, self.pipeline.channels
        hop = max(1, int(rate * self.config.listen.hop_s))
        zeros = np.zeros((hop, ch), np.float32)
        for _ in range(int(gap_s * rate) // hop):
            self._emit(self.pipeline.process(zeros, evaluate=False))

    # -- controls (any thread) ------------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run fn on the pipeline thread between hops and return its result."""
        if self._thread is None or not self._thread.is_alive():
            return fn()
        fut: Future = Future()
        self._commands.put((fn, fut))
        return fut.result(timeout)

    def _run_commands(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                fut.set_exception(exc)

    def pause(self) -> dict:
        def do() -> dict:
            if self.pipeline is None:
                raise EarshotError("no audio input yet: nothing to pause")
            if self.state != "paused":
                self._emit(self.pipeline.flush())
                self.state = "paused"
            return {"listening": False}
        return self.call(do)

    def resume(self) -> dict:
        def do() -> dict:
            if self.state == "paused" and self.pipeline is not None:
                self._audio_base_s += self.pipeline.stats.audio_s
                self.pipeline = self._new_pipeline(self.pipeline.sample_rate, self.pipeline.channels)
                self.state = "ok"
            return {"listening": True}
        return self.call(do)

    def identify_now(self) -> dict:
        """The current best guess, however unsure, with what NowPlaying thinks."""
        def do() -> dict:
            if self.pipeline is None:
                raise EarshotError("no audio input yet: nothing heard to identify")
            m = self.pipeline.best_guess()
            np_ = self.pipeline.nowplaying
            return {
                "state": np_.state,
                "best": None if m is None else {**m.to_json(), "speed": m.speed, "score": m.score},
                "threshold": self.config.listen.min_confidence,
                "position_s": None if np_.position_s(self.pipeline.stats.audio_s) is None
                else round(np_.position_s(self.pipeline.stats.audio_s), 3),
            }
        return self.call(do)

    def reload(self, config: Config, catalog: Catalog) -> None:
        """Use a new config and catalog; the pipeline restarts only if its settings changed."""
        def do() -> None:
            old = self.config
            self.config, self.catalog = config, catalog
            if self.pipeline is None:    # still waiting for the input: the next pipeline uses them
                return
            same = (old.listen, old.recognition, old.loudness) == (config.listen, config.recognition, config.loudness)
            if same and catalog.params == self.pipeline.params:
                self.pipeline.catalog = catalog
                self.pipeline.session.catalog = catalog
            else:
                self._emit(self.pipeline.flush())
                self._audio_base_s += self.pipeline.stats.audio_s
                self.pipeline = self._new_pipeline(self.pipeline.sample_rate, self.pipeline.channels)
        self.call(do)

    # -- state ---------------------------------------------------------------------------
    @property
    def audio_s(self) -> float:
        return self._audio_base_s + (self.pipeline.stats.audio_s if self.pipeline else 0.0)

    def keeping_up(self) -> bool:
        """For the watchdog: the pipeline thread is alive and going round its loop, and it
        keeps up with the audio that arrives. A stalled or lost input still feeds the
        watchdog while the thread retries (a restart would not bring a missing microphone
        back, and would end in systemd giving up on the service): only a pipeline that
        falls behind the audio, or a thread that hangs or died, starves it."""
        now = time.monotonic()
        alive = (self._thread is not None and self._thread.is_alive()
                 and now - self._heartbeat <= HEARTBEAT_LIMIT_S)
        if self.state == "lost":
            return alive
        if self.state not in ("ok", "paused") or self.ring is None or self.pipeline is None:
            return False
        hop = max(1, int(self.pipeline.sample_rate * self.config.listen.hop_s))
        waiting = self.ring.available
        behind = (waiting > self.ring.capacity // 2
                  or (waiting >= hop and now - self._last_hop > max(2.0, 4 * self.config.listen.hop_s)))
        return alive and not behind

    def health(self) -> HealthEvent:
        now, cpu = time.monotonic(), time.process_time()
        t0, c0 = self._cpu_mark
        self._cpu_mark = (now, cpu)
        ring = self.ring
        overflows = getattr(self.source, "input_overflows", 0) if self.source else 0
        info = self.source.info if self.source else None
        try:
            tracks = self.catalog.track_count()
        except Exception:  # noqa: BLE001 - a catalog being replaced: report, don't fail
            tracks = -1
        device_state = {"ok": "ok", "paused": "paused", "lost": "lost"}.get(self.state, "ended")
        return HealthEvent(
            ts=utc_now(), device=info.description if info else None, device_state=device_state,
            sample_rate=info.sample_rate if info else None,
            overruns=(ring.overruns if ring else 0) + overflows,
            dropped_frames=ring.dropped_frames if ring else 0,
            cpu_percent=round(100.0 * (cpu - c0) / max(now - t0, 1e-6), 2),
            audio_s=round(self.audio_s, 2), catalog_tracks=tracks,
            uptime_s=round(now - self._started, 1), device_errors=self.counters.device_errors,
            last_error=self.counters.last_error,
        )

    def status_text(self) -> str:
        """One line for systemd's STATUS=."""
        info = self.source.info if self.source else None
        where = f"{info.description} at {info.sample_rate / 1000:g} kHz" if info else "no input"
        if self.state == "lost" and self.source is None:
            return f"waiting for the audio input ({self.counters.last_error})"
        if self.state == "lost":
            return f"audio input lost ({self.counters.last_error}); retrying"
        if self.state == "paused":
            return f"paused (input {where})"
        text = f"listening on {where}"
        p = self.pipeline
        if p is not None and p.nowplaying.state == "playing" and p.nowplaying.song is not None:
            t = p.nowplaying.song.match.track
            text += f"; now playing: {t.title}" + (f" by {t.artist}" if t.artist else "")
        else:
            text += "; nothing recognised playing"
        return text


def _log_event(e: EventBase) -> None:
    """Events that matter also go to the log (the journal's EARSHOT_* fields when under systemd:
    `journalctl -u earshot EARSHOT_EVENT=match`)."""
    if e.event == "match":
        log.info("recognised %s at %.1f s (confidence %.4f)", e.title, e.offset_s, e.confidence,  # type: ignore[attr-defined]
                 extra={"earshot_event": "match", "earshot_track_id": e.track_id,  # type: ignore[attr-defined]
                        "earshot_event_id": e.id})
    elif e.event == "song_report":
        log.info("song ended: %s, heard %.0f s", e.track.title, e.duration_heard_s,  # type: ignore[attr-defined]
                 extra={"earshot_event": "song_report", "earshot_track_id": e.track.track_id,  # type: ignore[attr-defined]
                        "earshot_event_id": e.id})
    elif e.event == "now_playing":
        log.debug("now playing: %s (%s)", e.state, e.reason,  # type: ignore[attr-defined]
                  extra={"earshot_event": "now_playing", "earshot_event_id": e.id})
