"""The file source streams what libsndfile reads (WAV, FLAC, ...) instead of decoding it whole:
an hour-long WAV must not become an hour of samples in memory."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from earshot.audio.decode import Limits
from earshot.audio.sources import FileSource
from earshot.errors import AudioError


def test_wav_is_streamed_not_decoded_whole(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, np.zeros((4800, 2), np.float32), 48000, subtype="FLOAT")
    source = FileSource(path, realtime=False)
    assert not hasattr(source, "_audio"), "the WAV was decoded whole instead of streamed"
    assert (source.info.sample_rate, source.info.channels) == (48000, 2)
    blocks = list(source._blocks())
    assert sum(b.shape[0] for b in blocks) == 4800


def test_streamed_file_over_the_duration_limit_is_refused(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(48000 * 3, np.float32), 48000)
    with pytest.raises(AudioError, match="longer than the limit"):
        FileSource(path, realtime=False, limits=Limits(max_seconds=2.0))
