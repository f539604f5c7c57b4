"""An installed copy simulates the same machine as the checkout and prints the same numbers.

The package is built as a wheel (what `pip install .` installs), unpacked into a directory of its
own, and run by an interpreter started with -S, whose path is that directory and then the
system's site-packages for numpy and the other dependencies, without their .pth files: so
neither the checkout nor the editable install's import hook can stand in for the wheel."""
import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["compare", "--no-mount", "--workloads", "seq-write", "--seeds", "1", "--quiet", "--json"]
# pip's words when it cannot reach the package index for the build requirements.
OFFLINE = ("No matching distribution found", "Could not find a version", "NewConnectionError",
           "Network is unreachable", "Temporary failure in name resolution")


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(tmp / "dist"), str(ROOT)], capture_output=True, text=True,
                           timeout=900)
    if build.returncode != 0:
        if any(w in build.stderr for w in OFFLINE):
            pytest.skip("pip cannot fetch the build requirements (no package index reachable)")
        raise AssertionError(f"pip wheel failed:\n{build.stderr[-3000:]}")
    (whl,) = (tmp / "dist").glob("*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert "bench/machines/ci-2cpu-24g.toml" in names          # the profiles are package data
    zipfile.ZipFile(whl).extractall(tmp / "site")
    return tmp / "site"


def _installed(site_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    code = ("import sys; sys.path[:0] = sys.argv[1:3]; import bench; "
            "assert bench.__file__.startswith(sys.argv[1]), bench.__file__; "
            "from bench.__main__ import main; sys.exit(main(sys.argv[3:]))")
    deps = site.getsitepackages()[0]
    return subprocess.run([sys.executable, "-S", "-c", code, str(site_dir), deps, *args],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def test_the_wheel_and_the_checkout_give_byte_identical_numbers(wheel_dir, tmp_path,
                                                                monkeypatch):
    monkeypatch.delenv("FWB_MACHINE", raising=False)
    monkeypatch.delenv("FWB_COST_PROFILE", raising=False)
    inst = _installed(wheel_dir, tmp_path, *ARGS, "--out", str(tmp_path / "installed.json"))
    assert inst.returncode == 0, inst.stderr
    here = subprocess.run([sys.executable, "-m", "bench", *ARGS, "--out",
                           str(tmp_path / "checkout.json")], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert here.returncode == 0, here.stderr
    assert inst.stdout == here.stdout and json.loads(inst.stdout)
    md = json.loads((tmp_path / "installed.json").read_text())["metadata"]["machine"]
    assert md["name"] == "ci-2cpu-24g" and md["source"] == "package:ci-2cpu-24g"
    listing = _installed(wheel_dir, tmp_path, "list")
    assert "active machine: ci-2cpu-24g" in listing.stdout, listing.stderr


def test_the_bench_console_script_is_python_m_bench(wheel_dir, tmp_path):
    # pip writes a `bench` script for the wheel's console_scripts entry point; run that entry
    # point as the script does (sys.argv[0] "bench", sys.exit of its return value).
    (info,) = wheel_dir.glob("*.dist-info")
    assert "bench = bench.__main__:main" in (info / "entry_points.txt").read_text()
    code = ("import sys; site_dir = sys.argv[1]; sys.path[:0] = sys.argv[1:3]; "
            "from importlib.metadata import entry_points; "
            "(ep,) = [e for e in entry_points(group='console_scripts') if e.name == 'bench' "
            "and str(e.dist.locate_file('')).startswith(site_dir)]; "
            "sys.argv = ['bench'] + sys.argv[3:]; sys.exit(ep.load()())")
    deps = site.getsitepackages()[0]
    base = str(ROOT / "results" / "baseline.json")

    def script(*args):
        return subprocess.run([sys.executable, "-S", "-c", code, str(wheel_dir), deps, *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=600)
    inst = script("gate", base, base)
    here = subprocess.run([sys.executable, "-m", "bench", "gate", base, base],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert inst.returncode == here.returncode == 0, inst.stderr
    assert inst.stdout == here.stdout and inst.stdout.startswith("OK: ")
    bad = script("gate", base)
    assert bad.returncode == 2
    assert bad.stderr.startswith("ERROR: bench gate: ") and bad.stderr.count("\n") == 1


def test_a_sweep_without_out_writes_to_the_checkout_or_the_user_data_dir(tmp_path):
    args = ["compare", "--no-mount", "--workloads", "seq-write", "--seeds", "1", "--brief"]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                         cwd=outside, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    where = tmp_path / "data" / "fuse-writeback-bench" / "results" / "latest.json"
    assert json.loads(where.read_text())["runs"]
    assert list(outside.iterdir()) == []                 # nothing left where it was started
    assert f"results: {where}" in run.stderr              # the location is printed
    # inside a checkout (a pyproject.toml naming the project), below its top: its results/
    co = tmp_path / "checkout"
    (co / "sub").mkdir(parents=True)
    (co / "pyproject.toml").write_text('[project]\nname = "fuse-writeback-bench"\n')
    run = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                         cwd=co / "sub", env={**env, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads((co / "results" / "latest.json").read_text())["runs"]
    assert "results: ../results/latest.json" in run.stderr
    # the scratch file is replaced by the next run without --force
    again = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                           cwd=co / "sub", env={**env, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert again.returncode == 0, again.stderr
