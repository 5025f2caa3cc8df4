"""The C real FFT against numpy's."""
import numpy as np
import pytest

from earshot.native import ffi, float_ptr, lib


@pytest.mark.parametrize("n", [8, 64, 1024, 4096])
def test_real_fft_matches_numpy(n):
    fft = ffi.gc(lib.es_fft_new(n), lib.es_fft_free)
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    out = np.empty(2 * (n // 2 + 1), np.float32)
    lib.es_fft_real(fft, float_ptr(x), float_ptr(out))
    ref = np.fft.rfft(x.astype(np.float64))
    got = out[0::2] + 1j * out[1::2]
    assert np.max(np.abs(got - ref)) < 1e-5 * np.max(np.abs(ref)) * np.log2(n)


def test_power_spectrum_matches_numpy():
    n = 1024
    fft = ffi.gc(lib.es_fft_new(n), lib.es_fft_free)
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    out = np.empty(n // 2 + 1, np.float32)
    lib.es_fft_power(fft, float_ptr(x), float_ptr(out))
    ref = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3 * ref.max() * 1e-3)


@pytest.mark.parametrize("n", [0, 6, 100, 1 << 17])
def test_bad_sizes_are_refused(n):
    assert lib.es_fft_new(n) == ffi.NULL


def test_windowed_power_is_the_power_of_the_windowed_frame_bit_for_bit():
    n = 1024
    fft = ffi.gc(lib.es_fft_new(n), lib.es_fft_free)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(n).astype(np.float32)
    w = np.hanning(n).astype(np.float32)
    frame = x * w  # held: a pointer does not keep a temporary alive
    direct, windowed = np.empty(n // 2 + 1, np.float32), np.empty(n // 2 + 1, np.float32)
    lib.es_fft_power(fft, float_ptr(frame), float_ptr(direct))
    lib.es_fft_power_windowed(fft, float_ptr(x), float_ptr(w), float_ptr(windowed))
    assert np.array_equal(direct.view(np.uint32), windowed.view(np.uint32))
