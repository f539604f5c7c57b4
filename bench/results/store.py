"""The result store of a sweep: a directory of Parquet files (pyarrow), one row per run.

JSON result files stay for small suites; a sweep of 10^4 runs and more goes here.  The store is
a directory of part files, ``part-NNNNNN.parquet``, one per batch of runs, each written to a
temp file and renamed into place, so a crash loses at most the batches not yet written and
never leaves half a file.  Each part carries, in its Arrow schema metadata (key ``fwb``), the
result format's ``schema_version`` (bench.results.SCHEMA_VERSION) and the metadata of the sweep
that wrote it (provenance, spec, machine profiles).

One row per run: ``key`` (the run's whole configuration, bench.sim.sweepspec.Config.key),
``strategy``, ``workload``, ``machine``, ``machine_sha256``, ``seed``, ``engine``, ``params``
(JSON), every scalar metric as a column, each latency object flattened into
``NAME.p50``, ``NAME.p99``, ``NAME.p999``, ``NAME.max``, ``NAME.count``, the pages-per-request
histogram and ``meta`` as JSON, and ``series`` (the thinned memory series, rows of
bench.results.SERIES_FIELDS).  ``load`` reads a store back as a Suite, checked like a JSON file.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from bench import results
from bench.results.metrics import LATENCY_METRICS, METRIC_BY_NAME

FORMAT = "fwb-sweep-store"
META_KEY = b"fwb"
PART_RE = re.compile(r"part-(\d{6,})\.parquet")
KEY_COLUMNS = ("key", "strategy", "workload", "machine", "machine_sha256", "seed", "engine")
LATENCY_KEYS = ("p50", "p99", "p999", "max", "count")     # a latency object's, flattened in this order


def parts(path: str | os.PathLike) -> list[Path]:
    p = Path(path)
    if not p.is_dir():
        return []
    return sorted((q for q in p.iterdir() if PART_RE.fullmatch(q.name)),
                  key=lambda q: int(PART_RE.fullmatch(q.name).group(1)))


def check_store(path: str | os.PathLike) -> Path:
    """ValueError (one line) unless `path` is an existing store or can become one."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{p}: exists and is not a directory; a sweep's store is a directory "
                         f"of Parquet files")
    if p.is_dir() and any(True for _ in p.iterdir()) and not parts(p):
        raise ValueError(f"{p}: a directory that is not a sweep store (no part-*.parquet)")
    results.check_writable(p / "part-000000.parquet", overwrite=True)
    return p


# ---------------------------------------------------------------- rows
_PLAIN = frozenset((int, float, str, bool, type(None)))
_JSON = json.JSONEncoder(sort_keys=True)     # json.dumps(v, sort_keys=True), made once
_LATENCY_COLUMNS = {name: tuple((k, f"{name}.{k}") for k in LATENCY_KEYS) for name in LATENCY_METRICS}


def params_json(params: Mapping[str, Any]) -> str:
    """The `params` column of a run with these parameters."""
    return _JSON.encode(results.jsonable(dict(params)))


def run_row(key: str, machine: str, machine_sha256: str, run: results.Run,
            params: str | None = None) -> dict[str, Any]:
    """A run as one flat row: the values of results.run_to_dict(run), flattened.  `params`:
    params_json(run.params), when the caller has it (the runs of a sweep share theirs)."""
    return row_of(key, machine, machine_sha256, run.strategy, run.workload,
                  params_json(run.params) if params is None else params, run.seed, run.engine,
                  run.metrics, run.series, run.meta)


def row_of(key: str, machine: str, machine_sha256: str, strategy: str, workload: str,
           params: str, seed: int, engine: str, metrics: Mapping[str, Any], series,
           meta: Mapping[str, Any]) -> dict[str, Any]:
    """run_row of the Run with these fields (`params` as params_json gives it), without making
    the Run: what a sweep's worker calls for each of its runs."""
    row: dict[str, Any] = {"key": key, "strategy": strategy, "workload": workload,
                           "machine": machine, "machine_sha256": machine_sha256,
                           "seed": seed, "engine": engine, "params": params}
    plain, latency_columns = _PLAIN, _LATENCY_COLUMNS
    for name, v in metrics.items():
        if type(name) is not str:
            name = str(name)
        cols = latency_columns.get(name)
        if cols is None:
            if type(v) not in plain:
                v = results.jsonable(v)
                if isinstance(v, (dict, list)):
                    v = _JSON.encode(v)
            row[name] = v
            continue
        if type(v) is not dict:
            v = results.jsonable(v)
        for k, col in cols:
            x = v[k]
            row[col] = x if type(x) in plain else results.jsonable(x)
    row["series"] = results._thin(series) if len(series) else []
    row["meta"] = _JSON.encode(results.jsonable(dict(meta))) if meta else "{}"
    return row


def row_run(row: Mapping[str, Any]) -> dict:
    """A row back as a run of a JSON result file (bench.results.run_to_dict's form)."""
    metrics: dict[str, Any] = {}
    for col, v in row.items():
        if col in KEY_COLUMNS or col in ("params", "series", "meta") or v is None:
            continue
        name, dot, sub = col.partition(".")
        if dot and name in LATENCY_METRICS:
            metrics.setdefault(name, {})[sub] = v
        elif METRIC_BY_NAME.get(col) is not None and METRIC_BY_NAME[col].unit == "hist":
            metrics[col] = json.loads(v)
        else:
            metrics[col] = v
    d = {"strategy": row["strategy"], "workload": row["workload"],
         "params": json.loads(row["params"]), "seed": row["seed"], "engine": row["engine"],
         "metrics": metrics}
    if row.get("series"):
        d["series"] = row["series"]
    meta = json.loads(row.get("meta") or "{}")
    if meta:
        d["meta"] = meta
    return d


# ---------------------------------------------------------------- writing
def append(path: str | os.PathLike, rows: list[dict], metadata: Mapping[str, Any]) -> Path:
    """Write `rows` as the store's next part file, atomically (temp file, fsync, rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    have = parts(p)
    n = int(PART_RE.fullmatch(have[-1].name).group(1)) + 1 if have else 0
    out = p / f"part-{n:06d}.parquet"
    table = _table(rows)
    head = {"format": FORMAT, "schema_version": results.SCHEMA_VERSION,
            "metadata": results.jsonable(dict(metadata))}
    table = table.replace_schema_metadata({META_KEY: json.dumps(head, sort_keys=True).encode()})
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=p)
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _table(rows: list[dict]):
    """pyarrow.Table.from_pylist(rows), the same table: the columns are the first row's keys,
    as from_pylist takes them.  A column of Python ints, floats or strings only, or the
    series column (lists of rows of ints), is made here from one numpy array or byte string
    (_column, _series_array): faster, and without pyarrow's conversion of Python lists, which
    imports pandas (0.3 s and more, once per process).  Anything else is pyarrow's."""
    import pyarrow as pa
    names = list(rows[0]) if rows else []
    arrays: list[Any] = []
    for n in names:
        values = [row[n] if n in row else None for row in rows]
        made = _series_array(values) if n == "series" else _column(values)
        arrays.append(values if made is None else made)
    return pa.Table.from_arrays(arrays, names)


def _buffers(pa_type, n: int, *buffers):
    import pyarrow as pa
    return pa.Array.from_buffers(pa_type, n, [None, *(pa.py_buffer(b) for b in buffers)])


def _offsets(lengths: Iterable[int], n: int):
    """int32 offsets of n lists or strings of these lengths, or None past int32 (pyarrow would
    make another type, or chunks)."""
    import numpy as np
    out = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(lengths, np.int64, n), out=out[1:])
    return out.astype(np.int32) if out[-1] < 1 << 31 else None


def _column(values: list):
    """`values` as the Arrow array pyarrow infers for them (int64, double, string) when they
    are all Python ints in int64, all floats or all strings; else None."""
    import numpy as np
    import pyarrow as pa
    kinds = set(map(type, values))
    n = len(values)
    if kinds == {int}:
        try:
            return _buffers(pa.int64(), n, np.fromiter(values, np.int64, n))
        except OverflowError:
            return None
    if kinds == {float}:
        return _buffers(pa.float64(), n, np.fromiter(values, np.float64, n))
    if kinds == {str}:
        try:
            data = [v.encode() for v in values]
        except UnicodeEncodeError:
            return None
        offsets = _offsets(map(len, data), n)
        return None if offsets is None else _buffers(pa.string(), n, offsets, b"".join(data))
    return None


def _series_array(col: list):
    """`col` (each row's series: a list of rows of integers) as a list<list<int64>> array, or
    None where pyarrow's own inference might differ: anything but lists of lists of Python
    ints, no value at all (it infers a null type), a value out of int64."""
    import numpy as np
    import pyarrow as pa
    if not all(type(s) is list for s in col):
        return None
    inner = list(itertools.chain.from_iterable(col))
    if not all(type(r) is list for r in inner):
        return None
    flat = list(itertools.chain.from_iterable(inner))
    if not flat or set(map(type, flat)) != {int}:
        return None
    try:
        values = np.fromiter(flat, np.int64, len(flat))
    except OverflowError:
        return None
    outer = _offsets(map(len, col), len(col))
    offsets = _offsets(map(len, inner), len(inner))
    if outer is None or offsets is None:
        return None
    rows = pa.ListArray.from_arrays(_buffers(pa.int32(), len(offsets), offsets),
                                    _buffers(pa.int64(), len(values), values))
    return pa.ListArray.from_arrays(_buffers(pa.int32(), len(outer), outer), rows)


# ---------------------------------------------------------------- reading
def _head(part: Path, schema) -> dict:
    raw = (schema.metadata or {}).get(META_KEY)
    try:
        head = json.loads(raw) if raw else None
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ValueError(f"{part}: not a part of a sweep store (no {META_KEY.decode()} metadata)")
    if head.get("schema_version") != results.SCHEMA_VERSION:
        raise ValueError(f"{part}: schema_version {head.get('schema_version')!r} is not "
                         f"supported (this version reads {results.SCHEMA_VERSION})")
    return head


def keys(path: str | os.PathLike) -> set[str]:
    """The keys of the runs a store holds (only the key column is read)."""
    import pyarrow.parquet as pq
    out: set[str] = set()
    for part in parts(path):
        # ParquetFile, not read_table: the latter's dataset layer imports pandas (0.3 s and more)
        with _read(part, pq.ParquetFile) as f:
            _head(part, f.schema_arrow)
            out.update(_read(part, lambda _: f.read(columns=["key"])).column("key").to_pylist())
    return out


def _read(part: Path, how, **kw):
    try:
        return how(part, **kw)
    except Exception as e:          # pyarrow's errors have no common base of ours
        raise ValueError(f"{part}: not a Parquet part file ({type(e).__name__})") from None


def rows(path: str | os.PathLike) -> Iterable[tuple[dict, dict]]:
    """(row, part metadata) of every run in the store, part after part."""
    import pyarrow.parquet as pq
    for part in parts(path):
        table = _read(part, pq.read_table)
        head = _head(part, table.schema)
        for row in table.to_pylist():
            yield row, head["metadata"]


def load(path: str | os.PathLike) -> results.Suite:
    """A store as a Suite: its runs sorted by key, checked as a JSON result file is
    (bench.results.check), the metadata of its last part with ``parts`` and ``machines`` added.
    A store of runs on more than one machine profile is refused (a Suite's runs share one)."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{p}: no such sweep store (a directory of part-*.parquet)")
    got = list(rows(p))
    if not got:
        raise ValueError(f"{p}: an empty sweep store")
    metadata = dict(got[-1][1])         # the last part written
    got.sort(key=lambda rm: rm[0]["key"])
    machines = sorted({(r["machine"], r["machine_sha256"]) for r, _ in got})
    if len(machines) > 1:
        raise ValueError(f"{p}: runs on {len(machines)} machine profiles "
                         f"({', '.join(m for m, _ in machines)}); a comparison takes one")
    metadata["parts"] = len(parts(p))
    doc = {"schema_version": results.SCHEMA_VERSION, "metadata": metadata,
           "runs": [row_run(r) for r, _ in got]}
    results.check(doc, str(p))
    return results.Suite(metadata, tuple(results._run(d) for d in doc["runs"]))


def load_any(path: str | os.PathLike) -> results.Suite:
    """A sweep store (a directory) or a JSON result file, as a Suite: what compare, gate and
    report read."""
    return load(path) if Path(path).is_dir() else results.load(path)
