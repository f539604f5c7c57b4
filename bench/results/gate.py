"""The regression gate: two result files -> a verdict, a table and an exit code.

Exit 0 when nothing regressed, 1 on a regression, 2 on an error (bad file, no run in
both files, files made with different machine profiles or engines: metadata["machine"]
names the profile by name and hash; allow_profile_change gates them anyway).  The runs
present in both files are gated (a run is its strategy, workload, params, seed and engine;
match_params="ignore" leaves the params out, so a candidate made with --param meets a
baseline made without); what only one file has is listed in one short block (`match`,
`render_unmatched`), or with strict=True it is an error as before.  The table follows the
Linux kernel test robot's compare output (intel/lkp-tests lib/compare.rb): the verdict first,
then base, %change and head per metric (in MB/s, us, pages, as compare prints them) with the
metric's name last, regressions first and improvements listed apart; a spread is shown only
when there is one.

Simulated metrics are deterministic, so base and head are compared directly
against the threshold.  Repeated noisy measurements (a real mount, speed) must
also differ by a Mann-Whitney U test over the repetitions (p < 0.01).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from bench.results import stats
from bench.results.compare import _fmt as fmt_number
from bench.results.metrics import LATENCY_METRICS, METRIC_BY_NAME, METRICS
from bench.results import Run, Suite

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


MATCH_PARAMS = ("exact", "ignore")


def _key(r: Run, match_params: str) -> tuple:
    k = r.key()
    return k if match_params == "exact" else k[:2] + k[3:]      # (strategy, workload, seed, engine)


def _keyed(suite: Suite, label: str, match_params: str) -> dict[tuple, Run]:
    if match_params not in MATCH_PARAMS:
        raise ValueError(f"--match-params: expected one of {', '.join(MATCH_PARAMS)}, "
                         f"got {match_params!r}")
    out: dict[tuple, Run] = {}
    for r in suite.runs:
        other = out.setdefault(_key(r, match_params), r)
        if other is not r:
            raise ValueError(f"--match-params ignore: the {label} has {r.workload}/{r.strategy} "
                             f"seed {r.seed} engine {r.engine} twice, with params "
                             f"{_params(other)} and {_params(r)}; gate it with --match-params "
                             f"exact")
    return out


def _params(r: Run) -> str:
    return json.dumps(dict(r.params), sort_keys=True)


@dataclass(frozen=True, slots=True)
class Unmatched:
    """The runs one file has and the other lacks (by the key of match_params)."""
    baseline: tuple[Run, ...]       # only in the baseline
    candidate: tuple[Run, ...]      # only in the candidate


def match(base: Suite, head: Suite, match_params: str = "exact") -> tuple[Suite, Suite, Unmatched]:
    """The runs present in both files, as two Suites in their files' order, and the rest."""
    bk, hk = _keyed(base, "baseline", match_params), _keyed(head, "candidate", match_params)
    both = bk.keys() & hk.keys()
    pick = lambda runs, s: tuple(r for k, r in runs.items() if (k in both) == s)  # noqa: E731
    return (Suite(base.metadata, pick(bk, True)), Suite(head.metadata, pick(hk, True)),
            Unmatched(pick(bk, False), pick(hk, False)))


def check_same_configuration(base: Suite, head: Suite, match_params: str = "exact") -> None:
    """ValueError naming the first run one file has and the other lacks, and what the other
    file has instead (--strict)."""
    _, _, un = match(base, head, match_params)
    for label, missing, other in (("candidate", un.baseline, un.candidate),
                                  ("baseline", un.candidate, un.baseline)):
        if missing:
            r = missing[0]
            instead = [o for o in other if (o.strategy, o.workload, o.seed) ==
                       (r.strategy, r.workload, r.seed)]
            has = (f"; it has params {_params(instead[0])} engine {instead[0].engine} instead"
                   if instead else "")
            raise ValueError(f"configurations differ: the {label} lacks {r.workload}/{r.strategy} "
                             f"seed {r.seed} engine {r.engine} params {_params(r)} "
                             f"({len(missing)} runs in all){has}")


def _seed_text(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ",".join(map(str, seeds))


def _names(names: list[str], what: str, limit: int = 4) -> str:
    return ", ".join(names) if len(names) <= limit else f"{len(names)} {what}"


def describe(runs: tuple[Run, ...] | list[Run], limit: int = 4) -> list[str]:
    """Runs summed up in a few lines: '15 runs: kernel-6.18.44 on seq-write, rand-write,
    fsync-heavy, seeds 0-4 (engine mount)', at most `limit` lines."""
    seeds: dict[tuple, list[int]] = {}
    for r in runs:
        seeds.setdefault((r.engine, _params(r), r.strategy, r.workload), []).append(r.seed)
    wls: dict[tuple, list[str]] = {}
    for (e, p, s, w), sd in seeds.items():
        wls.setdefault((e, p, s, tuple(sorted(sd))), []).append(w)
    strs: dict[tuple, list[str]] = {}
    for (e, p, s, sd), ws in wls.items():
        strs.setdefault((e, p, tuple(ws), sd), []).append(s)
    lines = []
    for (e, p, ws, sd), ss in strs.items():
        n = len(ss) * len(ws) * len(sd)
        lines.append(f"{n} run{'s' * (n != 1)}: {_names(ss, 'strategies')} on "
                     f"{_names(list(ws), 'workloads')}, {_seed_text(list(sd))} (engine {e}"
                     + (f", params {p}" if p != "{}" else "") + ")")
    if len(lines) > limit:
        rest = len(lines) - limit + 1
        lines = lines[:limit - 1] + [f"and {rest} more groups of runs"]
    return lines


def _params_differ(un: Unmatched) -> bool:
    """Some run of one file is in the other but for its params."""
    other = {_key(r, "ignore") for r in un.candidate}
    return any(_key(r, "ignore") in other for r in un.baseline)


def _by_params(runs: tuple[Run, ...]) -> str:
    """'225 runs with params {}' (the two largest groups, and how many more)."""
    n: dict[str, int] = {}
    for r in runs:
        n[_params(r)] = n.get(_params(r), 0) + 1
    groups = sorted(n.items(), key=lambda kv: -kv[1])
    text = " and ".join(f"{c} runs with params {p}" for p, c in groups[:2])
    return text + (f" and {len(groups) - 2} more params" if len(groups) > 2 else "")


def render_unmatched(un: Unmatched, match_params: str = "exact") -> str:
    """One short block: what only one file has (not gated)."""
    if not (un.baseline or un.candidate):
        return ""
    lines = [f"not gated, in one file only ({len(un.baseline) + len(un.candidate)} runs; "
             f"--strict makes this an error):"]
    for label, runs in (("baseline", un.baseline), ("candidate", un.candidate)):
        for i, text in enumerate(describe(runs)):
            lines.append(f"  {('only in the ' + label + ':') if i == 0 else '':24s}{text}")
    if match_params == "exact" and _params_differ(un):
        lines.append("  (the files differ in params: --match-params ignore gates them against "
                     "each other)")
    return "\n".join(lines) + "\n"


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
            allow_profile_change: bool = False, strict: bool = False,
            match_params: str = "exact") -> list[Change]:
    """One Change per (workload, strategy, gated metric) over the runs present in both files,
    in a stable order.  Files made with different machine profiles or engines are refused
    unless allow_profile_change; with strict, so are files whose runs differ."""
    for label, suite in (("baseline", base), ("candidate", head)):
        if not suite.runs:
            raise ValueError(f"the {label} holds no runs: nothing to gate")
    if not allow_profile_change:
        check_same_machine(base, head)
    if strict:
        check_same_configuration(base, head, match_params)
    base, head, un = match(base, head, match_params)
    if not base.runs:
        hint = ""
        if match_params == "exact" and _params_differ(un):
            hint = "; the params differ: --match-params ignore gates them against each other"
        raise ValueError(f"no run is in both files (the baseline has {_by_params(un.baseline)}; "
                         f"the candidate {_by_params(un.candidate)}){hint}")
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


# How a metric's unit is shown, as compare shows it: (scale, unit shown).
_SHOWN = {"B/s": (1e-6, "MB/s"), "ns": (1e-3, "us"), "bytes": (1 / (1 << 20), "MiB"),
          "pages": (1, "pages"), "page*s": (1, "page*s"), "count": (1, "")}


def shown(metric: str) -> tuple[float, str]:
    """(scale, unit) a metric is printed in: MB/s and us like compare, not B/s and ns."""
    return _SHOWN.get(METRIC_BY_NAME[metric].unit, (1, METRIC_BY_NAME[metric].unit))


def _num(v: float, sd: float, metric: str | None = None) -> str:
    scale, unit = shown(metric) if metric in METRIC_BY_NAME else (1, "")
    text = fmt_number(v, scale) + (f" {unit}" if unit else "")
    if sd and v and sd / abs(v) >= 0.005:      # a spread worth reading
        text += f" ±{100 * sd / abs(v):.0f}%"
    return text


def _metric_of(c: Change) -> str:
    return c.name.rsplit("/", 1)[-1]


def _label(c: Change) -> str:
    m = _metric_of(c)
    return c.name + (" p99" if m in LATENCY_METRICS else "")


def render(changes: list[Change], default_pct: float = DEFAULT_THRESHOLD_PCT,
           unmatched: Unmatched | None = None, match_params: str = "exact") -> str:
    reg = [c for c in changes if c.verdict == "regression"]
    imp = [c for c in changes if c.verdict == "improvement"]
    if reg:
        head = (f"REGRESSION: {len(reg)} of {len(changes)} metrics regressed "
                f"(threshold {default_pct:g}%, correctness counters 0%); {len(imp)} improved.")
    else:
        head = f"OK: none of {len(changes)} metrics regressed; {len(imp)} improved."
    lines = [head]
    if unmatched is not None and (block := render_unmatched(unmatched, match_params)):
        lines += block.rstrip("\n").split("\n")

    def table(title: str, rows: list[Change]) -> None:
        if not rows:
            return
        rows = sorted(rows, key=lambda c: -abs(c.pct) if math.isfinite(c.pct) else -math.inf)
        cells = [(_num(c.base, c.base_sd, _metric_of(c)),
                  "new" if math.isinf(c.pct) else f"{c.pct:+.1f}%",
                  _num(c.head, c.head_sd, _metric_of(c)), _label(c)) for c in rows]
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


def as_json(changes: list[Change], default_pct: float = DEFAULT_THRESHOLD_PCT,
            unmatched: Unmatched | None = None) -> dict:
    """What render prints, for other tools: every gated metric with base and head in the
    result file's units (B/s, ns: latencies are their p99), the % change (null: the base is
    0 and the head is not), the verdict, and what was not gated."""
    reg = sum(c.verdict == "regression" for c in changes)

    def run_id(r: Run) -> dict:
        return {"strategy": r.strategy, "workload": r.workload, "params": dict(r.params),
                "seed": r.seed, "engine": r.engine}
    out = {"verdict": "regression" if reg else "ok", "regressions": reg,
           "improvements": sum(c.verdict == "improvement" for c in changes),
           "default_threshold_pct": default_pct, "changes": []}
    for c in changes:
        w, s, m = c.name.split("/", 2) if c.name.count("/") >= 2 else ("", "", c.name)
        out["changes"].append({"workload": w, "strategy": s, "metric": m,
                               "unit": METRIC_BY_NAME[m].unit if m in METRIC_BY_NAME else "",
                               "statistic": "p99" if m in LATENCY_METRICS else "value",
                               "base": c.base, "head": c.head,
                               "pct": c.pct if math.isfinite(c.pct) else None,
                               "verdict": c.verdict})
    if unmatched is not None:
        out["only_in_baseline"] = [run_id(r) for r in unmatched.baseline]
        out["only_in_candidate"] = [run_id(r) for r in unmatched.candidate]
    return out


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
