"""Comparisons of runs.

`rows` turns a Suite into comparison rows against a baseline strategy
(median, 95% bootstrap CI, ratio, Mann-Whitney U over the seeds); `rows_between`
compares two Suites run for run; `render` prints rows as text tables.  The
functions that make rows are pure: they read Suites, never an engine.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from bench.results import stats
from bench.results.metrics import METRIC_BY_NAME
from bench.results import Run, Suite

DEFAULT_SUITE = ["seq-write", "rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty",
                 "fsync-heavy", "mem-pressure", "stuck-server", "multi-writer"]
DEFAULT_BASELINE = "merge-in-queue"
LATEST = "results/latest.json"      # scratch output of the last sweep, replaced each time
ALPHA = 0.05

# (metric, label, how to get a number out of it, display scale, unit shown)
HEADLINE: tuple[tuple[str, str, Callable, float, str], ...] = (
    ("app_throughput_bps", "app throughput", lambda v: v, 1e-6, "MB/s"),
    ("wb_throughput_bps", "wb throughput", lambda v: v, 1e-6, "MB/s"),
    ("write_latency_ns", "write p99", lambda v: v["p99"], 1e-3, "us"),
    ("fsync_latency_ns", "fsync p99", lambda v: v["p99"], 1e-3, "us"),
    ("temp_pages_peak", "temp pages peak", lambda v: v, 1, "pages"),
    ("pinned_pages_peak", "pinned pages peak", lambda v: v, 1, "pages"),
    ("requests", "WRITE requests", lambda v: v, 1, ""),
    ("max_copies_in_flight", "max copies/page", lambda v: v, 1, ""),
    ("out_of_order", "out of order", lambda v: v, 1, ""),
    ("lost_updates", "lost updates", lambda v: v, 1, ""),
    ("hangs", "hangs", lambda v: v, 1, ""),
)
_HEADLINE = {h[0]: h for h in HEADLINE}


# ------------------------------------------------------------------ rows
@dataclass(frozen=True, slots=True)
class Row:
    workload: str
    metric: str
    strategy: str
    median: float
    lo: float
    hi: float
    n: int
    base: str           # what it is compared with (a strategy, or "old")
    ratio: float        # median / base median (nan when the base is 0 and this is not)
    p_value: float
    significant: bool
    verdict: str        # "better", "worse", "same" (only significant changes are better/worse)

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("ratio", "p_value"):
            if isinstance(d[k], float) and math.isnan(d[k]):
                d[k] = None
        return d


def _values(runs: list[Run], metric: str) -> list[float]:
    get = _HEADLINE[metric][2] if metric in _HEADLINE else (lambda v: v)
    # A latency object with no samples (a workload without fsync, say) has no value at all.
    return [float(get(r.metrics[metric])) for r in runs if metric in r.metrics
            and not (isinstance(r.metrics[metric], dict) and r.metrics[metric].get("count") == 0)]


def _verdict(metric: str, ratio_up: bool, significant: bool) -> str:
    if not significant:
        return "same"
    m = METRIC_BY_NAME.get(metric)
    hib = m.higher_is_better if m else None
    if hib is None:
        return "changed"
    return "better" if ratio_up == hib else "worse"


def _row(workload: str, metric: str, label: str, mine: list[float], base_name: str,
         theirs: list[float]) -> Row:
    s = stats.summarize(mine)
    b = stats.summarize(theirs) if theirs else None
    if b is None:
        ratio, p = math.nan, math.nan
    elif b.median == 0:
        ratio = 1.0 if s.median == 0 else math.nan
        p = stats.mann_whitney_p(mine, theirs)
    else:
        ratio = s.median / b.median
        p = stats.mann_whitney_p(mine, theirs)
    sig = b is not None and not math.isnan(p) and p < ALPHA and s.median != b.median
    up = b is not None and s.median > b.median
    return Row(workload, metric, label, s.median, s.lo, s.hi, s.n, base_name, ratio, p, sig,
               _verdict(metric, up, sig))


def rows(suite: Suite, baseline: str = DEFAULT_BASELINE,
         metrics: Iterable[str] = tuple(_HEADLINE)) -> list[Row]:
    """Each strategy against `baseline`, per workload and headline metric, over the seeds."""
    if baseline not in suite.strategies():
        raise ValueError(f"--baseline: {baseline!r} is not among the strategies run "
                         f"({', '.join(suite.strategies())})")
    out = []
    for w in suite.workloads():
        base_runs = suite.select(w, baseline)
        for m in metrics:
            theirs = _values(base_runs, m)
            for s in suite.strategies():
                mine = _values(suite.select(w, s), m)
                if mine:
                    out.append(_row(w, m, s, mine, baseline, theirs))
    return out


def rows_between(old: Suite, new: Suite, metrics: Iterable[str] = tuple(_HEADLINE)) -> list[Row]:
    """Each (workload, strategy) of `new` against the same configuration in `old`."""
    out = []
    for w in new.workloads():
        for s in new.strategies():
            n_runs, o_runs = new.select(w, s), old.select(w, s)
            if not n_runs or not o_runs:
                continue
            for m in metrics:
                mine, theirs = _values(n_runs, m), _values(o_runs, m)
                if mine and theirs:
                    out.append(_row(w, m, s, mine, "old", theirs))
    if not out:
        raise ValueError("the two result files have no (workload, strategy) in common")
    return out


# ------------------------------------------------------------------ text
def _fmt(v: float, scale: float) -> str:
    x = v * scale
    if x == 0:
        return "0"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:.0f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.1f}"


def _cell(r: Row, scale: float) -> str:
    half = (r.hi - r.lo) / 2
    ci = "" if half == 0 else (f" ±{100 * half / abs(r.median):.0f}%" if r.median else f" ±{_fmt(half, scale)}")
    if r.base == r.strategy:
        ratio = "   base"
    elif math.isnan(r.ratio):
        ratio = "   new" if r.median else ""
    else:
        ratio = f" {r.ratio:5.2f}x"
    mark = {"better": "+", "worse": "-", "changed": "~"}.get(r.verdict, " ")
    return f"{_fmt(r.median, scale)}{ci}{ratio}{mark}"


def render(rs: list[Row], title: Callable[[str], str] = lambda w: w) -> str:
    """Per workload: metrics down, strategies across; median ±CI half-width, ratio, mark."""
    lines = []
    for w in dict.fromkeys(r.workload for r in rs):
        mine = [r for r in rs if r.workload == w]
        strategies = list(dict.fromkeys(r.strategy for r in mine))
        table = [["metric"] + strategies]
        for m in dict.fromkeys(r.metric for r in mine):
            _, label, _, scale, unit = _HEADLINE.get(m, (m, m, None, 1, ""))
            by = {r.strategy: r for r in mine if r.metric == m}
            table.append([f"{label} ({unit})" if unit else label]
                         + [_cell(by[s], scale) if s in by else "" for s in strategies])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines.append(title(w))
        for row in table:
            lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                   for i, c in enumerate(row)))
        lines.append("")
    lines.append(f"median ±half-width of its 95% bootstrap CI, ratio to the base; "
                 f"+ better, - worse, ~ changed (Mann-Whitney U over seeds, p < {ALPHA})")
    return "\n".join(lines) + "\n"
