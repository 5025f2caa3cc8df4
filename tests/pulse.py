"""The tests' virtual microphone (it lives in the package so `make demo` uses it too)."""
from earshot.testing.virtualmic import SINK, VirtualMic, available  # noqa: F401
