"""Build hook: setuptools compiles the C kernels in native/ through cffi (API mode)."""
from setuptools import setup

setup(cffi_modules=["native/build_native.py:ffibuilder"])
