"""The benchmark's damage is what it claims to be: measured SNR, RT60, speed, filter, codec."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from earshot.testing import damage

RATE = 44100


def tone(freq: float, seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def music_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise bursts and tones: enough structure to check alignment by correlation."""
    n = int(seconds * RATE)
    env = np.repeat(rng.uniform(0.1, 1.0, n // 2205 + 1), 2205)[:n]
    return (rng.standard_normal(n) * env * 0.2).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int = RATE) -> float:
    """Frequency of the strongest bin, refined by parabolic interpolation."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x)


def best_lag(reference: np.ndarray, query: np.ndarray, max_lag: int) -> int:
    lags = range(-max_lag, max_lag + 1)
    n = len(reference) - 2 * max_lag
    ref = reference[max_lag : max_lag + n]
    scores = [float(np.dot(ref, query[max_lag + lag : max_lag + lag + n])) for lag in lags]
    return list(lags)[int(np.argmax(scores))]


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0])
def test_noise_is_mixed_at_the_requested_snr(color: str, snr: float) -> None:
    rng = np.random.default_rng(3)
    x = music_like(5.0, rng)
    if color == "pink":
        noise = damage.pink_noise(len(x), RATE, rng)
    else:
        noise = damage.white_noise(len(x), rng)
    assert abs(damage.snr_db(x, damage.add_noise(x, noise, snr)) - snr) < 0.2


def test_pink_noise_falls_3_db_per_octave() -> None:
    noise = damage.pink_noise(RATE * 20, RATE, np.random.default_rng(4))
    spec = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    octaves = (250.0, 500.0, 1000.0, 2000.0, 4000.0)
    band = [spec[(freqs >= f) & (freqs < 2 * f)].sum() for f in octaves]
    # equal energy per octave is what −3 dB per octave in density means
    assert np.ptp(10 * np.log10(band)) < 0.5


@pytest.mark.parametrize("rt60", [0.5, 1.0])
def test_room_impulse_response_decays_at_the_requested_rt60(rt60: float) -> None:
    ir = damage.room_impulse_response(damage.Room(rt60_s=rt60), RATE, np.random.default_rng(5))
    assert damage.schroeder_rt60(ir, RATE) == pytest.approx(rt60, rel=0.10)


def test_room_impulse_response_has_its_direct_to_reverberant_ratio() -> None:
    room = damage.Room(rt60_s=0.7)
    ir = damage.room_impulse_response(room, RATE, np.random.default_rng(6))
    predelay = int(room.predelay_s * RATE)
    assert np.all(ir[1:predelay] == 0.0)
    drr = 10 * math.log10(ir[0] ** 2 / np.sum(ir[1:] ** 2))
    assert drr == pytest.approx(room.direct_to_reverberant_db, abs=0.1)
    assert -8.0 < drr < -4.0  # a loudspeaker 2 m away in a living room


def test_reverberation_keeps_level_and_alignment() -> None:
    rng = np.random.default_rng(7)
    x = music_like(6.0, rng)
    wet = damage.reverberate(x, damage.room_impulse_response(damage.Room(0.5), RATE, rng))
    assert damage.power(wet) == pytest.approx(damage.power(x), rel=1e-3)
    assert best_lag(x, wet, 200) == 0


@pytest.mark.parametrize("factor", [0.95, 0.98, 1.02, 1.05])
def test_speed_change_scales_frequency_and_length(factor: float) -> None:
    out = damage.change_speed(tone(1000.0, 4.0), factor)
    assert len(out) == pytest.approx(4.0 * RATE / factor, abs=2)
    assert peak_frequency(out[RATE // 2 : -RATE // 2]) == pytest.approx(1000.0 * factor, rel=1e-3)


def test_lowpass_removes_5_khz_and_keeps_1_khz() -> None:
    def level_db(x: np.ndarray) -> float:
        return 10 * math.log10(damage.power(x[RATE // 2 :]))

    high, low = tone(5000.0, 2.0), tone(1000.0, 2.0)
    assert level_db(damage.lowpass(high, RATE)) - level_db(high) < -40.0
    assert abs(level_db(damage.lowpass(low, RATE)) - level_db(low)) < 0.5


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_lossy_roundtrip_keeps_length_and_alignment() -> None:
    x = damage.lowpass(music_like(4.0, np.random.default_rng(8)), RATE)
    y = damage.lossy_roundtrip(x, RATE, "mp3", 64)
    assert len(y) == len(x)
    assert abs(best_lag(x, y, 2000)) <= 44  # within 1 ms
    assert damage.snr_db(x, y) > 5.0  # damaged, not destroyed


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make test installs it)")
def test_talk_over_is_speech_at_the_stated_level() -> None:
    rate = 16000
    voice = damage.speech(rate)
    assert len(voice) > rate * 240  # minutes of it: queries seldom hear the same sentence
    # it talks and pauses: 100 ms levels spread far wider than a steady noise's would
    frames = voice[: len(voice) // 1600 * 1600].reshape(-1, 1600)
    level = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    assert np.percentile(level, 90) - np.percentile(level, 10) > 12.0  # steady noise: ~1 dB
    # and it is a voice: most of its energy between 100 Hz and 4 kHz
    spec = np.abs(np.fft.rfft(voice[: rate * 60].astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(rate * 60, 1 / rate)
    assert spec[(hz > 100) & (hz < 4000)].sum() / spec.sum() > 0.9

    track = music_like(30.0, np.random.default_rng(12))
    talk = damage.standard_damages()["talk0"]
    q = damage.apply(talk, track, RATE, 10 * RATE, 5 * RATE, np.random.default_rng(1))
    assert damage.snr_db(track[10 * RATE : 15 * RATE], q) == pytest.approx(0.0, abs=0.01)
    again = damage.apply(talk, track, RATE, 10 * RATE, 5 * RATE, np.random.default_rng(1))
    other = damage.apply(talk, track, RATE, 10 * RATE, 5 * RATE, np.random.default_rng(2))
    np.testing.assert_array_equal(q, again)  # a seed reproduces the query
    assert not np.array_equal(q, other)      # another seed, other words


def test_gain_scales_power() -> None:
    x = music_like(1.0, np.random.default_rng(9))
    change_db = 10 * math.log10(damage.power(damage.gain(x, -20.0)) / damage.power(x))
    assert change_db == pytest.approx(-20.0, abs=0.01)


def test_clean_query_is_the_exact_excerpt() -> None:
    track = music_like(20.0, np.random.default_rng(10))
    clean = damage.standard_damages()["clean"]
    q = damage.apply(clean, track, RATE, 3 * RATE, 5 * RATE, np.random.default_rng(0))
    np.testing.assert_array_equal(q, track[3 * RATE : 8 * RATE])


@pytest.mark.parametrize("name", ["reverb1.0", "room", "speed+5", "speed-5"])
def test_damaged_query_starts_at_the_cut_position(name: str) -> None:
    track = music_like(30.0, np.random.default_rng(11))
    spec = damage.standard_damages()[name]
    start, n = 10 * RATE, 5 * RATE
    q = damage.apply(spec, track, RATE, start, n, np.random.default_rng(1))
    assert len(q) == n
    reference = damage.change_speed(track[start : start + 2 * n], spec.speed)[:n]
    assert best_lag(reference[: RATE], q[: RATE], 400) == 0


def test_damage_is_reproducible_from_the_seed() -> None:
    track = music_like(20.0, np.random.default_rng(12))
    spec = damage.standard_damages()["room"]
    a, b = (damage.apply(spec, track, RATE, RATE, 5 * RATE, np.random.default_rng(42))
            for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_noise_damage_sits_at_its_snr_against_the_excerpt() -> None:
    track = music_like(20.0, np.random.default_rng(13))
    spec = damage.standard_damages()["pink5"]
    q = damage.apply(spec, track, RATE, 2 * RATE, 5 * RATE, np.random.default_rng(3))
    assert damage.snr_db(track[2 * RATE : 7 * RATE], q) == pytest.approx(5.0, abs=0.05)


def test_room_mix_adds_pink_noise_and_hum_to_the_reverberant_music() -> None:
    track = music_like(20.0, np.random.default_rng(14))
    room = damage.standard_damages()["room"]
    reverb_only = damage.Damage("reverb0.7", room=room.room)
    # same seed: the impulse response is drawn first, so both see the same room
    wet = damage.apply(reverb_only, track, RATE, 5 * RATE, 5 * RATE, np.random.default_rng(9))
    q = damage.apply(room, track, RATE, 5 * RATE, 5 * RATE, np.random.default_rng(9))
    expected = -10 * math.log10(10 ** (-5.0 / 10) + 10 ** (-15.0 / 10))  # pink 5 dB + hum 15 dB
    assert damage.snr_db(wet, q) == pytest.approx(expected, abs=0.1)
    hum = np.abs(np.fft.rfft(q - wet))
    freqs = np.fft.rfftfreq(len(q), 1 / RATE)
    assert abs(freqs[np.argmax(hum * (freqs < 1000))] - 50.0) < 1.0
