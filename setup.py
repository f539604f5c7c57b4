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
# For qemu guests (bench/real/kernels), which have no shared libraries: the same server linked
# statically, and the op runner (csrc/guest/) on the workload driver.
GUEST_SERVER_BIN = "bench/real/_bin/fwb_fuse_server_static"
GUEST_RUNNER_SRC = ["csrc/guest/fwb_guest_runner.c", "csrc/driver/fwb_driver.c"]
GUEST_RUNNER_BIN = "bench/real/_bin/fwb_guest_runner"


class build_ext_and_server(build_ext):
    """build_ext, then the FUSE server with pkg-config's flags; skipped with one warning line
    when libfuse3-dev is missing (bench.real.mount.available() then says why)."""

    def run(self):
        super().run()
        self._build_server()
        self._build_guest()

    def _outs(self, rel):
        root = Path(__file__).resolve().parent
        # In place for `pip install -e .`; into the build tree for a regular install.
        outs = {root / rel}
        if not self.inplace:
            outs.add(Path(self.build_lib) / rel)
        return outs

    def _build_guest(self):
        """The static server and runner for qemu guests; skipped with one warning line when they
        cannot be linked statically (bench.real.kernels then says why)."""
        root = Path(__file__).resolve().parent
        cc = shutil.which("cc") or "gcc"
        try:
            fuse = subprocess.run(["pkg-config", "--cflags", "--static", "--libs", "fuse3"],
                                  check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            fuse = None
        builds = [(GUEST_RUNNER_BIN, ["-std=gnu11", "-pthread", f"-I{root / 'csrc' / 'driver'}",
                                      *(str(root / s) for s in GUEST_RUNNER_SRC)])]
        if fuse is not None:
            builds.append((GUEST_SERVER_BIN, [str(root / SERVER_SRC), *shlex.split(fuse), "-lm"]))
        failed = [] if fuse is not None else [GUEST_SERVER_BIN + " (no pkg-config fuse3)"]
        for rel, args in builds:
            for out in self._outs(rel):
                out.parent.mkdir(parents=True, exist_ok=True)
                cmd = [cc, "-static", "-O2", "-Wall", "-Wextra", *args, "-o", str(out)]
                print(" ".join(cmd))
                p = subprocess.run(cmd, capture_output=True, text=True)
                # glibc warns that a static dlopen (libfuse's module loader, unused here) needs
                # its shared libraries at run time: expected, not shown.
                if p.returncode != 0:
                    failed.append(f"{rel} ({(p.stderr.strip().splitlines() or ['?'])[-1]})")
        if failed:
            print("WARNING: the guest binaries for other kernels under qemu were not built: "
                  + "; ".join(failed))

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
