"""The regression gate: two result files -> a verdict, a table and an exit code.

Exit 0 when nothing regressed, 1 on a regression, 2 on an error (bad file,
mismatched configurations, files made with different machine profiles or engines:
metadata["machine"] names the profile by name and hash; allow_profile_change gates
them anyway).  The table follows the Linux kernel test robot's
compare output (intel/lkp-tests lib/compare.rb): the verdict first, then
base, %change and head per metric with the metric's name last, regressions
first and improvements listed apart; a spread is shown only when there is one.

Simulated metrics are deterministic, so base and head are compared directly
against the threshold.  Repeated noisy measurements (a real mount, speed) must
also differ by a Mann-Whitney U test over the repetitions (p < 0.01).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from bench.results import stats
from bench.results.metrics import METRIC_BY_NAME, METRICS
from bench.results import Suite

DEFAULT_THRESHOLD_PCT = 5.0
NOISY_ALPHA = 0.01
DETERMINISTIC_ENGINES = ("c", "python")
# Correctness counters regress on any increase.
STRICT = ("lost_updates", "out_of_order", "max_copies_in_flight", "hangs", "deadlocks", "stuck")


@dataclass(frozen=True, slots=True)
class Change:
    name: str            # workload/strategy/metric
    base: float
    base_sd: float
    head: float
    head_sd: float
    pct: float           # % change of the head median from the base median
    verdict: str         # "regression", "improvement", "same"


def gated_metrics() -> list[str]:
    return [m.name for m in METRICS if m.higher_is_better is not None and m.unit != "hist"]


def _value(v) -> float:
    return float(v["p99"]) if isinstance(v, Mapping) else float(v)


def _pct(base: float, head: float) -> float:
    if base == head:
        return 0.0
    if base == 0:
        return math.inf if head > base else -math.inf
    return 100.0 * (head - base) / abs(base)


def check_same_configuration(base: Suite, head: Suite) -> None:
    """ValueError naming the first run one file has and the other lacks."""
    bk = {r.key() for r in base.runs}
    hk = {r.key() for r in head.runs}
    for label, a, b in (("candidate", bk, hk), ("baseline", hk, bk)):
        missing = sorted(a - b)
        if missing:
            s, w, p, seed, e = missing[0]
            raise ValueError(f"configurations differ: the {label} lacks {w}/{s} seed {seed} "
                             f"engine {e} params {p} ({len(missing)} runs in all)")


def machine_of(suite: Suite) -> tuple[str, str] | None:
    """(name, content hash) of the machine profile a file's runs were simulated on; a file from
    before machine profiles is named by its cost profile; None when the file names neither."""
    md = suite.metadata
    m = md.get("machine")
    if isinstance(m, Mapping):
        return str(m.get("name")), str(m.get("sha256"))
    cp = md.get("cost_profile")
    if isinstance(cp, Mapping):
        return f"cost profile {cp.get('path')}", str(cp.get("sha256"))
    if cp is not None:
        return f"cost profile {cp}", ""
    return None


def check_same_machine(base: Suite, head: Suite) -> None:
    """ValueError, in one line, when the two files were made with different machine profiles or
    engines: their numbers differ for that reason alone (--allow-profile-change skips this)."""
    def name(m: tuple[str, str] | None) -> str:
        return "none named" if m is None else f"{m[0]} (sha256 {m[1]})" if m[1] else m[0]
    bm, hm = machine_of(base), machine_of(head)
    if bm != hm:
        raise ValueError(f"the files were made with different machine profiles: baseline "
                         f"{name(bm)}, candidate {name(hm)}; gate them anyway with "
                         f"--allow-profile-change")
    be, he = base.metadata.get("engine"), head.metadata.get("engine")
    if be is not None and he is not None and be != he:
        raise ValueError(f"the files were made with different engines: baseline {be}, "
                         f"candidate {he}; gate them anyway with --allow-profile-change")


def compare(base: Suite, head: Suite, thresholds: Mapping[str, float] | None = None,
            default_pct: float = DEFAULT_THRESHOLD_PCT,
            allow_profile_change: bool = False) -> list[Change]:
    """One Change per (workload, strategy, gated metric), in a stable order.  Files made with
    different machine profiles or engines are refused unless allow_profile_change."""
    for label, suite in (("baseline", base), ("candidate", head)):
        if not suite.runs:
            raise ValueError(f"the {label} holds no runs: nothing to gate")
    if not allow_profile_change:
        check_same_machine(base, head)
    check_same_configuration(base, head)
    if not 0 <= default_pct < math.inf:
        raise ValueError(f"--default-threshold: must be a finite number >= 0, got {default_pct}")
    thresholds = dict(thresholds or {})
    for k in thresholds:
        if k not in METRIC_BY_NAME:
            raise ValueError(f"--threshold: unknown metric {k!r}")
        if k not in gated_metrics():
            raise ValueError(f"--threshold: {k!r} is not gated; gated: {', '.join(gated_metrics())}")
    out = []
    for w in head.workloads():
        for s in head.strategies():
            b_runs, h_runs = base.select(w, s), head.select(w, s)
            if not h_runs:
                continue
            noisy = any(r.engine not in DETERMINISTIC_ENGINES for r in h_runs)
            for m in gated_metrics():
                bv = [_value(r.metrics[m]) for r in b_runs if m in r.metrics]
                hv = [_value(r.metrics[m]) for r in h_runs if m in r.metrics]
                if not bv or not hv:
                    continue
                b_med, h_med = float(np.median(bv)), float(np.median(hv))
                pct = _pct(b_med, h_med)
                limit = thresholds.get(m, 0.0 if m in STRICT else default_pct)
                worse = (pct < 0) if METRIC_BY_NAME[m].higher_is_better else (pct > 0)
                big = abs(pct) > limit
                if noisy and big:
                    big = stats.mann_whitney_p(bv, hv) < NOISY_ALPHA
                verdict = "same" if not big else ("regression" if worse else "improvement")
                out.append(Change(f"{w}/{s}/{m}", b_med, float(np.std(bv)), h_med,
                                  float(np.std(hv)), pct, verdict))
    if not out:
        raise ValueError("no gated metric is in both files: nothing to gate")
    return out


def _num(v: float, sd: float) -> str:
    text = f"{v:.4g}" if abs(v) < 1e6 else f"{v:.4e}"
    if sd and v and sd / abs(v) >= 0.005:      # a spread worth reading
        text += f" ±{100 * sd / abs(v):.0f}%"
    return text


def render(changes: list[Change], default_pct: float = DEFAULT_THRESHOLD_PCT) -> str:
    reg = [c for c in changes if c.verdict == "regression"]
    imp = [c for c in changes if c.verdict == "improvement"]
    if reg:
        head = (f"REGRESSION: {len(reg)} of {len(changes)} metrics regressed "
                f"(threshold {default_pct:g}%, correctness counters 0%); {len(imp)} improved.")
    else:
        head = f"OK: none of {len(changes)} metrics regressed; {len(imp)} improved."
    lines = [head]

    def table(title: str, rows: list[Change]) -> None:
        if not rows:
            return
        rows = sorted(rows, key=lambda c: -abs(c.pct) if math.isfinite(c.pct) else -math.inf)
        cells = [(_num(c.base, c.base_sd), "new" if math.isinf(c.pct) else f"{c.pct:+.1f}%",
                  _num(c.head, c.head_sd), c.name) for c in rows]
        wb = max(len("base"), *(len(x[0]) for x in cells))
        wp = max(len("%change"), *(len(x[1]) for x in cells))
        wh = max(len("head"), *(len(x[2]) for x in cells))
        lines.append("")
        lines.append(title)
        lines.append(f"{'base':>{wb}}  {'%change':>{wp}}  {'head':>{wh}}  metric")
        for b, p, h, n in cells:
            lines.append(f"{b:>{wb}}  {p:>{wp}}  {h:>{wh}}  {n}")

    table("regressions:", reg)
    table("improvements:", imp)
    return "\n".join(lines) + "\n"


def parse_thresholds(pairs: list[str] | None) -> dict[str, float]:
    out = {}
    for pair in pairs or []:
        name, sep, pct = pair.partition("=")
        try:
            value = float(pct.rstrip("%"))
        except ValueError:
            value = -1.0
        if not sep or not 0 <= value < math.inf:
            raise ValueError(f"--threshold: expected METRIC=PCT with PCT a finite number >= 0, "
                             f"got {pair!r}")
        out[name] = value
    return out
