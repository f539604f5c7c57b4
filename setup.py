# The C engine is a cffi extension; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["bench/_build_sim.py:ffi"])
