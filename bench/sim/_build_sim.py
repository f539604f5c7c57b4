"""cffi builder for the C engine (API mode), run by setuptools at install time only.

`pip install .` (or `-e .`) compiles csrc/*.c into the extension bench.sim._fwb.
The cdef is csrc/fwb.h as it is: the header is kept cdef-clean for that, plus the one
callback written in Python (bench.sim._cengine's fill of a streamed workload's chunks).
"""
from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
SOURCES = sorted(str(p.relative_to(ROOT)) for p in CSRC.glob("*.c"))
# -ffp-contract=off: no fused multiply-add, so service times match the Python engine bit for bit.
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-strict-aliasing"]


def _preflight() -> None:
    """Fail with one clear line, not a traceback wall, when the toolchain is missing."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(os.environ.get("CC", cc).split()[0]) is None:
        sys.exit(f"fuse-writeback-bench: no C compiler ({cc}) found: install gcc (apt-get install gcc)")
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").exists():
        sys.exit(f"fuse-writeback-bench: Python.h not found in {include}: "
                 "install the Python headers (apt-get install python3-dev)")


_preflight()
ffi = FFI()
ffi.cdef((CSRC / "fwb.h").read_text())
# fwb_stream.fill for a Python source of rows (bench.sim._cengine.simulate_stream)
ffi.cdef('extern "Python" int64_t fwb_py_fill(void *, int32_t, fwb_op *, int64_t);')
ffi.set_source(
    "bench.sim._fwb",
    '#include <stdint.h>\n#include "fwb.h"\n',
    sources=SOURCES,
    include_dirs=[str(CSRC)],
    extra_compile_args=CFLAGS,
    libraries=["m"],
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
