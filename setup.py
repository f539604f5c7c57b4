# The C engine and the workload driver are cffi extensions; the FUSE server is a plain
# executable built next to the driver (bench/real/_bin/fwb_fuse_server).  Everything else is in
# pyproject.toml.
import shlex
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

SERVER_SRC = "csrc/server/fwb_fuse_server.c"
SERVER_BIN = "bench/real/_bin/fwb_fuse_server"


class build_ext_and_server(build_ext):
    """build_ext, then the FUSE server with pkg-config's flags; skipped with one warning line
    when libfuse3-dev is missing (bench.real.mount.available() then says why)."""

    def run(self):
        super().run()
        self._build_server()

    def _build_server(self):
        root = Path(__file__).resolve().parent
        # In place for `pip install -e .`; into the build tree for a regular install.
        outs = {root / SERVER_BIN}
        if not self.inplace:
            outs.add(Path(self.build_lib) / SERVER_BIN)
        try:
            flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                                   capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            print("WARNING: libfuse3-dev/pkg-config not found: the FUSE server is not built "
                  "(apt-get install fuse3 libfuse3-dev pkg-config); real-mount runs are disabled")
            return
        cc = shutil.which("cc") or "gcc"
        for out in outs:
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = [cc, "-O2", "-Wall", "-Wextra", str(root / SERVER_SRC), *shlex.split(flags),
                   "-lm", "-o", str(out)]
            print(" ".join(cmd))
            subprocess.run(cmd, check=True)


setup(
    cffi_modules=["bench/sim/_build_sim.py:ffi", "bench/real/_build_driver.py:ffi"],
    cmdclass={"build_ext": build_ext_and_server},
)
