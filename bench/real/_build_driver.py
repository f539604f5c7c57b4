"""cffi builder for the workload driver (API mode), run by setuptools at install time only.

`pip install .` (or `-e .`) compiles csrc/driver/fwb_driver.c into the extension bench.real._driver,
which bench/real/mount.py uses to run operation arrays on a real FUSE mount.  The cdef is
csrc/driver/fwb_driver.h as it is: the header is kept cdef-clean for that.  The driver lives
in csrc/driver/, not csrc/, because bench/sim/_build_sim.py compiles every csrc/*.c into the
simulator.
"""
from __future__ import annotations

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "csrc" / "driver"
# gnu11: _GNU_SOURCE calls (O_DIRECT, RUSAGE_THREAD) and _Static_assert.
CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-pthread"]

ffi = FFI()
ffi.cdef((DRIVER / "fwb_driver.h").read_text())
ffi.set_source(
    "bench.real._driver",
    '#include <stdint.h>\n#include "fwb_driver.h"\n',
    sources=[str((DRIVER / "fwb_driver.c").relative_to(ROOT))],
    include_dirs=[str(DRIVER)],
    extra_compile_args=CFLAGS,
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
