"""Where a result came from: what a reader needs to trust a result file."""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version() -> str:
    try:
        from importlib.metadata import version
        return version("fuse-writeback-bench")
    except Exception:
        return "unknown"


def collect(**extra: Any) -> dict[str, Any]:
    """Metadata for a result file; `extra` adds sweep-specific keys (engine, seeds, ...).

    A file of simulated runs names its machine profile: the caller passes
    ``machine=bench.sim.params.machine_provenance()`` (name, content hash, source, values), which
    is what ``gate`` compares; this module does not import the simulator."""
    md = {
        "package_version": package_version(),
        "git_commit": _git_commit(),
        "kernel": platform.release(),
        "cpu_model": _cpu_model(),
        "cpu_count": __import__("os").cpu_count(),
        "python_version": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    md.update(extra)
    return md
