"""Where live audio comes from: a microphone, a file, or raw PCM on stdin — one interface.

Each source writes float32 frames shaped (frames, channels) into the capture ring from its
own thread (the PortAudio callback for a microphone, a reader thread otherwise). A source
reports the end of its input (`finished`) and failures (`error`); it never raises into the
listener's loop. Files and stdin wait for space in the ring (nothing of a file is dropped);
a microphone cannot wait, so when the ring is full its block is dropped and counted.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import numpy as np

from ..errors import AudioError, DeviceError, UsageError
from .decode import Limits, check_input_file, decode
from .ring import Ring

PcmFormat = Literal["s16le", "s32le", "f32le"]
_PCM_DTYPES = {"s16le": ("<i2", 1 / 32768.0), "s32le": ("<i4", 1 / 2147483648.0), "f32le": ("<f4", 1.0)}
MAX_MIC_CHANNELS = 2


@dataclass(frozen=True)
class SourceInfo:
    description: str       # what the user would call it ("USB PnP Sound Device", a file name)
    sample_rate: int
    channels: int
    realtime: bool         # paced by a clock (a device, or a file played in real time)


class Source(Protocol):
    info: SourceInfo
    error: str | None
    finished: bool

    def start(self, ring: Ring) -> None: ...
    def stop(self) -> None: ...


# -- microphone ----------------------------------------------------------------------------
def load_sounddevice():
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library itself is missing
        raise DeviceError(f"PortAudio is not available ({exc}); install the libportaudio2 package") from None
    return sd


def rescan_devices() -> None:
    """PortAudio lists devices once, when initialised: re-initialise to see a device that
    has come back (or a sound server that was restarted)."""
    sd = load_sounddevice()
    try:
        sd._terminate()      # noqa: SLF001 - sounddevice has no public re-scan
    except Exception:        # noqa: BLE001 - already terminated
        pass
    sd._initialize()         # noqa: SLF001


def find_input_device(name: str | None) -> tuple[int, dict]:
    """The first input device whose name contains `name` (case-insensitive), or the default
    input when `name` is None. Raises DeviceError naming what exists."""
    sd = load_sounddevice()
    devices = list(sd.query_devices())
    inputs = [(i, d) for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]
    if name is None:
        default = sd.default.device[0] if isinstance(sd.default.device, (list, tuple)) else sd.default.device
        try:
            idx = int(default)
        except (TypeError, ValueError):
            idx = -1
        if idx < 0:
            try:
                idx = int(sd.query_devices(kind="input")["index"])
            except Exception:  # noqa: BLE001 - PortAudio says there is none
                idx = -1
        if idx < 0 or idx >= len(devices) or devices[idx].get("max_input_channels", 0) <= 0:
            raise DeviceError("no audio input device found (plug in a microphone, or use --input file:PATH or -)")
        return idx, devices[idx]
    for i, d in inputs:
        if name.lower() in str(d["name"]).lower():
            return i, d
    names = ", ".join(repr(d["name"]) for _, d in inputs) or "none"
    raise DeviceError(f"no audio input device whose name contains {name!r} (input devices: {names})")


class MicSource:
    """A PortAudio input device, opened at its native rate."""

    def __init__(self, name: str | None = None, channels: int | None = None, hop_frames_s: float = 0.05):
        self.name = name
        self.error: str | None = None
        self.finished = False
        self.input_overflows = 0
        idx, dev = find_input_device(name)
        self._index = idx
        rate = int(round(float(dev["default_samplerate"])))
        ch = int(channels or min(MAX_MIC_CHANNELS, int(dev["max_input_channels"])))
        ch = max(1, min(ch, int(dev["max_input_channels"])))
        self.info = SourceInfo(str(dev["name"]), rate, ch, realtime=True)
        self._block = max(64, int(rate * hop_frames_s))
        self._stream = None
        self._stopping = False
        self._ring: Ring | None = None

    def _callback(self, indata, frames, time_info, status) -> None:  # noqa: ANN001 - PortAudio's
        # the audio thread: copy into the preallocated ring and return; nothing else
        if status.input_overflow:
            self.input_overflows += 1
        self._ring.write(indata)  # type: ignore[union-attr]

    def _finished(self) -> None:
        if not self.finished and self.error is None and self._stream is not None and not self._stopping:
            self.error = "the input stream stopped"

    def start(self, ring: Ring) -> None:
        sd = load_sounddevice()
        self._ring = ring
        self._stopping = False
        try:
            self._stream = sd.InputStream(
                device=self._index, samplerate=self.info.sample_rate, channels=self.info.channels,
                dtype="float32", blocksize=self._block, latency="high",
                callback=self._callback, finished_callback=self._finished,
            )
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError: all mean "cannot open"
            self._stream = None
            raise DeviceError(f"cannot open {self.info.description!r} at {self.info.sample_rate} Hz: {exc}") from None

    def stop(self) -> None:
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        # a stream whose server vanished may hang in close: do it off the listener's thread
        closer = threading.Thread(target=_close_quietly, args=(stream,), daemon=True, name="earshot-close")
        closer.start()
        closer.join(2.0)


def _close_quietly(stream) -> None:  # noqa: ANN001
    try:
        stream.abort()
        stream.close()
    except Exception:  # noqa: BLE001 - the device may already be gone
        pass


# -- files and pipes -----------------------------------------------------------------------
class _ThreadSource:
    """A source fed by a reader thread that waits for ring space (nothing dropped)."""

    info: SourceInfo

    def __init__(self) -> None:
        self.error: str | None = None
        self.finished = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ring: Ring | None = None

    def start(self, ring: Ring) -> None:
        self._ring = ring
        self._thread = threading.Thread(target=self._run_safely, daemon=True, name="earshot-source")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run_safely(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported through .error, never raised
            self.error = str(exc)
        finally:
            self.finished = True

    def _run(self) -> None:
        raise NotImplementedError

    def _put(self, block: np.ndarray) -> bool:
        """Write a block, waiting for space; False when asked to stop."""
        ring = self._ring
        assert ring is not None
        while ring.capacity - ring.available < block.shape[0]:
            if self._stop.wait(0.01):
                return False
        ring.write(block)
        return True


class FileSource(_ThreadSource):
    """Any file `ingest` reads, played in real time (or as fast as the pipeline goes)."""

    def __init__(self, path: Path, realtime: bool = True, limits: Limits = Limits(), block_s: float = 0.05):
        super().__init__()
        self.path = Path(path)
        check_input_file(self.path, limits)
        self._limits = limits
        self._sf = None
        try:
            import soundfile as sf
            self._sf = sf.SoundFile(str(self.path))
            rate, channels = int(self._sf.samplerate), int(self._sf.channels)
            if self._sf.frames > limits.max_seconds * rate:
                raise AudioError(f"{self.path}: longer than the limit of {limits.max_seconds / 60:g} minutes")
        except AudioError:
            raise
        except Exception:  # noqa: BLE001 - not for libsndfile: decode it whole (ffmpeg)
            self._sf = None
            self._audio = decode(self.path, limits)
            rate, channels = self._audio.sample_rate, self._audio.channels
        self.info = SourceInfo(self.path.name, rate, channels, realtime=realtime)
        self._block = max(1, int(rate * block_s))

    def _blocks(self):
        if self._sf is not None:
            with self._sf as f:
                while True:
                    block = f.read(self._block, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield block
        else:
            x = self._audio.samples
            x = x.reshape(-1, 1) if x.ndim == 1 else x
            for i in range(0, x.shape[0], self._block):
                yield np.ascontiguousarray(x[i:i + self._block], dtype=np.float32)

    def _run(self) -> None:
        t0 = time.monotonic()
        sent = 0
        for block in self._blocks():
            if self.info.realtime:
                ahead = sent / self.info.sample_rate - (time.monotonic() - t0)
                if ahead > 0 and self._stop.wait(ahead):
                    return
            if not self._put(block):
                return
            sent += block.shape[0]


class StdinSource(_ThreadSource):
    """Raw interleaved PCM from a pipe (e.g. `arecord -f S16_LE -r 48000 -c 1 | earshot run --input -`)."""

    def __init__(self, rate: int, channels: int, fmt: PcmFormat = "s16le",
                 stream: BinaryIO | None = None, block_s: float = 0.05):
        super().__init__()
        if fmt not in _PCM_DTYPES:
            raise UsageError(f"unknown PCM format {fmt!r} (s16le, s32le or f32le)")
        if not 8000 <= rate <= 768000 or not 1 <= channels <= 8:
            raise UsageError(f"stdin: rate {rate} Hz / {channels} channels out of range (8000–768000 Hz, 1–8)")
        self._dtype, self._scale = _PCM_DTYPES[fmt]
        self._stream = stream if stream is not None else sys.stdin.buffer
        self.info = SourceInfo(f"stdin ({fmt}, {rate} Hz, {channels} ch)", rate, channels, realtime=True)
        self._frame_bytes = np.dtype(self._dtype).itemsize * channels
        self._block_bytes = max(1, int(rate * block_s)) * self._frame_bytes

    def _run(self) -> None:
        pending = b""
        read = getattr(self._stream, "read1", self._stream.read)
        while not self._stop.is_set():
            chunk = read(self._block_bytes)
            if not chunk:
                return
            pending += chunk
            usable = len(pending) - len(pending) % self._frame_bytes
            if usable == 0:
                continue
            data, pending = pending[:usable], pending[usable:]
            x = np.frombuffer(data, dtype=self._dtype).reshape(-1, self.info.channels)
            block = (x.astype(np.float32) * np.float32(self._scale)) if self._scale != 1.0 else x.astype(np.float32)
            if not self._put(block):
                return


def open_source(spec: str, *, channels: int | None = None, realtime: bool = True, limits: Limits = Limits(),
                rate: int | None = None, fmt: PcmFormat = "s16le") -> Source:
    """`--input SPEC`: mic | mic:NAME | file:PATH | - (raw PCM on stdin)."""
    if spec == "mic":
        return MicSource(None, channels)
    if spec.startswith("mic:"):
        name = spec[4:]
        if not name:
            raise UsageError("--input mic:NAME needs a NAME (part of the device's name)")
        if name.isdigit():
            raise UsageError(f"--input mic:{name}: use part of the device's name, not its index "
                             "(indices change between boots; see `earshot devices`)")
        return MicSource(name, channels)
    if spec.startswith("file:"):
        return FileSource(Path(spec[5:]), realtime=realtime, limits=limits)
    if spec == "-":
        if rate is None:
            raise UsageError("--input - needs --rate (and --channels, --format if not 1 and s16le)")
        return StdinSource(rate, channels or 1, fmt)
    raise UsageError(f"unknown input {spec!r}: use mic, mic:NAME, file:PATH or -")
