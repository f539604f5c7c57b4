"""Run one strategy on one workload: ``run(strategy, workload, seed=0, engine="c", **params)``.

Keyword parameters are routed by name: a workload generator's parameters (when
the workload is given by name), then the model, cost and server parameters of
bench.sim.params, then the strategy's own.  Anything else is a ValueError naming it.
Both engines take the same resolved configuration and return the same raw
result, summarised once by bench.results.metrics.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import strategies as _strategies

from bench.results import metrics
from bench.sim import params as _params, workload as _workloads
from bench.sim.ops import FILE_RANGE_OPS, PAGE_SIZE
from bench.results import Run

ENGINES = ("c", "python")
MAX_TOTAL_PAGES = 1 << 24       # 64 GiB of file pages: the per-page state must fit in memory


def strategies() -> list[str]:
    """Names of the strategies, in their canonical order."""
    return list(_strategies.STRATEGIES)


def workloads() -> list[str]:
    """Names of the registered workload generators."""
    return _workloads.workload_names()


def _total_pages(w: _workloads.Workload | _workloads.StreamedWorkload) -> int:
    if isinstance(w, _workloads.StreamedWorkload):
        return int(w.stream.file_pages.sum())
    cap = (w.file_sizes.astype(np.int64) + PAGE_SIZE - 1) // PAGE_SIZE
    on = np.isin(w.ops["op"], FILE_RANGE_OPS)
    if on.any():
        ends = (w.ops["offset"][on] + w.ops["length"][on] + PAGE_SIZE - 1) // PAGE_SIZE
        np.maximum.at(cap, w.ops["file"][on], ends)
    return int(cap.sum())


# Workloads built in this process for the runs that share them (run_shared, and sweeps), each
# with the model parameters it carries, by workload_key and seed: runs that differ only in
# strategy or model parameters share one (a Workload is frozen; the engines only read its
# arrays).  Emptied when it would hold more than MAX_SHARED_ROWS operation rows (40 bytes each).
_SHARED: dict[tuple, tuple[Any, dict]] = {}
MAX_SHARED_ROWS = 1 << 21


def workload_key(machine: str, workload: str, params: dict, names) -> tuple:
    """What, besides the seed, names a shared workload: the machine profile it is built under
    (its memory sets machine-relative defaults), the workload, its own parameters among
    `params` (`names`: the workload's parameter names) and mem_total_pages."""
    mine = {k: v for k, v in params.items() if k in names}
    return (machine, workload, repr(sorted(mine.items())), params.get("mem_total_pages"))


def shared_workload(key: tuple, seed: int, params: dict, names) -> tuple[Any, dict]:
    """(the workload of `key` (workload_key) and seed, the model parameters it carries), built
    from `params` once in this process and its size checked.  The caller has selected the
    machine profile of `key`."""
    got = _SHARED.get((key, seed))
    if got is None:
        w = _workloads.make(key[1], seed=seed, mem_total_pages=key[3],
                            **{k: v for k, v in params.items() if k in names})
        check_pages(w)
        got = (w, workload_model_params(w))
        if _rows_held(w) + sum(_rows_held(x) for x, _ in _SHARED.values()) > MAX_SHARED_ROWS:
            _SHARED.clear()
        _SHARED[(key, seed)] = got
    return got


def _rows_held(w) -> int:
    """Operation rows a workload holds in memory (a streamed one: none)."""
    return len(w.ops) if isinstance(w, _workloads.Workload) else 0


def prepare(strategy: str, workload: Any, seed: int = 0, **params: Any):
    """Resolve (strategy, workload, params) -> (Workload, config)."""
    return _prepare(strategy, workload, seed, params, reuse=False)


def _prepare(strategy: str, workload: Any, seed: int, params: dict, reuse: bool):
    """prepare; with reuse, a workload given by name may be one this process built before from
    the same inputs (shared_workload).  The flag is not a keyword of prepare or run, where it would
    share a namespace with the parameters (`--param reuse=1`)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 63:
        raise ValueError(f"seed: must be an integer in 0..2**63-1, got {seed!r}")
    _strategies.get(strategy)
    model = dict(params)
    if isinstance(workload, str):
        names = _workloads.workload_params(workload)
        if reuse:
            from bench.sim import machine
            wl = shared_workload(workload_key(machine.spec(), workload, model, names), seed,
                                 model, names)[0]
        else:
            wl = _workloads.make(workload, seed=seed, mem_total_pages=model.get("mem_total_pages"),
                                 **{k: v for k, v in model.items() if k in names})
            check_pages(wl)
        for k in names:
            model.pop(k, None)
    elif isinstance(workload, (_workloads.Workload, _workloads.StreamedWorkload)):
        wl = workload
        check_pages(wl)
    else:
        raise ValueError(f"workload: expected a name or a Workload, got {type(workload).__name__}")
    cfg = configure(strategy, workload_model_params(wl), model)
    return wl, cfg


def workload_model_params(wl: _workloads.Workload) -> dict[str, Any]:
    """The model parameters a workload carries (its server's stalls, say), which a run takes
    unless its caller gives them."""
    return {k: v for k, v in wl.params.items()
            if k in _params.PARAM_BY_NAME or k in _params.FLOAT_PARAMS}


def configure(strategy: str, carried: dict[str, Any], model: dict[str, Any]) -> dict:
    """The resolved configuration of `strategy` with the caller's model parameters `model`,
    and those of `carried` (workload_model_params) that the caller does not give."""
    model = dict(model)
    for key, value in carried.items():
        model.setdefault(key, value)
    return _params.resolve(strategy, model)


def check_pages(wl: _workloads.Workload) -> None:
    """ValueError unless the workload's per-page state fits (MAX_TOTAL_PAGES)."""
    pages = _total_pages(wl)
    if pages > MAX_TOTAL_PAGES:
        raise ValueError(f"file_size: the workload touches {pages} pages; at most {MAX_TOTAL_PAGES}")


def run(strategy: str, workload: Any, seed: int = 0, engine: str = "c", **params: Any) -> Run:
    """Simulate `strategy` on `workload` and return its Run (metrics named as in model.md)."""
    return _run(strategy, workload, seed, engine, params, reuse=False)


def run_shared(strategy: str, workload: str, seed: int, engine: str, params: dict) -> Run:
    """run, on a workload shared with the earlier runs of this process that built it from the
    same inputs (shared_workload): a sweep's runs of one workload and seed differ only in strategy or
    model parameters."""
    return _run(strategy, workload, seed, engine, params, reuse=True)


def _run(strategy: str, workload: Any, seed: int, engine: str, params: dict, reuse: bool) -> Run:
    if engine not in ENGINES:
        raise ValueError(f"engine: unknown {engine!r}; allowed: {', '.join(ENGINES)}")
    wl, cfg = _prepare(strategy, workload, seed, params, reuse)
    raw = simulate_raw(cfg, wl, seed, engine)
    return Run(strategy=strategy, workload=wl.name, params=dict(params), seed=seed, engine=engine,
               metrics=metrics.summarize(raw), series=raw["series"])


def simulate_raw(cfg: dict, wl: _workloads.Workload | _workloads.StreamedWorkload, seed: int,
                 engine: str, config=None) -> dict:
    """The engine's raw output (counters, histogram, latency samples, series).  config: the C
    engine's struct of cfg (_cengine.make_config), if made before."""
    streamed = isinstance(wl, _workloads.StreamedWorkload)
    if engine == "python":
        from bench.sim import refsim
        if streamed:
            return refsim.simulate_stream(cfg, wl.stream, seed)
        return refsim.simulate(cfg, wl.ops, wl.file_sizes, seed)
    from bench.sim import _cengine
    if streamed:
        return _cengine.simulate_stream(cfg, wl.stream, seed, config=config)
    return _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed, config=config)
