"""Result records and result files.

A `Run` is one strategy on one workload with one seed; a `Suite` is a sweep of
runs with the metadata a reader needs to trust it.  This module alone reads and
writes result files (pyperf's BenchmarkSuite idea): JSON, versioned, validated
on load with errors that name the place, written atomically, and never
overwritten unless asked.

Format versions:
  1  schema_version, metadata, runs[{strategy, workload, params, seed, engine,
     metrics, series?, meta?}]; pages_per_request keys are strings in JSON;
     meta holds what a real mount saw (family detected, bdi settings, server
     options).
"""
from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bench.results.fileio import (check_writable, jsonable, output_lock,  # noqa: F401 (re-exported)
                                  read_input, write_checked)
from bench.results.metrics import LATENCY_METRICS, METRIC_BY_NAME, REQUIRED_METRICS

SCHEMA_VERSION = 1
SERIES_FIELDS = ("time_ns", "dirty", "writeback", "temp", "cache", "anon")
MAX_SERIES_ROWS = 200          # series are thinned to this many rows in files
_LATENCY_KEYS = ("p50", "p99", "p999", "max", "count")


@dataclass(frozen=True, slots=True)
class Run:
    strategy: str
    workload: str
    params: Mapping[str, Any]      # workload and model parameters given by the caller
    seed: int
    engine: str                    # "c", "python", or "mount"
    metrics: Mapping[str, Any]     # names of model.md's "Result names" table, and more
    series: np.ndarray = field(default_factory=lambda: np.zeros((0, len(SERIES_FIELDS)), np.int64),
                               compare=False, repr=False)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.strategy or not self.workload:
            raise ValueError("Run: strategy and workload must be named")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"Run: seed must be an integer >= 0, got {self.seed!r}")

    def key(self) -> tuple:
        """What identifies a run's configuration across files (everything but its numbers)."""
        return (self.strategy, self.workload, json.dumps(dict(self.params), sort_keys=True),
                self.seed, self.engine)


@dataclass(frozen=True, slots=True)
class Suite:
    metadata: Mapping[str, Any]
    runs: tuple[Run, ...]

    def workloads(self) -> list[str]:
        return list(dict.fromkeys(r.workload for r in self.runs))

    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r.strategy for r in self.runs))

    def select(self, workload: str | None = None, strategy: str | None = None) -> list[Run]:
        return [r for r in self.runs if (workload is None or r.workload == workload)
                and (strategy is None or r.strategy == strategy)]


# ------------------------------------------------------------------ writing
def _thin(series: np.ndarray) -> list[list[int]]:
    if len(series) <= MAX_SERIES_ROWS:
        rows = series
    else:
        rows = series[np.linspace(0, len(series) - 1, MAX_SERIES_ROWS).round().astype(int)]
    return [[int(v) for v in row] for row in rows]


def run_to_dict(r: Run, with_series: bool = True) -> dict:
    d = {"strategy": r.strategy, "workload": r.workload, "params": jsonable(dict(r.params)),
         "seed": r.seed, "engine": r.engine, "metrics": jsonable(dict(r.metrics))}
    if with_series and len(r.series):
        d["series"] = _thin(r.series)
    if r.meta:
        d["meta"] = jsonable(dict(r.meta))
    return d


def suite_to_dict(s: Suite, with_series: bool = True) -> dict:
    return {"schema_version": SCHEMA_VERSION, "metadata": jsonable(dict(s.metadata)),
            "runs": [run_to_dict(r, with_series) for r in s.runs]}


def _format(doc: dict) -> str:
    """Indented JSON, but each series row on one line: readable, diffable, not bloated."""
    token = f"@@series-{uuid.uuid4().hex}-"      # cannot collide with anything in the document
    series = []
    for run in doc["runs"]:
        if "series" in run:
            series.append(run["series"])
            run["series"] = f"{token}{len(series) - 1}"
    text = json.dumps(doc, indent=1, allow_nan=False)
    for i, rows in enumerate(series):
        body = ",\n    ".join(json.dumps(r) for r in rows)
        text = text.replace(f'"{token}{i}"', "[\n    " + body + "\n   ]", 1)
    return text


def dump(s: Suite, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write s to path atomically (temp file + rename); refuse to replace a file unless asked."""
    return write_checked(path, (_format(suite_to_dict(s)) + "\n").encode(), overwrite)


# ------------------------------------------------------------------ reading
class _Checker:
    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, what: str):
        raise ValueError(f"{self.path}: {where}: {what}")

    def typed(self, obj: Any, where: str, kind: type | tuple) -> Any:
        if isinstance(obj, bool) and kind in (int, (int, float)):
            self.fail(where, f"expected {getattr(kind, '__name__', 'number')}, got bool")
        if not isinstance(obj, kind):
            name = kind.__name__ if isinstance(kind, type) else "number"
            self.fail(where, f"expected {name}, got {type(obj).__name__}")
        return obj


MAX_VALUE = 2 ** 63        # no count, time, size or rate of a run comes near it


def _value(chk: _Checker, where: str, v: Any, integer: bool = False) -> int | float:
    """A number a metric can be: finite, not negative, below MAX_VALUE (an integer if asked)."""
    chk.typed(v, where, int if integer else (int, float))
    if isinstance(v, float) and not math.isfinite(v):
        chk.fail(where, "not a finite number")
    if v < 0:
        chk.fail(where, f"{v} is negative; every metric is a count, a time, a size or a rate")
    if v >= MAX_VALUE:
        chk.fail(where, f"{v} is out of range (a metric is below 2**63)")
    return v


def _metric(chk: _Checker, where: str, name: str, v: Any) -> Any:
    m = METRIC_BY_NAME.get(name)
    if m is None:                     # unknown extra metrics are kept, if they are plain numbers
        return _value(chk, where, v) if not isinstance(v, (dict, list, str)) else v
    if m.unit == "hist":
        chk.typed(v, where, dict)
        out = {}
        for k, n in v.items():
            if not str(k).isdigit() or int(k) == 0 or len(str(k)) > 6:
                chk.fail(where, f"histogram key {k!r} is not a page count")
            out[int(k)] = _value(chk, f"{where}[{k}]", n, integer=True)
        return out
    if name in LATENCY_METRICS:
        chk.typed(v, where, dict)
        for k in _LATENCY_KEYS:
            if k not in v:
                chk.fail(where, f"latency object lacks {k!r}")
            _value(chk, f"{where}.{k}", v[k], integer=(k == "count"))
        extra = sorted(set(v) - set(_LATENCY_KEYS))
        if extra:
            chk.fail(where, f"latency object has unknown key {extra[0]!r}")
        if not v["p50"] <= v["p99"] <= v["p999"] <= v["max"]:
            chk.fail(where, "percentiles out of order (p50 <= p99 <= p999 <= max)")
        return dict(v)
    return _value(chk, where, v, integer=m.unit in ("count",))


def _run(chk: _Checker, i: int, d: Any) -> Run:
    where = f"runs[{i}]"
    chk.typed(d, where, dict)
    for k in ("strategy", "workload", "params", "seed", "engine", "metrics"):
        if k not in d:
            chk.fail(where, f"missing {k!r}")
    chk.typed(d["strategy"], f"{where}.strategy", str)
    chk.typed(d["workload"], f"{where}.workload", str)
    chk.typed(d["params"], f"{where}.params", dict)
    _finite(chk, d["params"], f"{where}.params")
    chk.typed(d["seed"], f"{where}.seed", int)
    chk.typed(d["engine"], f"{where}.engine", str)
    chk.typed(d["metrics"], f"{where}.metrics", dict)
    metrics = {k: _metric(chk, f"{where}.metrics.{k}", k, v) for k, v in d["metrics"].items()}
    for k in REQUIRED_METRICS:
        if k not in metrics:
            chk.fail(f"{where}.metrics", f"missing {k!r} (every run has it)")
    series = np.zeros((0, len(SERIES_FIELDS)), np.int64)
    if "series" in d:
        try:
            series = np.asarray(d["series"], dtype=np.int64).reshape(-1, len(SERIES_FIELDS))
        except (TypeError, ValueError, OverflowError):
            chk.fail(f"{where}.series", f"expected rows of {len(SERIES_FIELDS)} integers")
    meta = chk.typed(d.get("meta", {}), f"{where}.meta", dict)
    _finite(chk, meta, f"{where}.meta")
    try:
        return Run(d["strategy"], d["workload"], d["params"], d["seed"], d["engine"], metrics, series,
                   meta)
    except ValueError as e:
        chk.fail(where, str(e))


def load(path: str | os.PathLike) -> Suite:
    """Read and validate a result file; ValueError naming the file and the place otherwise."""
    p = str(path)
    chk = _Checker(p)
    try:
        text = read_input(p, "result file").decode()
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not JSON (not UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise ValueError(f"{p}: not a result file (JSON nested too deeply)") from None
    except ValueError as e:          # e.g. an integer of more than 4300 digits
        raise ValueError(f"{p}: not a result file ({str(e).split(':')[0]})") from None
    chk.typed(doc, "top level", dict)
    version = doc.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        chk.fail("schema_version", f"{version!r} is not supported (this version reads {SCHEMA_VERSION})")
    for k in ("metadata", "runs"):
        if k not in doc:
            chk.fail("top level", f"missing {k!r}")
    chk.typed(doc["metadata"], "metadata", dict)
    _finite(chk, doc["metadata"], "metadata")
    chk.typed(doc["runs"], "runs", list)
    runs = tuple(_run(chk, i, d) for i, d in enumerate(doc["runs"]))
    seen: dict[tuple, int] = {}
    for i, r in enumerate(runs):
        j = seen.setdefault(r.key(), i)
        if j != i:
            chk.fail(f"runs[{i}]", f"the same configuration as runs[{j}] (strategy, workload, "
                     f"params, seed, engine): a run appears once")
    return Suite(doc["metadata"], runs)


def _finite(chk: _Checker, obj: Any, where: str) -> None:
    """json reads NaN and Infinity; no value of a result file may be one, wherever it is."""
    if isinstance(obj, float) and not math.isfinite(obj):
        chk.fail(where, "not a finite number")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _finite(chk, v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite(chk, v, f"{where}[{i}]")
