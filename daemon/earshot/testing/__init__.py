"""Helpers for tests and benchmarks (synthetic damage); not used by the daemon itself."""
