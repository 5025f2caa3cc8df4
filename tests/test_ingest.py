"""The ingest pipeline: one streaming pass gives the whole-signal fingerprint."""
import numpy as np
import pytest

import earshot.ingest as ingest
from earshot.audio.decode import Audio
from earshot.fingerprint import DEFAULT_PARAMS, fingerprint_signal
from music import song


@pytest.fixture(scope="module")
def stereo() -> Audio:
    left, right = song(3, 20.0, 44100), song(4, 20.0, 44100)
    return Audio(np.stack([left, 0.5 * right], axis=1).astype(np.float32), 44100)


@pytest.mark.parametrize("block", [1000, 4096, 1 << 17])
def test_streaming_pass_gives_the_whole_signal_hashes(stereo, block, monkeypatch):
    monkeypatch.setattr(ingest, "_BLOCK_FRAMES", block)
    hashes, times, digest = ingest.catalog_fingerprint(stereo, DEFAULT_PARAMS)
    whole = fingerprint_signal(ingest.fingerprint_rate_signal(stereo, DEFAULT_PARAMS),
                               DEFAULT_PARAMS.catalog_peaks, DEFAULT_PARAMS.catalog_hash)
    assert len(hashes) > 100
    assert np.array_equal(hashes, whole.hashes) and np.array_equal(times, whole.times)
    # the digest is of the content, not of how it was cut into blocks
    monkeypatch.setattr(ingest, "_BLOCK_FRAMES", 777)
    assert ingest.catalog_fingerprint(stereo, DEFAULT_PARAMS)[2] == digest


def test_digest_tells_different_audio_apart(stereo):
    quieter = Audio(stereo.samples * 0.5, stereo.sample_rate)
    shorter = Audio(stereo.samples[:-1], stereo.sample_rate)
    digests = {ingest.catalog_fingerprint(a, DEFAULT_PARAMS)[2] for a in (stereo, quieter, shorter)}
    assert len(digests) == 3


def test_empty_audio_has_no_hashes():
    hashes, times, _ = ingest.catalog_fingerprint(Audio(np.zeros((0, 2), np.float32), 44100), DEFAULT_PARAMS)
    assert len(hashes) == 0 and len(times) == 0
