"""Streaming resampler: accuracy, alignment, and block-size independence."""
import numpy as np
import pytest

from earshot.audio.resample import Resampler, mix_mono, resample
from earshot.errors import EarshotError


@pytest.mark.parametrize("rate_in,rate_out", [(44100, 8000), (48000, 8000), (22050, 8000), (8000, 16000), (48000, 44100)])
def test_sine_is_converted_accurately(rate_in, rate_out):
    t = np.arange(rate_in) / rate_in
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, rate_in, rate_out)
    assert len(y) == int(np.ceil(len(x) * rate_out / rate_in))
    ref = np.sin(2 * np.pi * 440 * np.arange(len(y)) / rate_out)
    edge = rate_out // 50
    assert np.max(np.abs(y[edge:-edge] - ref[edge:-edge])) < 2e-3


def test_content_above_new_nyquist_is_removed():
    rate_in = 48000
    t = np.arange(rate_in) / rate_in
    x = np.sin(2 * np.pi * 6000 * t).astype(np.float32)  # above 4 kHz
    y = resample(x, rate_in, 8000)
    assert np.sqrt(np.mean(y[400:-400] ** 2)) < 0.01


def test_blocks_of_any_size_give_identical_output():
    x = np.random.default_rng(3).standard_normal(30000).astype(np.float32)
    whole = resample(x, 44100, 8000)
    rng = np.random.default_rng(4)
    rs = Resampler(44100, 8000)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        parts.append(rs.process(x[i:i + n]))
        i += n
    parts.append(rs.flush())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_one_sample_blocks_give_identical_output():
    x = np.random.default_rng(5).standard_normal(2000).astype(np.float32)
    whole = resample(x, 48000, 8000)
    rs = Resampler(48000, 8000)
    got = np.concatenate([rs.process(x[i:i + 1]) for i in range(len(x))] + [rs.flush()])
    np.testing.assert_array_equal(got, whole)


def test_a_kept_converter_starts_afresh():
    """`resample` reuses its converter for a rate pair: each signal converts as with a new
    one, whatever came before (and a cut-off end leaves nothing behind)."""
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal(7001).astype(np.float32), rng.standard_normal(5000).astype(np.float32)
    fresh = Resampler(44100, 8000)
    expected = np.concatenate([fresh.process(y), fresh.flush()])
    resample(x, 44100, 8000)
    np.testing.assert_array_equal(resample(y, 44100, 8000), expected)
    rs = Resampler(44100, 8000)
    rs.process(x)                 # never flushed
    rs.reset()
    np.testing.assert_array_equal(np.concatenate([rs.process(y), rs.flush()]), expected)


def test_mix_mono_is_the_channel_mean():
    x = np.random.default_rng(6).standard_normal((100, 3)).astype(np.float32)
    np.testing.assert_allclose(mix_mono(x), x.mean(axis=1), rtol=1e-6, atol=1e-7)


def test_unsupported_ratio_is_a_clear_error():
    with pytest.raises(EarshotError, match="cannot convert"):
        Resampler(44100, 16411)
