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

import functools
import importlib.resources
import itertools
import json
import math
import os
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bench.results.fileio import (check_writable, jsonable, output_lock,  # noqa: F401 (re-exported)
                                  read_input, write_checked)
from bench.results.metrics import LATENCY_METRICS, METRIC_BY_NAME

SCHEMA_VERSION = 1
SERIES_FIELDS = ("time_ns", "dirty", "writeback", "temp", "cache", "anon")
MAX_SERIES_ROWS = 200          # series are thinned to this many rows in files


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

    def partial_note(self, path: str | os.PathLike) -> str | None:
        """One line saying that the file at `path` lacks runs it was asked for
        (metadata.failed_runs), or None for a whole file."""
        failed = self.metadata.get("failed_runs") or []
        if not failed:
            return None
        f = failed[0]
        return (f"WARNING: {path} is partial: {len(failed)} run(s) asked for are missing, first "
                f"{f['strategy']}/{f['workload']} seed {f['seed']}: {f['error']}")


# ------------------------------------------------------------------ writing
def thinned(series: np.ndarray) -> np.ndarray:
    """The rows of a series that a result file keeps (MAX_SERIES_ROWS, evenly spread); a
    series thinned once is kept whole."""
    if len(series) <= MAX_SERIES_ROWS:
        return series
    return series[np.linspace(0, len(series) - 1, MAX_SERIES_ROWS).round().astype(int)]


def _thin(series: np.ndarray) -> list[list[int]]:
    rows = thinned(series)
    if rows.dtype.kind in "iu":
        return rows.tolist()             # Python ints, as int(v) gives, at a tenth of the time
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


def _rows_text(series: list) -> str:
    """The rows of a series as json.dumps writes each, joined one a line.  A list of flat rows
    of numbers (all that _thin makes) is encoded in one call of json's C encoder and cut
    between its rows: the same text at a fraction of the time."""
    if type(series) is list and series and all(type(r) is list for r in series):
        text = json.dumps(series)
        # lists with rows + 1 brackets, no object and no string: every row is a flat list of
        # numbers, true, false or null, so "], [" is only ever found between two rows
        if text.count("[") == len(series) + 1 and "{" not in text and '"' not in text:
            return text[1:-1].replace("], [", "],\n  [")
    return ",\n  ".join(json.dumps(r) for r in series)


def _chunks(doc: dict):
    """The text of _format(doc), piece by piece: the document without its runs, then each run
    encoded on its own (json.dumps at indent=1, moved two levels in), series rows one a line."""
    runs = doc["runs"]
    if not runs:
        yield json.dumps(doc, indent=1, allow_nan=False)
        return
    token = f"@@runs-{uuid.uuid4().hex}"          # cannot collide with anything in the document
    head, tail = json.dumps({**doc, "runs": token}, indent=1, allow_nan=False).split(
        f'"{token}"')
    yield head + "[\n"
    for i, run in enumerate(runs):
        has_series = "series" in run
        if has_series:
            series, run = run["series"], {**run, "series": token}
        text = json.dumps(run, indent=1, allow_nan=False)
        if has_series:
            before, after = text.split(f'"{token}"')
            text = before + "[\n  " + _rows_text(series) + "\n ]" + after
        # JSON text has no raw newline inside a string: every line is moved in by two spaces
        yield "  " + text.replace("\n", "\n  ") + (",\n" if i + 1 < len(runs) else "\n")
    yield " ]" + tail


def _format(doc: dict) -> str:
    """Indented JSON, but each series row on one line: readable, diffable, not bloated."""
    return "".join(_chunks(doc))


def dump(s: Suite, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write s to path atomically (temp file + rename); refuse to replace a file unless asked."""
    return write_checked(path, (_format(suite_to_dict(s)) + "\n").encode(), overwrite)


# ------------------------------------------------------------------ reading
MAX_VALUE = 2 ** 63        # no count, time, size or rate of a run comes near it
SCHEMA_FILE = "schema.json"          # package data beside this module: the format, documented


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of a result file (bench/results/schema.json, shipped in the package)."""
    return json.loads(importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text())


def _inline(node: Any, defs: dict) -> Any:
    """The schema with every local ``$ref`` replaced by its definition (it has no cycles):
    jsonschema validates such a schema about twice as fast."""
    if isinstance(node, dict):
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(defs[node["$ref"].rsplit("/", 1)[1]], defs), **rest}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(x, defs) for x in node]
    return node


@functools.lru_cache(maxsize=1)
def _flat_schema() -> dict:
    """The schema as the loader applies it: inlined, a run's series only an array."""
    flat = _inline(schema(), schema()["$defs"])
    # A run's series (up to 200 rows of 6 integers) is checked with numpy in _series: the same
    # rule as the schema's, at a hundredth of the time.
    flat["properties"]["runs"]["items"]["properties"]["series"] = {"type": "array"}
    return flat


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema
    from jsonschema import validators
    base = jsonschema.Draft202012Validator
    base.check_schema(schema())
    flat = _flat_schema()
    # JSON's integers only: 3.0 is a number, not a count (jsonschema would take it as one).
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return validators.extend(base, type_checker=checker)(flat)


_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$comment"})
_SIMPLE_TYPES = {"object": dict, "array": list, "string": str}


def _accepts(node: dict):
    """A predicate that is True only for an instance `node` (a schema without $ref, as _inline
    makes) surely accepts, under the validator's rules: a quick yes for valid files.  It may
    say False for a valid instance (then jsonschema decides), never True for an invalid one.
    KeyError for a keyword it does not know: then jsonschema always decides."""
    checks = []
    for kw, arg in node.items():
        if kw in _ANNOTATIONS:
            continue
        if kw == "type":
            names = [arg] if isinstance(arg, str) else list(arg)
            def is_type(v, names=tuple(names)):
                for n in names:
                    if n in ("integer", "number"):
                        t = type(v)
                        if t is int or (n == "number" and t is float):
                            return True
                    elif type(v) is _SIMPLE_TYPES[n]:
                        return True
                return False
            for n in names:
                if n not in ("integer", "number"):
                    _SIMPLE_TYPES[n]            # KeyError: a type this does not check
            checks.append(is_type)
        elif kw in ("minimum", "exclusiveMaximum") and type(arg) is int:
            lo = kw == "minimum"
            checks.append(lambda v, m=arg, lo=lo: type(v) not in (int, float) or
                          (v >= m if lo else v < m))
        elif kw == "const" and type(arg) is int:
            checks.append(lambda v, c=arg: type(v) is int and v == c)
        elif kw == "minLength" and type(arg) is int:
            checks.append(lambda v, m=arg: type(v) is not str or len(v) >= m)
        elif kw in ("minItems", "maxItems") and type(arg) is int:
            lo = kw == "minItems"
            checks.append(lambda v, m=arg, lo=lo: type(v) is not list or
                          (len(v) >= m if lo else len(v) <= m))
        elif kw == "required":
            checks.append(lambda v, keys=tuple(arg): type(v) is not dict or
                          all(k in v for k in keys))
        elif kw == "items" and isinstance(arg, dict):
            item = _accepts(arg)
            checks.append(lambda v, item=item: type(v) is not list or all(map(item, v)))
        elif kw == "anyOf":
            alts = [_accepts(a) for a in arg]
            checks.append(lambda v, alts=alts: any(a(v) for a in alts))
        elif kw == "propertyNames" and set(arg) - _ANNOTATIONS == {"pattern"}:
            match = re.compile(arg["pattern"]).search
            checks.append(lambda v, match=match: type(v) is not dict or
                          all(type(k) is str and match(k) for k in v))
        elif kw in ("properties", "additionalProperties"):
            continue                            # below, together
        else:
            raise KeyError(kw)
    props = {k: _accepts(v) for k, v in node.get("properties", {}).items()}
    extra = node.get("additionalProperties", True)
    if extra is not True or props:
        rest = (None if extra is True else (lambda v: False) if extra is False
                else _accepts(extra))
        def objects(v, props=props, rest=rest):
            if type(v) is not dict:
                return True
            for k, x in v.items():
                p = props.get(k)
                if p is not None:
                    if not p(x):
                        return False
                elif rest is not None and not rest(x):
                    return False
            return True
        checks.append(objects)
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


@functools.lru_cache(maxsize=1)
def _quick():
    """_accepts of the validator's schema, or None if it uses a keyword _accepts lacks.  A file
    it accepts is loaded without importing jsonschema (0.1 s)."""
    try:
        return _accepts(_flat_schema())
    except KeyError:
        return None


def _series(rows: list) -> np.ndarray | None:
    """A run's series as an int64 array of SERIES_FIELDS columns, or None if it is not one."""
    if not rows:
        return np.zeros((0, len(SERIES_FIELDS)), np.int64)
    # Lists of Python ints (what json.loads makes) are seen by the types of all the values at
    # once; anything else by each value, as before.
    if not (set(map(type, rows)) == {list} and set(map(len, rows)) == {len(SERIES_FIELDS)} and
            set(map(type, itertools.chain.from_iterable(rows))) == {int}) and \
            not all(isinstance(r, list) and len(r) == len(SERIES_FIELDS) and
                    all(isinstance(x, int) and not isinstance(x, bool) for x in r) for r in rows):
        return None
    try:
        return np.asarray(rows, dtype=np.int64)
    except OverflowError:
        return None


def _where(path) -> str:
    out = ""
    for k in path:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "top level"


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "object": "an object",
               "array": "an array", "string": "a string"}


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _say(err) -> str:
    """One line for a jsonschema error, in the loader's words."""
    v, kind, arg = err.instance, err.validator, err.validator_value
    if "propertyNames" in err.absolute_schema_path:      # a histogram's key
        return f"key {_short(v)} is not a page count (1..999999)"
    if kind == "required":
        missing = next((k for k in arg if isinstance(v, dict) and k not in v), arg[0])
        return f"missing {missing!r}"
    if kind == "type":
        want = " or ".join(_TYPE_NAMES.get(t, t) for t in ([arg] if isinstance(arg, str) else arg))
        return f"expected {want}, got {'bool' if isinstance(v, bool) else type(v).__name__}"
    if kind == "minimum":
        return (f"{_short(v)} is negative; every count, time, size and rate is >= 0"
                if arg == 0 else f"{_short(v)} is below {arg}")
    if kind == "exclusiveMaximum":
        return f"{_short(v)} is out of range (a value is below 2**63)"
    if kind == "const":
        return f"{_short(v)} is not supported (this version reads {arg})"
    if kind == "additionalProperties":
        extra = sorted(set(v) - set(err.schema.get("properties", {})))
        return f"unknown key {extra[0]!r}" if extra else err.message[:120]
    if kind == "minLength":
        return "must not be empty"
    if kind in ("minItems", "maxItems"):
        return f"expected {arg} values, got {len(v)}"
    if kind == "anyOf":
        return f"{_short(v)}: expected a number >= 0 below 2**63, an object, an array or a string"
    return err.message[:160]


def _first_error(doc: Any):
    """The schema violation a reader should see first: the earliest run, the shallowest place."""
    best = None
    for err in _validator().iter_errors(doc):
        path = list(err.absolute_path)
        key = (path[1] if len(path) > 1 and path[0] == "runs" and isinstance(path[1], int)
               else -1, len(path))
        if "propertyNames" in err.absolute_schema_path:
            path = path + [err.instance]        # name the key itself
        if best is None or key < best[0]:
            best = (key, path, err)
    return None if best is None else (best[1], best[2])


def _nonfinite(obj: Any, path: list) -> list | None:
    """json reads NaN and Infinity, and the schema's numbers take them: the path of one, if any."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    if isinstance(obj, dict):
        for k, v in obj.items():
            if (p := _nonfinite(v, path + [k])) is not None:
                return p
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if (p := _nonfinite(v, path + [i])) is not None:
                return p
    return None


def _any_nonfinite(obj: Any) -> bool:
    """Whether _nonfinite finds something, the same walk without a path for each place."""
    isfinite = math.isfinite
    stack = [obj]
    pop, extend = stack.pop, stack.extend
    while stack:
        o = pop()
        t = type(o)
        if t is list:
            if not all(type(x) is int for x in o):  # a series row has nothing to see
                extend(o)
        elif t is dict:
            extend(o.values())
        elif t is float:
            if not isfinite(o):
                return True
        elif t is not int and t is not str and t is not bool and o is not None:
            if _nonfinite(o, []) is not None:       # not made by json.loads: the careful walk
                return True
    return False


def check(doc: Any, where: str = "result file") -> None:
    """ValueError, one line naming `where` and the JSON path, unless `doc` (parsed JSON) is a
    valid result file: the schema (``schema()``), finite numbers everywhere, latency percentiles
    in order, and each (strategy, workload, params, seed, engine) once."""
    def fail(path, what):
        raise ValueError(f"{where}: {_where(path)}: {what}")
    if isinstance(doc, dict) and "schema_version" in doc and (
            isinstance(doc["schema_version"], bool) or doc["schema_version"] != SCHEMA_VERSION):
        fail(["schema_version"], f"{_short(doc['schema_version'])} is not supported (this "
                                 f"version reads {SCHEMA_VERSION})")
    bad = _nonfinite(doc, []) if _any_nonfinite(doc) else None
    if bad is not None:
        fail(bad, "not a finite number")
    quick = _quick()
    err = None if quick is not None and quick(doc) else _first_error(doc)
    if err is not None:
        fail(err[0], _say(err[1]))
    seen: dict[tuple, int] = {}
    for i, run in enumerate(doc["runs"]):
        if "series" in run and _series(run["series"]) is None:
            fail(["runs", i, "series"], f"expected rows of {len(SERIES_FIELDS)} integers "
                                        "(int64)")
        for name in LATENCY_METRICS & run["metrics"].keys():
            v = run["metrics"][name]
            if not v["p50"] <= v["p99"] <= v["p999"] <= v["max"]:
                fail(["runs", i, "metrics", name], "percentiles out of order (p50 <= p99 <= p999 <= max)")
        key = (run["strategy"], run["workload"], json.dumps(run["params"], sort_keys=True),
               run["seed"], run["engine"])
        j = seen.setdefault(key, i)
        if j != i:
            fail(["runs", i], f"the same configuration as runs[{j}] (strategy, workload, params, "
                              "seed, engine): a run appears once")


def _run(d: dict) -> Run:
    metrics = {}
    for k, v in d["metrics"].items():
        m = METRIC_BY_NAME.get(k)
        if m is not None and m.unit == "hist":
            v = {int(n): c for n, c in v.items()}
        elif k in LATENCY_METRICS:
            v = dict(v)
        metrics[k] = v
    series = _series(d.get("series", []))
    return Run(d["strategy"], d["workload"], d["params"], d["seed"], d["engine"], metrics,
               series, d.get("meta", {}))


def warn_partial(loaded) -> None:
    """Say on stderr, one line each, which of the (path, Suite) pairs are partial files."""
    for path, suite in loaded:
        note = suite.partial_note(path)
        if note:
            print(note, file=sys.stderr)


def load(path: str | os.PathLike) -> Suite:
    """Read and validate a result file; ValueError naming the file and the place otherwise."""
    p = str(path)
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
    try:
        check(doc, p)
    except RecursionError:
        raise ValueError(f"{p}: not a result file (JSON nested too deeply)") from None
    return Suite(doc["metadata"], tuple(_run(d) for d in doc["runs"]))
