"""Sweeps: strategies x workloads x seeds on a process pool, runs back in a fixed order."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable

from bench.results import Run


def _die_with_parent(parent: int) -> None:
    """Pool worker start-up: the kernel kills this worker when the sweep's process dies, even by
    SIGKILL (PR_SET_PDEATHSIG), so no worker outlives an interrupted sweep."""
    import ctypes
    import signal
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:       # the parent died before the prctl: nothing to serve
        os._exit(1)
    from bench import interrupt
    interrupt.ignore_in_worker()     # a Ctrl-C is the sweep's to handle, not a traceback here


def _one(task: tuple) -> Run:
    from bench import results, sim
    strategy, workload, seed, engine, params = task
    # the strategies of one (workload, seed) run one after another: their workload is built once
    run = sim.run_shared(strategy, workload, seed, engine, params)
    # only the rows a result file keeps: a default compare's whole series are 250 MB, to be
    # sent from the workers and held until the file is written
    return dataclasses.replace(run, series=results.thinned(run.series))


def workload_only_params() -> set[str]:
    """The parameters that only workloads take: given for a sweep, each goes to the workloads
    that have it.  Every other parameter goes to every run, including a model parameter that
    some workload also carries (dio-redirty's server_threads, its own server): that workload
    takes it as its own, the others as the model's."""
    from bench import sim
    from bench.sim import params as model, workload as wl
    every = set().union(*(wl.workload_params(w) for w in sim.workloads()))
    return every - set(model.PARAM_BY_NAME) - set(model.FLOAT_PARAMS) - set(model.STRATEGY_PARAMS)


def sweep(strategies: list[str], workloads: list[str], seeds: Iterable[int], engine: str,
          params: dict, jobs: int | None = None, progress: bool = True,
          started: Callable[[], object] | None = None) -> tuple[Run, ...]:
    """Run every (workload, strategy, seed) on a process pool; runs come back in that order,
    their series thinned as result files keep them (results.thinned).
    started: called once the runs are under way and every worker process has been forked."""
    from bench import sim
    from bench.sim import workload as wl
    seeds = list(seeds)
    own = {w: set(wl.workload_params(w)) for w in workloads}
    only = workload_only_params()
    per = {w: {k: v for k, v in params.items() if k not in only or k in own[w]}
           for w in workloads}
    # Runs are made per (workload, seed), its strategies one after another, so that a worker
    # builds each workload once (sim.run_shared); they come back (workload, strategy, seed).
    n_s, n_k = len(strategies), len(seeds)
    made = [(wi, ki, si) for wi in range(len(workloads)) for ki in range(n_k) for si in range(n_s)]
    slot = [(wi * n_s + si) * n_k + ki for wi, ki, si in made]
    tasks = [(strategies[si], workloads[wi], seeds[ki], engine, per[workloads[wi]])
             for wi, ki, si in made]
    # Check the parameters here, so a typo is one error line and not one per worker (as a dict:
    # a parameter named like an argument of prepare, `seed`, is then unknown, not a TypeError).
    for w in workloads:
        sim._prepare(strategies[0], w, seeds[0], per[w], reuse=False)
    jobs = min(jobs or os.cpu_count() or 1, len(tasks))    # never more workers than runs
    bar = _progress(len(tasks), progress)
    out: list = [None] * len(tasks)
    if jobs == 1:
        if started:
            started()
        for i, t in zip(slot, tasks):
            out[i] = _one(t)
            bar.update(1)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_die_with_parent,
                                   initargs=(os.getpid(),))
        try:
            # a worker takes a (workload, seed)'s strategies together, so builds it once
            results = pool.map(_one, tasks, chunksize=n_s)  # forks every worker (fork context)
            if started:
                started()
            for i, r in zip(slot, results):
                out[i] = r
                bar.update(1)
        except BaseException:
            # Interrupted or failed: the queued runs are dropped and the running ones killed,
            # rather than waited for (shutdown would finish every queued run first).
            _kill_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    bar.close()
    return tuple(out)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    kill = getattr(pool, "kill_workers", None)       # Python 3.14
    if kill is not None:
        kill()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            proc.kill()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="run", leave=False,
                desc="simulating", dynamic_ncols=True)
