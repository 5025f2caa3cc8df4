"""earshot: an always-on room listener that recognises songs and measures loudness."""

__version__ = "0.1.0"
