"""Running a declarative sweep (bench.sim.sweepspec) into a result store (bench.results.store).

The runs a store already holds (by key) are skipped, so an interrupted sweep resumes where it
stopped and a finished run is never redone.  The rest go out in batches of runs sized to about
``TARGET_BATCH_S`` seconds each (from the faster of two timed runs per workload), so a
scheduler sees thousands of tasks rather than millions, and each finished batch is written to
the store at once as one part file: a crash loses at most the batches in flight.

Executors:
  local   this machine's cores: in this process for one job, else a process pool whose workers
          die with the sweep (bench.sim.sweep's pool set-up).
  dask    dask.distributed: a LocalCluster of `jobs` single-threaded worker processes, or the
          cluster whose scheduler is at `scheduler` (tcp://host:8786).  A worker needs only this
          package installed; a machine profile is sent by name (or path, which must then exist
          on the workers).

A run's numbers depend on its configuration alone, never on the batch or worker it ran in, so
every executor writes the same rows.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from bench import sim
from bench.sim.sweepspec import Config, Spec

TARGET_BATCH_S = 1.0
TIMING_RUNS = 2             # runs of each (machine, workload) timed to size its batches
EXECUTORS = ("local", "dask")


def _workload_key(c: Config, names: set[str]) -> tuple:
    """What, besides the seed, names c's workload among the shared ones (sim.workload_key)."""
    return sim.workload_key(c.machine, c.workload, c.params, names)


def _cached_workload(c: Config, key: tuple, names: set[str]) -> tuple[Any, dict]:
    """(workload, the model parameters it carries) of c, whose _workload_key is `key`: built
    once per seed in this process (sim.shared_workload).  The caller has selected c's machine
    profile."""
    return sim.shared_workload(key, c.seed, c.params, names)


# The points of a grid seen in this process, by engine, machine profile (spec and content
# hash), strategy, workload and parameters: what its runs, which differ only in seed, share (the
# workload's key, the model parameters, the params column, and by the model parameters the
# workload carries, the resolved configuration and its C struct).  Emptied past MAX_POINTS.
_POINTS: dict[tuple, dict] = {}
MAX_POINTS = 1 << 12          # a point holds its configuration (a dict of ~70) and C struct


def _point(c: Config) -> dict:
    from bench import sim
    from bench.results import store
    from bench.sim import workload as wl
    import strategies
    key = (c.engine, c.machine, c.machine_sha256, c.strategy, c.workload,
           repr(sorted(c.params.items())))
    p = _POINTS.get(key)
    if p is None:
        if c.engine not in sim.ENGINES:
            raise ValueError(f"engine: unknown {c.engine!r}; allowed: {', '.join(sim.ENGINES)}")
        strategies.get(c.strategy)
        names = set(wl.workload_params(c.workload))
        p = {"names": names, "wkey": _workload_key(c, names),
             "model": {k: v for k, v in c.params.items() if k not in names},
             "json": store.params_json(c.params), "configs": {}}
        if len(_POINTS) >= MAX_POINTS:
            _POINTS.clear()
        _POINTS[key] = p
    return p


def _config(c: Config, p: dict, carried: dict) -> tuple[dict, Any]:
    """(resolved configuration, its C struct or None) of c, of point p (_point), whose workload
    carries the model parameters `carried`."""
    ck = repr(carried)              # in the generator's order of its parameters
    got = p["configs"].get(ck)
    if got is None:
        from bench import sim
        from bench.sim import _cengine
        cfg = sim.configure(c.strategy, carried, p["model"])
        got = p["configs"][ck] = (cfg, _cengine.make_config(cfg) if c.engine == "c" else None)
    return got


def run_batch(configs: list[Config]) -> list[dict]:
    """Run `configs` and return their store rows.  This is the task a worker runs: it selects
    each run's machine profile for its process first.  Each run is bench.sim.run's, with the
    workload built once per seed (_cached_workload), and the configuration resolved (and, for the
    C engine, its struct built) once per point of the grid (_point) and model parameters its
    workload carries."""
    from bench import sim
    from bench.results import metrics, store
    from bench.sim import machine
    rows = []
    # _point by id of the params dict, the one of c's point when seen before in this batch: the
    # configs of one point share theirs (sweepspec.expand), and `configs` keeps them alive
    seen: dict[int, tuple] = {}
    selected = None
    for c in configs:
        if c.machine != selected:
            if machine.spec() != c.machine:
                machine.select(c.machine)
            selected = c.machine
        if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < 1 << 63:
            raise ValueError(f"seed: must be an integer in 0..2**63-1, got {c.seed!r}")
        got = seen.get(id(c.params))
        if got is not None and got[0] == (c.engine, c.machine, c.machine_sha256, c.strategy,
                                          c.workload):
            p = got[1]
        else:
            p = _point(c)
            seen[id(c.params)] = ((c.engine, c.machine, c.machine_sha256, c.strategy,
                                   c.workload), p)
        w, carried = _cached_workload(c, p["wkey"], p["names"])
        cfg, struct = _config(c, p, carried)
        raw = sim.simulate_raw(cfg, w, c.seed, c.engine, config=struct)
        rows.append(store.row_of(c.key(), c.machine, c.machine_sha256, c.strategy, w.name,
                                 p["json"], c.seed, c.engine, metrics.summarize(raw),
                                 raw["series"], {}))
    return rows


@dataclass
class Outcome:
    total: int          # runs the spec names
    stored: int         # of those, already in the store when the sweep started
    computed: int       # run by this sweep (and written)
    parts: int          # part files this sweep wrote
    batches: int        # batches sent to the executor (besides the timing runs)


def batches(todo: list[Config], seconds: dict[tuple, float], workers: int,
            target_s: float = TARGET_BATCH_S) -> list[list[Config]]:
    """`todo` cut into batches of one (machine, workload) each, of about `target_s` seconds by
    the per-run times in `seconds`, and small enough that every worker gets about four."""
    groups: dict[tuple, list[Config]] = {}
    for c in todo:
        groups.setdefault((c.machine, c.workload), []).append(c)
    cap = max(1, math.ceil(len(todo) / (4 * max(1, workers))))
    out = []
    for g, cs in groups.items():
        size = max(1, min(cap, int(target_s / max(seconds.get(g, target_s), 1e-6))))
        out.extend(cs[i:i + size] for i in range(0, len(cs), size))
    return out


def _local(jobs: int) -> Callable:
    @contextlib.contextmanager
    def pool():
        if jobs == 1:
            yield lambda bs: ((b, run_batch(b)) for b in bs)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from bench.sim import sweep
        ex = ProcessPoolExecutor(max_workers=jobs, initializer=sweep._die_with_parent,
                                 initargs=(os.getpid(),))

        def run(bs):
            futures = {ex.submit(run_batch, b): b for b in bs}
            for f in as_completed(futures):
                yield futures[f], f.result()
        try:
            yield run
        except BaseException:
            sweep._kill_workers(ex)         # queued runs dropped, running ones killed
            raise
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    return pool


def _dask(jobs: int | None, scheduler: str | None) -> Callable:
    try:
        import distributed
    except ImportError:
        raise RuntimeError("--executor dask: dask.distributed is not installed (pip install "
                           "'fuse-writeback-bench[dask]')") from None

    @contextlib.contextmanager
    def pool():
        with contextlib.ExitStack() as stack:
            if scheduler:
                try:
                    client = stack.enter_context(distributed.Client(scheduler, timeout="10s"))
                except OSError as e:
                    raise RuntimeError(f"--scheduler {scheduler}: cannot connect ({e})") from None
            else:
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                    processes=True, dashboard_address=None, silence_logs=logging.ERROR))
                client = stack.enter_context(distributed.Client(cluster))

            def run(bs):
                futures = client.map(run_batch, bs, pure=False)
                index = {f.key: b for f, b in zip(futures, bs)}
                try:
                    for f in distributed.as_completed(futures):
                        yield index[f.key], f.result()
                except BaseException:
                    client.cancel(futures)
                    raise
            yield run
    return pool


def executor(name: str, jobs: int | None = None, scheduler: str | None = None) -> Callable:
    """A context manager factory: ``with executor(...)() as run: for batch, rows in run(bs)``."""
    if name == "local":
        return _local(jobs or os.cpu_count() or 1)
    if name == "dask":
        return _dask(jobs, scheduler)
    raise ValueError(f"--executor: unknown {name!r}; allowed: {', '.join(EXECUTORS)}")


def run(spec: Spec, out: str | os.PathLike, executor_name: str = "local",
        jobs: int | None = None, scheduler: str | None = None, progress: bool = True,
        target_s: float = TARGET_BATCH_S,
        on_part: Callable[[int], Any] | None = None) -> Outcome:
    """Run the spec's runs that the store at `out` lacks, writing each batch as it ends.
    `on_part(n_runs)` is called after each part file is written (tests interrupt there).
    The runs made in this process select their machine profile; the caller's is restored."""
    from bench.sim import machine
    before = os.environ.get(machine.ENV)
    try:
        return _run(spec, out, executor_name, jobs, scheduler, progress, target_s, on_part)
    finally:
        if before is None:
            os.environ.pop(machine.ENV, None)
        else:
            os.environ[machine.ENV] = before


def _run(spec, out, executor_name, jobs, scheduler, progress, target_s, on_part) -> Outcome:
    from bench.results import store
    from bench.sim import sweep, sweepspec
    configs = sweepspec.expand(spec)
    have = store.keys(out)
    todo = [c for c in configs if c.key() not in have]
    outcome = Outcome(len(configs), len(configs) - len(todo), 0, 0, 0)
    if not todo:
        return outcome
    pool = executor(executor_name, jobs, scheduler)       # a missing dask: before any run
    metadata = _metadata(spec, configs)
    bar = sweep._progress(len(todo), progress)

    def write(rows: list[dict]) -> None:
        store.append(out, rows, metadata)
        outcome.computed += len(rows)
        outcome.parts += 1
        bar.update(len(rows))
        if on_part is not None:
            on_part(len(rows))

    # Two runs per (machine, workload), timed here: the faster sizes the batches (the first
    # run of a process pays for its imports and first calls, tens of ms, which would make
    # batches of runs that take a fraction of a ms far too small).  Their rows are kept.
    seconds: dict[tuple, float] = {}
    timed: dict[tuple, int] = {}
    first: list[dict] = []
    rest: list[Config] = []
    for c in todo:
        g = (c.machine, c.workload)
        if timed.get(g, 0) >= TIMING_RUNS:
            rest.append(c)
            continue
        t = time.perf_counter()
        first.extend(run_batch([c]))
        seconds[g] = min(seconds.get(g, math.inf), time.perf_counter() - t)
        timed[g] = timed.get(g, 0) + 1
    write(first)
    workers = jobs or os.cpu_count() or 1
    bs = batches(rest, seconds, workers, target_s)
    outcome.batches = len(bs)
    if bs:
        with pool() as run_all:
            for _, rows in run_all(bs):
                write(rows)
    bar.close()
    return outcome


def _metadata(spec: Spec, configs: list[Config]) -> dict[str, Any]:
    from bench.results import provenance
    from bench.sim import machine
    profiles: dict[str, Any] = {}
    for c in configs:
        if c.machine not in profiles:
            m = None if c.machine.lower() == machine.NONE else machine.load(c.machine)
            profiles[c.machine] = (m.summary() if m else
                                   {"name": "none", "sha256": c.machine_sha256,
                                    "source": "the table of bench/sim/params.py", "values": {}})
    extra: dict[str, Any] = {"engine": spec.engine, "seeds": len(spec.seeds),
                             "command": "sweep", "spec": spec.where,
                             "spec_description": spec.description, "runs": len(configs),
                             "machines": list(profiles.values())}
    if len(profiles) == 1:
        extra["machine"] = next(iter(profiles.values()))
    return provenance.collect(**extra)

