"""Big files: a run costs what it touches, and both engines still agree.

On a 64 GiB file (2**24 pages) the C engine's end-of-run scan visits only the pages it
dirtied, and the Python engine keeps its per-page state in dicts (refsim.page_array);
these tests hold both to each other there, and hold the Python engine's dict path to its
list path on small files.
"""
import numpy as np
import pytest

from bench import sim
from bench.sim import _cengine, refsim
from bench.sim.workload import WRITE, from_arrays
from conftest import assert_same_raw

GIB = 1 << 30


def _both(wl, cfg, seed=0):
    return refsim.simulate(cfg, wl.ops, wl.file_sizes, seed), _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed)


@pytest.mark.parametrize("strategy", ["merge-in-queue", "no-temp-page"])
def test_rand_write_on_64_gib(strategy):
    wl, cfg = sim.prepare(strategy, "rand-write", 0, file_size=64 * GIB, writes=512)
    assert refsim.SPARSE_PAGES < wl.file_sizes[0] // 4096     # the dict path is the one run
    py, c = _both(wl, cfg)
    assert_same_raw(py, c, f"{strategy} rand-write 64 GiB")
    assert c["counters"]["bytes_dirtied"] == 512 * 4096


def test_lost_updates_on_64_gib():
    """dio-redirty under temp-naive loses updates; its ops moved onto a 64 GiB file, with a
    write at the file's last page, lose them there too, counted the same by both engines."""
    small, _ = sim.prepare("temp-naive", "dio-redirty", 0)
    ops = np.concatenate([small.ops, small.ops[-1:]])
    ops[-1]["op"], ops[-1]["file"] = WRITE, 0
    ops[-1]["offset"], ops[-1]["length"] = 64 * GIB - 4096, 4096
    wl, cfg = sim.prepare("temp-naive", from_arrays(ops, np.array([64 * GIB]), params=small.params))
    py, c = _both(wl, cfg)
    assert_same_raw(py, c, "temp-naive dio-redirty on 64 GiB")
    assert c["counters"]["lost_updates"] > 0


@pytest.mark.parametrize("strategy,workload", [("temp-naive", "dio-redirty"),
                                               ("merge-in-queue", "rewrite-hot"),
                                               ("no-temp-page", "mmap-rewrite")])
def test_python_dict_path_matches_list_path(monkeypatch, strategy, workload):
    wl, cfg = sim.prepare(strategy, workload, 0)
    lists = refsim.simulate(cfg, wl.ops, wl.file_sizes, 0)
    monkeypatch.setattr(refsim, "SPARSE_PAGES", 0)
    dicts = refsim.simulate(cfg, wl.ops, wl.file_sizes, 0)
    assert isinstance(refsim.page_array(1, 0), dict)
    assert_same_raw(lists, dicts, f"{strategy} {workload}: lists against dicts")
