"""A declarative sweep: a TOML file that names a grid of runs (``python -m bench sweep SPEC``).

Format (every key but ``[product]``'s strategy and workload is optional)::

  description = "free text"
  engine = "c"                  # or "python"
  seeds = 3                     # seeds 0..2; or a list of seeds, [0, 7, 9]

  [product]                     # product axes: every combination of their values
  strategy = ["merge-in-queue", "no-temp-page"]
  workload = ["rand-write", "seq-write"]
  machine = ["ci-2cpu-24g"]     # machine profiles by name (or path); default: the active one
  max_background = [12, 64]     # any model, cost, server, strategy or workload parameter

  [[zip]]                       # zipped axes: lists of one length, varied together (one block
  max_pages = [16, 32, 64]      # of rows), crossed with everything else; repeatable
  server_threads = [2, 4, 8]

  [random]                      # random axes: `samples` points drawn with `seed`, crossed with
  seed = 1                      # everything else
  samples = 4
  dirty_ratio = {uniform = [10, 40]}           # integers if both ends are, else floats
  server_sigma = {log_uniform = [0.1, 2.0]}    # floats, uniform in the logarithm
  server_dist = {choice = ["exponential", "lognormal"]}

An axis is named once across ``[product]``, ``[[zip]]`` and ``[random]``; a scalar in
``[product]`` is an axis of one value.  A workload parameter goes only to the workloads that have
it (as with ``compare --param``), and a configuration that thereby repeats another is run once.

A run's key (``Config.key``) is its whole configuration as canonical JSON: strategy, workload,
machine profile (name and content hash), parameters, seed and engine.  A result store holds each
key once, which is what lets an interrupted sweep resume and a finished run never be redone.
Every error is one ValueError line naming the file and the field.
"""
from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover (the dependency for 3.10)
    import tomli as tomllib

TOP_KEYS = ("description", "engine", "seeds", "product", "zip", "random")
NAMED_AXES = ("strategy", "workload", "machine")
RANDOM_KINDS = ("uniform", "log_uniform", "choice")
MAX_RUNS = 10_000_000          # more than this is a typo, not a sweep


# json.dumps(v, sort_keys=True, separators=(",", ":")), its encoder made once (a key a run)
_KEY_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Config:
    """One run of a sweep."""
    strategy: str
    workload: str
    machine: str            # the profile's spec ("none" for the parameter table)
    machine_sha256: str
    params: dict = field(hash=False)
    seed: int = 0
    engine: str = "c"

    _key: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        # the key is asked for several times per run (expand, the store's keys, the row)
        object.__setattr__(self, "_key", _KEY_JSON.encode(
            {"strategy": self.strategy, "workload": self.workload, "machine": self.machine,
             "machine_sha256": self.machine_sha256, "params": self.params, "seed": self.seed,
             "engine": self.engine}))

    def key(self) -> str:
        return self._key


@dataclass(frozen=True, slots=True)
class Spec:
    where: str
    engine: str
    seeds: tuple[int, ...]
    product: dict[str, list]                # axis -> values
    zips: list[dict[str, list]]             # blocks of axes of one length
    random: dict[str, Any] | None           # {"seed", "samples", "axes": {name: {kind: arg}}}
    description: str = ""


def load(path: str | Path) -> Spec:
    """Read and check a sweep spec; ValueError (one line naming the file and field) otherwise."""
    from bench.results.fileio import read_input
    where = str(path)
    raw = read_input(where, "sweep spec", max_bytes=1 << 20)
    try:
        doc = tomllib.loads(raw.decode())
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not a sweep spec (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{where}: not TOML ({e})") from None
    return parse(doc, where)


def _fail(where: str, field_: str, what: str):
    raise ValueError(f"{where}: {field_}: {what}")


def _known_params() -> set[str]:
    from bench.sim import params, workload
    names = set(params.PARAM_BY_NAME) | set(params.FLOAT_PARAMS) | set(params.STRATEGY_PARAMS)
    for w in workload.workload_names():
        names |= set(workload.workload_params(w))
    return names


def _scalar_ok(v: Any) -> bool:
    return isinstance(v, (int, float, str)) and not (isinstance(v, float) and not math.isfinite(v))


def _values(where: str, name: str, v: Any, scalar_ok: bool) -> list:
    if not isinstance(v, list):
        if not scalar_ok:
            _fail(where, name, f"expected a list of values, got {type(v).__name__}")
        v = [v]
    if not v:
        _fail(where, name, "no values")
    for x in v:
        if isinstance(x, bool) or not _scalar_ok(x):
            _fail(where, name, f"{x!r} is not a number or a string")
    if len({json.dumps(x) for x in v}) != len(v):
        _fail(where, name, "a value appears twice")
    return v


def parse(doc: Any, where: str = "sweep spec") -> Spec:
    """A Spec from a parsed TOML document, every name and value checked."""
    from bench import sim
    if not isinstance(doc, dict):
        _fail(where, "top level", "expected a table")
    for k in doc:
        if k not in TOP_KEYS:
            _fail(where, k, f"unknown key; allowed: {', '.join(TOP_KEYS)}")
    engine = doc.get("engine", "c")
    if engine not in sim.ENGINES:
        _fail(where, "engine", f"unknown {engine!r}; allowed: {', '.join(sim.ENGINES)}")
    seeds = doc.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 1000:
            _fail(where, "seeds", f"a count must be in 1..1000, got {seeds}")
        seeds = list(range(seeds))
    elif isinstance(seeds, list) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 1 << 63 for s in seeds):
        if len(set(seeds)) != len(seeds):
            _fail(where, "seeds", "a seed appears twice")
    else:
        _fail(where, "seeds", f"expected a count or a list of integers >= 0, got {seeds!r}")
    known = _known_params()
    seen: dict[str, str] = {}

    def axis(name: str, section: str) -> None:
        if name == "seed":
            _fail(where, f"{section}.{name}", "seeds are the top-level key 'seeds'")
        if name not in NAMED_AXES and name not in known:
            _fail(where, f"{section}.{name}", "unknown parameter (python -m bench list shows "
                                              "them)")
        if name in seen:
            _fail(where, f"{section}.{name}", f"the axis is already in {seen[name]}")
        seen[name] = section

    product_doc = doc.get("product", {})
    if not isinstance(product_doc, dict):
        _fail(where, "product", "expected a table")
    product = {}
    for name, v in product_doc.items():
        axis(name, "product")
        product[name] = _values(where, f"product.{name}", v, scalar_ok=True)
    zips_doc = doc.get("zip", [])
    if isinstance(zips_doc, dict):
        zips_doc = [zips_doc]
    if not isinstance(zips_doc, list) or not all(isinstance(z, dict) for z in zips_doc):
        _fail(where, "zip", "expected tables ([[zip]])")
    zips = []
    for i, z in enumerate(zips_doc):
        block = {}
        for name, v in z.items():
            axis(name, f"zip[{i}]")
            block[name] = _values(where, f"zip[{i}].{name}", v, scalar_ok=False)
        lengths = {len(v) for v in block.values()}
        if len(lengths) > 1:
            _fail(where, f"zip[{i}]", f"zipped lists differ in length ({sorted(lengths)})")
        if block:
            zips.append(block)
    rnd = doc.get("random")
    random_spec = None
    if rnd is not None:
        random_spec = _parse_random(where, rnd, axis)
    for name in ("strategy", "workload"):
        if name not in seen:
            _fail(where, name, "missing: give the axis in [product] (or a [[zip]] block)")
    bad = [s for s in _axis_values(product, zips, "strategy") if s not in sim.strategies()]
    if bad:
        _fail(where, "strategy", f"unknown {bad[0]!r}; allowed: {', '.join(sim.strategies())}")
    bad = [w for w in _axis_values(product, zips, "workload") if w not in sim.workloads()]
    if bad:
        _fail(where, "workload", f"unknown {bad[0]!r}; allowed: {', '.join(sim.workloads())}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        _fail(where, "description", "expected a string")
    return Spec(where, engine, tuple(seeds), product, zips, random_spec, description)


def _axis_values(product: dict, zips: list, name: str) -> list:
    if name in product:
        return product[name]
    for z in zips:
        if name in z:
            return z[name]
    return []


def _parse_random(where: str, rnd: Any, axis) -> dict:
    if not isinstance(rnd, dict):
        _fail(where, "random", "expected a table")
    seed, samples = rnd.get("seed"), rnd.get("samples")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        _fail(where, "random.seed", f"expected an integer >= 0, got {seed!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 100_000:
        _fail(where, "random.samples", f"expected an integer in 1..100000, got {samples!r}")
    axes = {}
    for name, v in rnd.items():
        if name in ("seed", "samples"):
            continue
        f = f"random.{name}"
        axis(name, "random")
        if name in NAMED_AXES:
            _fail(where, f, "strategies, workloads and machines are [product] or [[zip]] axes")
        if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in RANDOM_KINDS:
            _fail(where, f, f"expected one of {{{' | '.join(k + ' = ...' for k in RANDOM_KINDS)}}}")
        kind, arg = next(iter(v.items()))
        if kind == "choice":
            arg = _values(where, f"{f}.choice", arg, scalar_ok=False)
        else:
            if (not isinstance(arg, list) or len(arg) != 2 or
                    not all(isinstance(x, (int, float)) and not isinstance(x, bool) and
                            math.isfinite(x) for x in arg) or not arg[0] <= arg[1]):
                _fail(where, f"{f}.{kind}", f"expected [low, high] with low <= high, got {arg!r}")
            if kind == "log_uniform" and arg[0] <= 0:
                _fail(where, f"{f}.log_uniform", "low must be > 0")
        axes[name] = {kind: arg}
    if not axes:
        _fail(where, "random", "no axes")
    return {"seed": seed, "samples": samples, "axes": axes}


def _random_rows(r: dict) -> list[dict]:
    """The random block's points: numpy's PCG64 from the spec's seed, one axis after another in
    the file's order, so the same spec gives the same points everywhere."""
    import numpy as np
    rng = np.random.default_rng(r["seed"])
    n = r["samples"]
    cols = {}
    for name, spec in r["axes"].items():
        (kind, arg), = spec.items()
        if kind == "choice":
            cols[name] = [arg[int(i)] for i in rng.integers(0, len(arg), n)]
        elif kind == "uniform" and all(isinstance(x, int) for x in arg):
            cols[name] = [int(x) for x in rng.integers(arg[0], arg[1], n, endpoint=True)]
        elif kind == "uniform":
            cols[name] = [float(x) for x in rng.uniform(arg[0], arg[1], n)]
        else:
            lo, hi = math.log(arg[0]), math.log(arg[1])
            cols[name] = [float(math.exp(x)) for x in rng.uniform(lo, hi, n)]
    return [{k: cols[k][i] for k in cols} for i in range(n)]


def count(spec: Spec) -> int:
    """How many configurations the grid names (before runs that repeat others are merged)."""
    n = len(spec.seeds) * math.prod(len(v) for v in spec.product.values())
    n *= math.prod(len(next(iter(z.values()))) for z in spec.zips)
    return n * (spec.random["samples"] if spec.random else 1)


def expand(spec: Spec) -> list[Config]:
    """Every run of the spec, in the file's order, each configuration once; its parameters
    checked (one error line, before any run)."""
    from bench import sim
    from bench.sim import machine as machines, workload as wl
    total = count(spec)
    if total > MAX_RUNS:
        _fail(spec.where, "top level", f"{total} runs, more than {MAX_RUNS}")
    blocks: list[list[dict]] = [[{k: v} for v in vals] for k, vals in spec.product.items()]
    for z in spec.zips:
        names = list(z)
        blocks.append([dict(zip(names, row)) for row in zip(*z.values())])
    if spec.random:
        blocks.append(_random_rows(spec.random))
    active = machines.spec()
    resolved: dict[str, tuple[str, str]] = {}

    def machine_of(name: str) -> tuple[str, str]:
        if name not in resolved:
            try:
                m = None if name.lower() == machines.NONE else machines.load(name)
            except ValueError as e:
                _fail(spec.where, "machine", str(e))
            if m is not None and machines._is_path(name):
                name = str(Path(name).expanduser().absolute())
            resolved[name] = (name, m.sha256 if m else machines.values_hash({}))
        return resolved[name]

    from bench.sim import sweep
    own = {w: set(wl.workload_params(w)) for w in sim.workloads()}
    any_workload = sweep.workload_only_params()    # the rest goes to every run
    out: list[Config] = []
    keys: set[str] = set()
    checked: set[str] = set()
    for combo in itertools.product(*blocks):
        point: dict[str, Any] = {}
        for part in combo:
            point.update(part)
        strategy, workload = point.pop("strategy"), point.pop("workload")
        mname, msha = machine_of(str(point.pop("machine", active)))
        params = {k: v for k, v in point.items() if k not in any_workload or k in own[workload]}
        for seed in spec.seeds:
            c = Config(strategy, workload, mname, msha, params, seed, spec.engine)
            k = c.key()
            if k in keys:
                continue
            keys.add(k)
            out.append(c)
        probe = json.dumps([strategy, workload, mname, params], sort_keys=True)
        if probe not in checked:
            checked.add(probe)
            _check(spec.where, Config(strategy, workload, mname, msha, params, spec.seeds[0],
                                      spec.engine))
    return out


def _check(where: str, c: Config) -> None:
    """The engine's own checks of one configuration (names, ranges, the workload's size)."""
    from bench.sim import machine as machines, sweeprun
    import os
    old = os.environ.get(machines.ENV)
    try:
        machines.select(c.machine)
        if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < 1 << 63:
            raise ValueError(f"seed: must be an integer in 0..2**63-1, got {c.seed!r}")
        # what bench.sim.prepare checks, through the caches a batch run here uses again
        p = sweeprun._point(c)
        _, carried = sweeprun._cached_workload(c, p["wkey"], p["names"])
        sweeprun._config(c, p, carried)
    except ValueError as e:
        desc = ", ".join(f"{k}={v}" for k, v in c.params.items())
        raise ValueError(f"{where}: {c.strategy}/{c.workload}"
                         f"{' ' + desc if desc else ''}: {e}") from None
    finally:
        if old is None:
            os.environ.pop(machines.ENV, None)
        else:
            os.environ[machines.ENV] = old
