"""Realistic damage for recognition tests and benchmarks: noise, rooms, talk, speed, filters, codecs.

Every function takes mono float32 samples and returns new ones; randomness comes only from
the `numpy.random.Generator` passed in, so a seed reproduces a query exactly. `apply` cuts a
damaged query out of a whole track, reading the extra audio a damage needs (the music that
precedes the excerpt, which a room still rings with; the longer stretch a fast deck plays).
"""
from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import signal

SPEED_OF_SOUND_M_S = 343.0


def power(x: np.ndarray) -> float:
    """Mean square of the samples."""
    x64 = np.asarray(x, dtype=np.float64)
    return float(np.mean(x64 * x64)) if x64.size else 0.0


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Signal-to-noise ratio of `noisy` against `clean`, in dB (the noise is their difference)."""
    noise = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return 10.0 * math.log10(power(clean) / power(noise))


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db` decibels."""
    return (np.asarray(x, dtype=np.float32) * np.float32(10.0 ** (db / 20.0))).astype(np.float32)


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise, unit variance."""
    return rng.standard_normal(n)


def pink_noise(n: int, rate: int, rng: np.random.Generator, low_hz: float = 20.0) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (−3 dB per octave) above `low_hz`; unit power."""
    m = scipy.fft.next_fast_len(n, real=True)
    spectrum = np.fft.rfft(rng.standard_normal(m))
    freqs = np.fft.rfftfreq(m, 1.0 / rate)
    shape = 1.0 / np.sqrt(np.maximum(freqs, low_hz))
    shape[0] = 0.0
    noise = np.fft.irfft(spectrum * shape, m)[:n]
    return noise / math.sqrt(power(noise))


def scale_to_snr(reference: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """`noise` scaled to sit exactly `snr` dB below `reference`'s power."""
    return noise * math.sqrt(power(reference) / (power(noise) * 10.0 ** (snr / 10.0)))


def add_noise(x: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """Mix `noise` into `x` scaled so the mix has exactly `snr` dB against `x`'s own power."""
    return (np.asarray(x, dtype=np.float64) + scale_to_snr(x, noise, snr)).astype(np.float32)


def mains_hum(n: int, rate: int, rng: np.random.Generator, mains_hz: float = 50.0) -> np.ndarray:
    """Mains hum: the fundamental and five harmonics falling off like a cheap preamp's; unit power.

    Random phases; each harmonic drifts a little in frequency (±0.2%) as the grid does.
    """
    t = np.arange(n) / rate
    amplitudes = (1.0, 0.6, 0.45, 0.25, 0.2, 0.1)
    hum = np.zeros(n)
    for k, amp in enumerate(amplitudes, start=1):
        f = k * mains_hz * (1.0 + rng.uniform(-0.002, 0.002))
        hum += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return hum / math.sqrt(power(hum))


# Prose to read aloud that every Debian system has (base-files), and the voices to read it in.
SPEECH_TEXT = Path("/usr/share/common-licenses/GPL-3")
SPEECH_VOICES = ("en+m1", "en+f2", "en+m3", "en+f4", "de+m2", "fr+f1", "en-us+m4", "es+f3")
SPEECH_PARAGRAPHS = 16


@functools.lru_cache(maxsize=4)
def speech(rate: int) -> np.ndarray:
    """Several minutes of people talking, mono float32 at `rate`: espeak-ng reads the longer
    paragraphs of SPEECH_TEXT in eight voices at three speeds, with its pauses between
    sentences. Synthetic, so the same on every machine; made once per process and rate."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("the talk damage needs espeak-ng: apt-get install espeak-ng")
    if not SPEECH_TEXT.is_file():
        raise RuntimeError(f"the talk damage reads {SPEECH_TEXT} aloud, and it is missing")
    text = [" ".join(p.split()) for p in SPEECH_TEXT.read_text().split("\n\n") if len(p) > 300]
    parts = []
    with tempfile.TemporaryDirectory(prefix="earshot-speech-") as tmp:
        for i, para in enumerate(text[:SPEECH_PARAGRAPHS]):
            out = Path(tmp) / f"{i}.wav"
            voice, words_per_minute = SPEECH_VOICES[i % len(SPEECH_VOICES)], (140, 160, 175)[i % 3]
            subprocess.run([espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(out), para[:900]],
                           check=True, capture_output=True)
            with wave.open(str(out)) as w:
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
                ratio = Fraction(rate, w.getframerate())
            parts.append(signal.resample_poly(pcm, ratio.numerator, ratio.denominator).astype(np.float32))
    return np.concatenate(parts)


def talk_over(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of `speech`, from a random place in it."""
    voice = speech(rate)
    if len(voice) < n:
        voice = np.resize(voice, n)
    at = int(rng.integers(0, len(voice) - n + 1))
    return voice[at:at + n]


@dataclass(frozen=True)
class Room:
    """A room and a listening position: enough to derive a plausible impulse response.

    The direct-to-reverberant ratio follows from the critical distance of a diffuse field,
    r_c = 0.057 · sqrt(Q · V / RT60) m (Sabine), so a longer RT60 in the same room also
    means relatively more reverberant energy at the microphone.
    """

    rt60_s: float
    volume_m3: float = 60.0  # a living room, about 5 × 4.8 × 2.5 m
    distance_m: float = 2.0  # loudspeaker to microphone
    directivity: float = 4.0  # a loudspeaker's Q towards the listener
    predelay_s: float = 0.008  # first reflections arrive this long after the direct sound

    @property
    def direct_to_reverberant_db(self) -> float:
        critical = 0.057 * math.sqrt(self.directivity * self.volume_m3 / self.rt60_s)
        return 20.0 * math.log10(critical / self.distance_m)


def room_impulse_response(room: Room, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A direct path at t = 0, then an exponentially decaying Gaussian tail after the pre-delay.

    The tail's energy falls by 60 dB over `room.rt60_s`; its onset ramps in over 5 ms, and its
    total energy sits `direct_to_reverberant_db` below the direct sound. Length: 1.5 × RT60.
    """
    n = round(1.5 * room.rt60_s * rate)
    t = np.arange(n) / rate
    decay = np.exp(-3.0 * math.log(10.0) * t / room.rt60_s)  # amplitude; energy −60 dB at RT60
    tail = rng.standard_normal(n) * decay
    onset = np.clip((t - room.predelay_s) / 0.005, 0.0, 1.0)
    tail *= onset
    tail *= math.sqrt(10.0 ** (-room.direct_to_reverberant_db / 10.0) / np.sum(tail * tail))
    tail[0] += 1.0
    return tail


def reverberate(x: np.ndarray, ir: np.ndarray, preroll: int = 0) -> np.ndarray:
    """Convolve with `ir`; the first `preroll` samples of `x` only feed the room and are dropped.

    The output keeps the dry excerpt's level (RMS), so reverb is not also a gain change.
    """
    wet = signal.fftconvolve(np.asarray(x, dtype=np.float64), ir)[preroll : len(x)]
    dry = np.asarray(x[preroll:], dtype=np.float64)
    scale = math.sqrt(power(dry) / power(wet)) if power(wet) > 0 else 1.0
    return (wet * scale).astype(np.float32)


def schroeder_rt60(
    ir: np.ndarray, rate: int, top_db: float = -5.0, bottom_db: float = -35.0
) -> float:
    """RT60 of an impulse response by Schroeder backward integration (T30 by default)."""
    energy = np.cumsum((np.asarray(ir, dtype=np.float64) ** 2)[::-1])[::-1]
    edc = 10.0 * np.log10(energy / energy[0] + 1e-300)
    span = np.nonzero((edc <= top_db) & (edc >= bottom_db))[0]
    slope, _ = np.polyfit(span / rate, edc[span], 1)
    return -60.0 / slope


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times as fast, pitch and tempo together (a deck off speed), by resampling.

    `len(x) / factor` samples come out; output sample 0 is input sample 0.
    """
    ratio = Fraction(1.0 / factor).limit_denominator(1000)
    out = signal.resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def lowpass(x: np.ndarray, rate: int, cutoff_hz: float = 3000.0, order: int = 10) -> np.ndarray:
    """Causal Butterworth low-pass, 60 dB per octave (a phone line or a tiny loudspeaker)."""
    sos = signal.butter(order, cutoff_hz, btype="lowpass", fs=rate, output="sos")
    return signal.sosfilt(sos, np.asarray(x, dtype=np.float64)).astype(np.float32)


def lossy_roundtrip(
    x: np.ndarray, rate: int, codec: str = "mp3", bitrate_kbps: int = 64
) -> np.ndarray:
    """Encode with ffmpeg (`mp3` through LAME, or `opus`) and decode back at `rate`, same length."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the lossy damage needs ffmpeg: apt-get install ffmpeg")
    encoder, suffix = {"mp3": ("libmp3lame", ".mp3"), "opus": ("libopus", ".opus")}[codec]
    pcm = np.ascontiguousarray(x, dtype="<f4").tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        # a file, not a pipe: the encoder then writes its delay into the header and the
        # decoder removes it, so the decoded audio stays aligned with the input
        coded = Path(tmp) / f"q{suffix}"
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "f32le", "-ar", str(rate), "-ac", "1",
             "-i", "-", "-c:a", encoder, "-b:a", f"{bitrate_kbps}k", str(coded)],
            input=pcm, check=True, capture_output=True,
        )
        decoded = subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-i", str(coded), "-f", "f32le", "-ac", "1",
             "-ar", str(rate), "-"],
            check=True, capture_output=True,
        ).stdout
    y = np.frombuffer(decoded, dtype="<f4")
    out = np.zeros(len(x), dtype=np.float32)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


@dataclass(frozen=True)
class Damage:
    """One named way of damaging a query; fields left at their defaults do nothing."""

    name: str
    noise: str = ""  # "white" or "pink"
    snr_db: float = 0.0
    room: Room | None = None
    gain_db: float = 0.0
    lowpass_hz: float = 0.0
    codec: str = ""
    bitrate_kbps: int = 0
    speed: float = 1.0
    hum_db: float | None = None  # hum power relative to the signal, dB
    talk_snr_db: float | None = None  # music over people talking near the microphone, dB

    def source_extent(self, n: int, rate: int) -> tuple[int, int]:
        """(samples before the excerpt, samples of the excerpt) this damage reads from a track."""
        before = int(1.5 * self.room.rt60_s * rate) if self.room else 0
        return before, math.ceil(n * self.speed) + 1


def standard_damages() -> dict[str, Damage]:
    """The benchmark's damages (issue 2), by name."""
    room_mix = Room(rt60_s=0.7)
    items = [
        Damage("clean"),
        *(Damage(f"white{snr}", noise="white", snr_db=snr) for snr in (10, 5, 0)),
        *(Damage(f"pink{snr}", noise="pink", snr_db=snr) for snr in (10, 5, 0)),
        Damage("reverb0.5", room=Room(rt60_s=0.5)),
        Damage("reverb1.0", room=Room(rt60_s=1.0)),
        Damage("gain-20", gain_db=-20.0),
        Damage("lowpass3k-mp3", lowpass_hz=3000.0, codec="mp3", bitrate_kbps=64),
        *(Damage(f"speed{pct:+d}", speed=1.0 + pct / 100.0) for pct in (2, -2, 5, -5)),
        Damage("room", room=room_mix, noise="pink", snr_db=5.0, hum_db=-15.0),
        Damage("talk0", talk_snr_db=0.0),  # last: the others keep their seeds' streams
    ]
    return {d.name: d for d in items}


def apply(
    damage: Damage, track: np.ndarray, rate: int, start: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Cut `n` samples of mono `track` from `start`, damaged; the query's first sample is the
    track's sample `start` (at speed s the query then covers n·s samples of the track)."""
    before, extent = damage.source_extent(n, rate)
    lead = min(before, start)
    x = np.zeros(before + extent, dtype=np.float32)
    piece = track[start - lead : start + extent]
    x[before - lead : before - lead + len(piece)] = piece
    if damage.room is not None:
        x = reverberate(x, room_impulse_response(damage.room, rate, rng), preroll=before)
    if damage.speed != 1.0:
        x = change_speed(x, damage.speed)
    x = x[:n]
    noisy = np.asarray(x, dtype=np.float64)
    if damage.noise:  # levels are set against the music as it reaches the microphone
        color = pink_noise(n, rate, rng) if damage.noise == "pink" else white_noise(n, rng)
        noisy = noisy + scale_to_snr(x, color, damage.snr_db)
    if damage.hum_db is not None:
        noisy = noisy + scale_to_snr(x, mains_hum(n, rate, rng), -damage.hum_db)
    if damage.talk_snr_db is not None:
        noisy = noisy + scale_to_snr(x, talk_over(n, rate, rng), damage.talk_snr_db)
    if damage.lowpass_hz:
        noisy = lowpass(noisy, rate, damage.lowpass_hz)
    if damage.codec:
        noisy = lossy_roundtrip(noisy, rate, damage.codec, damage.bitrate_kbps)
    if damage.gain_db:
        noisy = gain(noisy, damage.gain_db)
    return np.asarray(noisy, dtype=np.float32)
