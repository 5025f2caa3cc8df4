"""Audio in: decoding files, mixing, resampling (and later, live sources)."""
