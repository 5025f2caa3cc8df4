"""Decode audio files (WAV, FLAC, OGG/Vorbis, Opus, MP3, ...) into float32 arrays.

libsndfile (through `soundfile`) reads every format earshot promises, at any sample rate
and channel count, without spawning a process; it is the well-kept library made for this.
Files it cannot open fall back to ffmpeg when that is installed (e.g. AAC/M4A).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError

AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a", ".aac", ".wma", ".w64"}
)


@dataclass(frozen=True)
class Limits:
    """Bounds on what one input file may be (the defaults admit a three-hour DJ set)."""

    max_bytes: int = 2 * 1024**3
    max_seconds: float = 4 * 3600.0


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass
class Audio:
    """Decoded audio: float32 samples shaped (frames, channels)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate


def check_input_file(path: Path, limits: Limits) -> None:
    """AudioError unless path is a non-empty file within the size limit."""
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path}: the file is empty")
    if size > limits.max_bytes:
        raise AudioError(
            f"{path}: {size / 1e6:.0f} MB is over the {limits.max_bytes / 1e6:.0f} MB input limit"
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _check_length(path: Path, seconds: float, limits: Limits) -> None:
    if seconds > limits.max_seconds:
        raise AudioError(
            f"{path}: {_duration(seconds)} is over the {_duration(limits.max_seconds)} input length limit"
        )


def probe(path: Path, limits: Limits = Limits()) -> AudioInfo:
    """Read a file's rate, channels and length without decoding it."""
    path = Path(path)
    check_input_file(path, limits)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        if _ffmpeg() is None:
            raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from None
        audio = _decode_ffmpeg(path, limits)
        return AudioInfo(path, audio.sample_rate, audio.channels, audio.samples.shape[0])
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames))


def decode(path: Path, limits: Limits = Limits()) -> Audio:
    """Decode a whole file; AudioError names the problem when it cannot."""
    path = Path(path)
    check_input_file(path, limits)
    try:
        with sf.SoundFile(str(path)) as f:
            if f.frames > 0:
                _check_length(path, f.frames / f.samplerate, limits)
            data = f.read(dtype="float32", always_2d=True)
            rate = int(f.samplerate)
    except (sf.LibsndfileError, RuntimeError) as exc:
        if _ffmpeg() is None:
            raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from None
        return _decode_ffmpeg(path, limits)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    _check_length(path, data.shape[0] / rate, limits)
    if not np.all(np.isfinite(data)):
        data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)
    return Audio(np.ascontiguousarray(data), rate)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def audio_digest(audio: Audio) -> str:
    """SHA-256 of decoded content (rate, channels, samples): the same audio in another
    container or with other tags has the same digest."""
    h = hashlib.sha256()
    h.update(f"{audio.sample_rate}:{audio.channels}:".encode())
    h.update(np.ascontiguousarray(audio.samples).tobytes())
    return h.hexdigest()


def find_audio_files(paths: list[Path]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into audio file paths.

    Files named explicitly are yielded whatever their suffix, so a mis-named file still gets
    a clear decode error; inside folders only known audio suffixes are taken.
    """
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and child.suffix.lower() in AUDIO_SUFFIXES:
                    yield child
        else:
            yield p


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    # libsndfile prefixes messages with the path; keep only the reason
    return text.split(": ", 1)[-1] if ": " in text else text


def _ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def _decode_ffmpeg(path: Path, limits: Limits) -> Audio:
    """Decode with ffmpeg to 32-bit float at the file's own rate and channel count."""
    ffprobe = shutil.which("ffprobe")
    rate, channels = 48000, 2
    if ffprobe:
        out = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
             "stream=sample_rate,channels", "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        fields = out.stdout.strip().split(",")
        if out.returncode != 0 or len(fields) < 2 or not fields[0].isdigit():
            raise AudioError(f"{path}: not a readable audio file (no audio stream found)")
        rate, channels = int(fields[0]), int(fields[1])
    proc = subprocess.run(
        [_ffmpeg() or "ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-t",
         str(limits.max_seconds + 1), "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        capture_output=True, timeout=600, check=False,
    )
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: not a readable audio file ({msg[-1] if msg else 'ffmpeg failed'})")
    data = np.frombuffer(proc.stdout, dtype="<f4")
    if data.size == 0 or data.size % channels:
        raise AudioError(f"{path}: the file holds no audio samples")
    samples = data.reshape(-1, channels).astype(np.float32)
    _check_length(path, samples.shape[0] / rate, limits)
    return Audio(np.ascontiguousarray(samples), rate)
