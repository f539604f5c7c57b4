"""Comparisons of runs.

`rows` turns a Suite into comparison rows against a baseline strategy
(median, 95% bootstrap CI, ratio, Mann-Whitney U over the seeds); `rows_between`
compares two Suites run for run; `render` prints rows as text tables.  The
functions that make rows are pure: they read Suites, never an engine.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from bench.results import stats
from bench.results.metrics import METRIC_BY_NAME
from bench.results import Run, Suite

DEFAULT_SUITE = ["seq-write", "rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty",
                 "fsync-heavy", "mem-pressure", "stuck-server", "multi-writer",
                 # what mainline after the temp page changes (issue 11): the write size that picks
                 # a large folio's order, new files against cached ones, sub-block rewrites of
                 # large folios, and a stall with and without a request timeout
                 "seq-write-128k", "seq-write-1m", "rand-write-128k", "rand-write-1m",
                 "seq-overwrite-128k", "seq-overwrite-1m", "rand-overwrite-128k",
                 "rand-overwrite-1m", "partial-rewrite", "stuck-server-long",
                 "stuck-server-timeout"]
DEFAULT_BASELINE = "merge-in-queue"
LATEST = "results/latest.json"      # scratch output of the last sweep, replaced each time
PROJECT = "fuse-writeback-bench"


def checkout_root(start: str | None = None) -> Path | None:
    """The checkout of this project that the working directory (or `start`) lies in: the
    nearest directory upwards whose pyproject.toml names the project; None outside one."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        f = d / "pyproject.toml"
        try:
            if f.is_file() and f'name = "{PROJECT}"' in f.read_text(errors="replace"):
                return d
        except OSError:
            continue
    return None


def latest_path() -> str:
    """Where a sweep without --out writes: results/latest.json of the checkout the working
    directory lies in (relative to the working directory), else the user's data directory
    (platformdirs: ~/.local/share/fuse-writeback-bench/results/latest.json on Linux), so a run
    outside a checkout leaves no results/ directory behind wherever it was started."""
    root = checkout_root()
    if root is not None:
        return os.path.relpath(root / LATEST)
    import platformdirs
    return str(Path(platformdirs.user_data_dir(PROJECT)) / LATEST)
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


def _rows(pending: list[tuple[str, str, str, list[float], str, list[float]]]) -> list[Row]:
    """Rows of (workload, metric, label, mine, base name, theirs), their Mann-Whitney tests
    made together (stats.mann_whitney_ps: the same p-values, a fraction of the calls)."""
    summaries: dict[int, stats.Summary] = {}   # a baseline's values recur for every strategy

    def summary(v: list[float]) -> stats.Summary:
        got = summaries.get(id(v))
        if got is None:
            got = summaries[id(v)] = stats.summarize(v)
        return got
    made = []
    for w, m, label, mine, base_name, theirs in pending:
        s = summary(mine)
        b = summary(theirs) if theirs else None
        made.append((s, b, b is not None and min(s.n, b.n) >= MIN_SEEDS_FOR_TEST))
    # the test only with enough seeds: fewer never mark a change, and scipy is not imported
    tested = [i for i, (_, _, enough) in enumerate(made) if enough]
    ps = dict(zip(tested, stats.mann_whitney_ps([(pending[i][3], pending[i][5]) for i in tested])))
    out = []
    for i, ((w, m, label, _, base_name, _), (s, b, enough)) in enumerate(zip(pending, made)):
        p = ps.get(i, math.nan)
        if b is None:
            ratio = math.nan
        elif b.median == 0:
            ratio = 1.0 if s.median == 0 else math.nan
        else:
            ratio = s.median / b.median
        sig = enough and not math.isnan(p) and p < ALPHA and s.median != b.median
        up = b is not None and s.median > b.median
        out.append(Row(w, m, label, s.median, s.lo, s.hi, s.n, base_name, ratio, p, sig,
                       _verdict(m, up, sig)))
    return out


def rows(suite: Suite, baseline: str = DEFAULT_BASELINE,
         metrics: Iterable[str] = tuple(_HEADLINE)) -> list[Row]:
    """Each strategy against `baseline`, per workload and headline metric, over the seeds."""
    if baseline not in suite.strategies():
        raise ValueError(f"--baseline: {baseline!r} is not among the strategies run "
                         f"({', '.join(suite.strategies())})")
    pending = []
    for w in suite.workloads():
        base_runs = suite.select(w, baseline)
        for m in metrics:
            theirs = _values(base_runs, m)
            for s in suite.strategies():
                mine = _values(suite.select(w, s), m)
                if mine:
                    pending.append((w, m, s, mine, baseline, theirs))
    return _rows(pending)


def rows_between(old: Suite, new: Suite, metrics: Iterable[str] = tuple(_HEADLINE)) -> list[Row]:
    """Each (workload, strategy) of `new` against the same configuration in `old`."""
    pending = []
    for w in new.workloads():
        for s in new.strategies():
            n_runs, o_runs = new.select(w, s), old.select(w, s)
            if not n_runs or not o_runs:
                continue
            for m in metrics:
                mine, theirs = _values(n_runs, m), _values(o_runs, m)
                if mine and theirs:
                    pending.append((w, m, s, mine, "old", theirs))
    if not pending:
        raise ValueError("the two result files have no (workload, strategy) in common")
    return _rows(pending)


# ------------------------------------------------------------------ verdicts
# Mann-Whitney U, two-sided, can reach p < ALPHA only with this many values on each side
# (with 3 against 3 the smallest possible p is 0.1).
MIN_SEEDS_FOR_TEST = 4
TIE = 0.005             # medians within 0.5% of each other are a tie, whatever the test says
# Correctness counters whose any non-zero value is a failure worth a line of its own.
FAILURES = ("lost_updates", "out_of_order", "hangs", "deadlocks")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Who wins one metric of one workload.  `winners` are the strategies whose medians are
    within TIE of the best; `losers` the next best strategies (again within TIE of each
    other), the ones the winners are compared with; `factor` how much better the best winner
    is than the best loser (>= 1; nan when every strategy is within TIE)."""
    workload: str
    metric: str
    winners: tuple[str, ...]
    losers: tuple[str, ...]
    factor: float
    p_value: float
    significant: bool

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("factor", "p_value"):
            if isinstance(d[k], float) and math.isnan(d[k]):
                d[k] = None
        return d


def _simulated(suite: Suite) -> list[str]:
    # Kernel rows (``kernel-<release>``) are a real machine, not a candidate strategy.
    return [s for s in suite.strategies() if not s.startswith("kernel-")]


def _within(a: float, b: float) -> bool:
    return a == b or (a != 0 and b != 0 and max(a, b) / min(a, b) <= 1 + TIE and a * b > 0)


def _winner(suite: Suite, workload: str, metric: str):
    """(the Verdict without its test, the two samples to test, or None) of one workload and
    metric; None when fewer than two strategies have values."""
    hib = METRIC_BY_NAME[metric].higher_is_better
    vals = {s: v for s in _simulated(suite) if (v := _values(suite.select(workload, s), metric))}
    if len(vals) < 2:
        return None
    meds = {s: float(np.median(v)) for s, v in vals.items()}     # stats.summarize's median
    order = sorted(meds, key=lambda s: meds[s], reverse=hib)
    winners = tuple(s for s in order if _within(meds[s], meds[order[0]]))
    rest = [s for s in order if s not in winners]
    if not rest:
        return Verdict(workload, metric, winners, (), math.nan, math.nan, False), None
    losers = tuple(s for s in rest if _within(meds[s], meds[rest[0]]))
    a, b = meds[winners[0]], meds[losers[0]]
    factor = (a / b if hib else b / a) if a and b else math.inf
    enough = min(len(vals[winners[0]]), len(vals[losers[0]])) >= MIN_SEEDS_FOR_TEST
    v = Verdict(workload, metric, winners, losers, factor, math.nan, False)
    return v, ((vals[winners[0]], vals[losers[0]]) if enough else None)


def verdicts(suite: Suite, metrics: Iterable[str] = ("app_throughput_bps", "write_latency_ns",
                                                     "fsync_latency_ns")) -> list[Verdict]:
    """Per workload and metric, the simulated strategies with the best median and by how much
    they beat the next best, significant only with enough seeds (MIN_SEEDS_FOR_TEST) and
    p < ALPHA between the two best of each group."""
    found = [got for w in suite.workloads() for m in metrics
             if (got := _winner(suite, w, m)) is not None]
    tested = [i for i, (_, pair) in enumerate(found) if pair is not None]
    ps = dict(zip(tested, stats.mann_whitney_ps([found[i][1] for i in tested])))
    return [replace(v, p_value=ps[i], significant=bool(ps[i] < ALPHA)) if i in ps else v
            for i, (v, _) in enumerate(found)]


def failures(suite: Suite, workload: str) -> list[str]:
    """"temp-naive: 101 lost_updates" for each strategy (or "all") whose median correctness
    counter is not zero on this workload."""
    strategies = _simulated(suite)
    out = []
    for m in FAILURES:
        bad = {}
        for s in strategies:
            v = _values(suite.select(workload, s), m)
            if v and (med := float(np.median(v))) > 0:     # stats.summarize's median
                bad[s] = med
        if len(bad) == len(strategies) > 1 and len(set(bad.values())) == 1:
            out.append(f"all: {next(iter(bad.values())):.0f} {m}")
        else:
            out += [f"{s}: {med:.0f} {m}" for s, med in bad.items()]
    return out


def kernel_notes(suite: Suite) -> list[str]:
    """One line per kernel column: which machine it ran on, since it is not the simulated
    machine profile (and takes no part in the verdict)."""
    md = suite.metadata
    prof = md.get("machine")
    prof = prof.get("name") if isinstance(prof, dict) else None
    out = []
    for k in suite.strategies():
        if not k.startswith("kernel-"):
            continue
        runs = suite.select(strategy=k)
        meta = next((r.meta for r in runs if r.meta), {})
        bdi = meta.get("bdi") if isinstance(meta.get("bdi"), dict) else {}
        what = [f"Linux {meta.get('kernel') or k.removeprefix('kernel-')}"]
        if md.get("cpu_count"):
            what.append(f"{md['cpu_count']} CPUs ({md.get('cpu_model', 'unknown model')})")
        if bdi.get("max_bytes"):
            what.append(f"its FUSE bdi's dirty limit {bdi['max_bytes'] / (1 << 20):.0f} MiB"
                        + (" (strict)" if bdi.get("strict_limit") else ""))
        out.append(f"{k}: measured on a real mount of the machine that ran this sweep ("
                   + ", ".join(what) + ")" + (f", not the simulated machine profile {prof}"
                                              if prof else "") + "; not in the verdict.")
    return out


def _cell_verdict(v: Verdict | None, tested: bool) -> str:
    if v is None:
        return "-"
    if not v.losers:
        return "tie"
    who = v.winners[0] + (f"+{len(v.winners) - 1}" if len(v.winners) > 1 else "")
    how = f"{v.factor:.2f}x" if math.isfinite(v.factor) else "only >0"
    return f"{who} {how}" + ("" if not tested else (" *" if v.significant else " n.s."))


def render_verdicts(suite: Suite, color: bool = False) -> str:
    """The first screen of compare: per workload, who wins on throughput and on p99 latency,
    by how much over the next best, whether that is significant, and correctness failures."""
    red = (lambda s: f"\x1b[31m{s}\x1b[0m") if color else (lambda s: s)
    metrics = ("app_throughput_bps", "write_latency_ns", "fsync_latency_ns")
    got = {(v.workload, v.metric): v for v in verdicts(suite, metrics)}
    seeds = min((len(suite.select(w, s)) for w in suite.workloads()
                 for s in _simulated(suite)), default=0)
    tested = seeds >= MIN_SEEDS_FOR_TEST
    table = [["workload", "throughput", "write p99", "fsync p99"]]
    fails = {}
    for w in suite.workloads():
        table.append([w] + [_cell_verdict(got.get((w, m)), tested) for m in metrics])
        fails[w] = failures(suite, w)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["Who wins: the simulated strategy with the best median, and how much better it is "
             "than the next best"]
    for row in table:
        line = "  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()
        if row[0] in fails and fails[row[0]]:
            line += "  " + red("FAILS " + ", ".join(fails[row[0]]))
        lines.append("  " + line)
    lines.append(f"X+N: X and N others within {100 * TIE:.1f}% of it; tie: all within "
                 f"{100 * TIE:.1f}%; -: no value (no such calls); FAILS: a correctness counter "
                 f"above 0 (median over seeds).")
    lines += kernel_notes(suite)
    if tested:
        lines.append(f"* significant, n.s. not: Mann-Whitney U of the best against the next best "
                     f"over {seeds} seeds, p < {ALPHA}.")
    else:
        lines.append(f"{seeds} seed(s) per strategy: too few for a significance test (it needs "
                     f"{MIN_SEEDS_FOR_TEST}), so no difference is called significant.")
    return "\n".join(lines) + "\n"


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
    if half == 0:
        ci = ""
    elif not r.median:
        ci = f" ±{_fmt(half, scale)}"
    else:       # a half-width past the median itself says "spread", not a number to read
        rel = 100 * half / abs(r.median)
        ci = f" ±{rel:.0f}%" if rel < 100 else " ±>99%"
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
    lines.append("Each cell: median ±half-width of its 95% bootstrap CI (±>99%: wider than the "
                 "median), ratio to the base")
    lines.append("(the base column, or the old file; 'base': the base itself; 'new': the base is "
                 "0).")
    lines.append(f"Marks only where a Mann-Whitney U test over the seeds gives p < {ALPHA} (it "
                 f"needs {MIN_SEEDS_FOR_TEST} seeds or more):")
    lines.append("+ better, - worse, ~ changed (a metric with no better direction).")
    return "\n".join(lines) + "\n"
