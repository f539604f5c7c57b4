"""Result files -> the static site: index.html, one page per workload, img/*.png.

Data comes only from result files (bench.results), summaries from bench.stats
and bench.compare; no engine is imported.  The site is written into a fresh
directory next to DIR and renamed into place at the end, so a failure halfway
leaves the previous site (or nothing) and never a half-written index.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import compare, stats
from ..metrics import METRIC_BY_NAME
from .. import Run, Suite, warn_partial
from ..store import load_any as load        # JSON result files and sweep stores
from ..store import parts as store_parts
from . import _figures as F
from ._html import esc, figure, fmt, link, page, table, td, th_row

MARKER = ".bench-report"         # names a directory this module may replace
LATENCY_KINDS = (("write_latency_ns", "write"), ("fault_latency_ns", "fault"),
                 ("fsync_latency_ns", "fsync"), ("throttle_ns", "throttle"),
                 ("sync_latency_ns", "sync"), ("reclaim_stall_ns", "reclaim stall"),
                 ("compaction_stall_ns", "compaction stall"))
CORRECTNESS = ("lost_updates", "out_of_order", "max_copies_in_flight", "hangs", "deadlocks", "stuck")
ALARMS = {"lost_updates", "out_of_order", "hangs", "deadlocks", "stuck"}   # any nonzero is a finding
# summary columns: (metric, title, value getter, scale)
SUMMARY = (("app_throughput_bps", "app throughput (MB/s)", None, 1e-6),
           ("write_latency_ns", "write p99 (µs)", "p99", 1e-3),
           ("temp_pages_peak", "temp pages peak", None, 1),
           ("lost_updates", "lost updates", None, 1))
META = (("package_version", "package version"), ("git_commit", "git commit"), ("kernel", "kernel"),
        ("cpu_model", "CPU model"), ("cpu_count", "CPUs"), ("python_version", "Python"),
        ("date", "date"), ("machine", "machine profile"), ("cost_profile", "cost profile"),
        ("engine", "engine"), ("seeds", "seeds"),
        ("params", "parameters"), ("command", "command"))


@dataclass(frozen=True)
class Source:
    path: str
    label: str          # short commit or date: the x tick of the trend charts
    suite: Suite


# ------------------------------------------------------------------ numbers
def values(runs: Sequence[Run], metric: str, key: str | None = None, scale: float = 1.0) -> list[float]:
    """One number per run; a latency object without samples counts as no value at all."""
    out = []
    for r in runs:
        v = r.metrics.get(metric)
        if v is None:
            continue
        if isinstance(v, dict):
            if v.get("count", 0) == 0 or key is None:
                continue
            v = v[key]
        out.append(float(v) * scale)
    return out


def median(vs: Sequence[float]) -> float:
    return float(np.median(vs)) if len(vs) else math.nan


def file_labels(suites: Sequence[Suite]) -> list[str]:
    """Short commit per file, or its date when commits repeat; positions when both repeat."""
    def commit(md) -> str:
        c = str(md.get("git_commit") or "")
        if not c or c == "unknown":
            return ""
        dirty = c.endswith("-dirty")
        return c.removesuffix("-dirty")[:7] + ("-dirty" if dirty else "")

    def date(md, n: int) -> str:
        return str(md.get("date") or "")[:n].replace("T", " ")

    mds = [s.metadata for s in suites]
    for make in (commit, lambda m: date(m, 16), lambda m: date(m, 19)):
        labels = [make(m) for m in mds]
        if all(labels) and len(set(labels)) == len(labels):
            return labels
    return [f"{i + 1}: {commit(m) or date(m, 16) or 'file'}" for i, m in enumerate(mds)]


def shown_path(p: str) -> str:
    """A result file's path as a page shows it: relative to the working directory when it lies
    below it, else its name alone, so no page carries a local absolute path."""
    rel = os.path.relpath(os.path.abspath(p))
    return rel if not rel.startswith("..") else os.path.basename(p)


def _slugs(names: Sequence[str]) -> dict[str, str]:
    """Workload name -> page file name: only [A-Za-z0-9._-], unique, never hidden or 'index'."""
    out, used = {}, {"index"}
    for n in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", n).strip("-.")[:60] or "workload"
        slug, i = base, 2
        while slug.lower() in used:
            slug, i = f"{base}-{i}", i + 1
        used.add(slug.lower())
        out[n] = slug
    return out


def history_files(directory: str) -> list[str]:
    """The result files (*.json) and sweep stores (subdirectories of part-*.parquet) of a
    directory, oldest first by metadata.date (then by name): the results of successive
    commits, as `report --history DIR` takes them."""
    return [p for p, _ in history(directory)]


def history(directory: str) -> list[tuple[str, Suite]]:
    """history_files with each one's loaded Suite, so that build need not load it again."""
    d = Path(directory)
    if not d.is_dir():
        raise ValueError(f"--history: {directory}: not a directory")
    found = sorted(str(f) for f in d.iterdir()
                   if (f.suffix == ".json" and f.is_file()) or (f.is_dir() and store_parts(f)))
    if not found:
        raise ValueError(f"--history: {directory}: holds no result file (*.json) or sweep store")
    loaded = [(f, load(f)) for f in found]
    return sorted(loaded, key=lambda fs: (str(fs[1].metadata.get("date") or ""), Path(fs[0]).name))


@dataclass(frozen=True)
class Step:
    """A regression between two successive result files: `at` introduced it (asv's naming)."""
    at: Source
    since: Source
    change: Any          # bench.results.gate.Change


def regressions(sources: Sequence[Source]) -> tuple[list[Step], list[str]]:
    """The gate between each file and the one before it: every regression, named by the file
    (commit) that brought it, and a note for each pair that could not be gated."""
    from .. import gate
    steps, notes = [], []
    for before, after in zip(sources, sources[1:]):
        try:
            changes = gate.compare(before.suite, after.suite, allow_profile_change=True)
        except ValueError as exc:
            notes.append(f"{after.label} against {before.label}: not gated ({exc})")
            continue
        steps += [Step(after, before, c) for c in changes if c.verdict == "regression"]
        if gate.machine_of(before.suite) != gate.machine_of(after.suite):
            notes.append(f"{after.label}: simulated on another machine profile than "
                         f"{before.label}, so its changes may come from the profile")
    return steps, notes


# ------------------------------------------------------------------ the site
def build(paths: Sequence[str], out_dir: str, suites: Sequence[Suite] | None = None) -> Path:
    """Write the dashboard of the result files `paths` (in that order) into out_dir; `suites`,
    when given, are those files already loaded.

    Returns the path of index.html.  ValueError (one line) for a bad result file,
    an out_dir that is not a directory, or a non-empty directory that this
    function did not write (it is replaced only when it holds a previous site).
    """
    if not paths:
        raise ValueError("report: give at least one result file")
    if suites is None:          # every file is checked before anything is written
        suites = [load(p) for p in paths]
    warn_partial(zip(paths, suites))
    for p, s in zip(paths, suites):
        if not s.runs:
            raise ValueError(f"{p}: holds no runs")
    out = Path(os.path.abspath(out_dir))
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"{out_dir}: a non-empty directory that is not a `bench report` site; "
                         f"choose another -o DIR")
    sources = [Source(str(p), lab, s) for p, lab, s in zip(paths, file_labels(suites), suites)]

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except FileExistsError as exc:           # a component of the path is a file
        raise ValueError(f"{out_dir}: cannot write: {exc.filename} is not a directory") from None
    except OSError as exc:
        raise ValueError(f"{out_dir}: cannot write in {out.parent}: {exc.strerror}") from None
    try:
        _write_site(tmp, sources)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)          # mkdtemp makes 0700; a site is for sharing
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.rename(out, trash / "site")
            try:
                os.rename(tmp, out)
            except OSError:
                os.rename(trash / "site", out)     # put the previous site back
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


def _write_site(root: Path, sources: list[Source]) -> None:
    (root / "img").mkdir()
    workloads = list(dict.fromkeys(w for src in sources for w in src.suite.workloads()))
    strategies = list(dict.fromkeys(s for src in sources for s in src.suite.strategies()))
    colors = F.palette(strategies)
    slugs = _slugs(workloads)
    # A workload's page shows the last file that holds it: the newest of the given order.
    home = {w: next(src for src in reversed(sources) if w in src.suite.workloads()) for w in workloads}
    nav = [("index.html", "overview")] + [(f"{slugs[w]}.html", w) for w in workloads]
    shown = {id(src): src for src in home.values()}
    comparisons = {k: _comparison_rows(src.suite) for k, src in shown.items()}

    trends: dict[str, str] = {}
    multi = len(sources) > 1
    steps, notes = regressions(sources) if multi else ([], [])
    with F.theme():
        if multi:
            for w in workloads:
                trends[w] = _trend_figure(root, w, slugs[w], sources, colors) + \
                    _regressions_note([st for st in steps if st.change.name.startswith(w + "/")])
        for w in workloads:
            body = _workload_body(root, w, slugs[w], home[w], colors, comparisons[id(home[w])],
                                  trends.get(w, ""), multi=len(sources) > 1)
            (root / f"{slugs[w]}.html").write_text(
                page(f"{w} · fuse-writeback-bench", "fuse-writeback-bench dashboard", body, nav,
                     here=f"{slugs[w]}.html"), encoding="utf-8")
    (root / MARKER).write_text("written by `python -m bench report`; replaced by the next build\n")
    with F.theme():
        heat = _heatmap(root, workloads, home, comparisons)
    index = _index_body(sources, workloads, strategies, slugs, home, trends, heat,
                        history=_regressions_section(steps, notes, slugs) if multi else "")
    (root / "index.html").write_text(page("fuse-writeback-bench dashboard",
                                          "fuse-writeback-bench dashboard", index, nav,
                                          here="index.html"), encoding="utf-8")


def _regressions_note(steps: list[Step]) -> str:
    if not steps:
        return '<p class="note">No regression of this workload between successive files.</p>'
    return ('<p class="note">Regressed: ' + esc("; ".join(
        f"{st.change.name.split('/', 1)[1]} {st.change.pct:+.1f}% at {st.at.label} "
        f"(since {st.since.label})" for st in steps)) + ".</p>")


def _regressions_section(steps: list[Step], notes: list[str], slugs: dict[str, str]) -> str:
    from .. import gate
    parts = ["<h2>Regressions between successive result files</h2>",
             '<p class="note">Each file gated against the one before it, as <code>bench gate'
             '</code> does (simulated metrics beyond 5%, correctness counters on any increase, '
             'measured ones also by a Mann-Whitney U test); a regression is named by the file '
             '(commit) that brought it.</p>']
    for n in notes:
        parts.append(f'<p class="note">{esc(n)}.</p>')
    if not steps:
        parts.append('<p class="note">None: no file regressed against the one before it.</p>')
        return "\n".join(parts)
    rows = []
    for st in sorted(steps, key=lambda st: (st.at.label, -abs(st.change.pct)
                                            if math.isfinite(st.change.pct) else -math.inf)):
        w, s, m = st.change.name.split("/", 2)
        scale, unit = gate.shown(m)
        val = lambda v: fmt(v * scale) + (f" {unit}" if unit else "")  # noqa: E731
        pct = "new" if math.isinf(st.change.pct) else f"{st.change.pct:+.1f}%"
        commit = st.at.suite.metadata.get("git_commit") or st.at.label
        rows.append([td(f"{st.at.label}", title=str(commit)), td(st.since.label),
                     td(link(f"{slugs[w]}.html", w), raw=True) if w in slugs else td(w), td(s),
                     td(m + (" p99" if isinstance(st.at.suite.select(w, s)[0].metrics.get(m), dict)
                             else "")),
                     td(val(st.change.base), "num"), td(pct, "num bad"), td(val(st.change.head), "num")])
    parts.append(table(["regressed at", "since", "workload", "strategy", "metric", "before",
                        "change", "after"], rows))
    return "\n".join(parts)


def _comparison_rows(suite: Suite) -> list:
    strategies = suite.strategies()
    base = compare.DEFAULT_BASELINE if compare.DEFAULT_BASELINE in strategies else strategies[0]
    return compare.rows(suite, base)


def _save(root: Path, fig, name: str, alt: str, caption: str) -> str:
    F.save(fig, root / "img" / name)
    w, h = fig.get_size_inches()
    return figure(f"img/{name}", alt, caption, round(w * F.DPI), round(h * F.DPI))


# ------------------------------------------------------------------ index
def _meta_value(src: Source, key: str) -> str:
    md, runs = src.suite.metadata, src.suite.runs
    v: Any = md.get(key)
    if key == "seeds" and v is None:
        v = len({r.seed for r in runs})
    if key == "engine" and v is None:
        v = ", ".join(dict.fromkeys(r.engine for r in runs))
    if v is None or v == "":
        return "—"
    if key == "machine" and isinstance(v, dict):      # its values are in the file
        return f"{v.get('name')} (sha256 {v.get('sha256')})"
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or "(defaults)"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v)


HEATMAP = (("app_throughput_bps", "app throughput"), ("write_latency_ns", "write p99"),
           ("fsync_latency_ns", "fsync p99"))


def _heatmap(root: Path, workloads: list[str], home: dict, comparisons: dict) -> str:
    """The overview's figure: each simulated strategy's ratio to the base, workload by workload
    (the comparison rows of each workload's page), significant ones marked."""
    rows = {w: [r for r in comparisons[id(home[w])] if r.workload == w] for w in workloads}
    bases = {r.base for rs in rows.values() for r in rs}
    strategies = list(dict.fromkeys(r.strategy for rs in rows.values() for r in rs
                                    if not r.strategy.startswith("kernel-")))
    if len(bases) != 1 or len(strategies) < 2:
        return ""
    base = bases.pop()
    panels, tested = {}, False
    for metric, title in HEATMAP:
        ratio = np.full((len(workloads), len(strategies)), np.nan)
        sig = np.zeros(ratio.shape, bool)
        for i, w in enumerate(workloads):
            for r in rows[w]:
                if r.metric == metric and r.strategy in strategies:
                    j = strategies.index(r.strategy)
                    ratio[i, j] = math.inf if math.isnan(r.ratio) and r.median else r.ratio
                    sig[i, j] = r.significant and r.strategy != base
                    tested |= r.n >= compare.MIN_SEEDS_FOR_TEST
        if np.isfinite(ratio).any():
            panels[title] = (ratio, sig, bool(METRIC_BY_NAME[metric].higher_is_better))
    if not panels:
        return ""
    fig, alt = F.ratio_heatmap(panels, workloads, strategies, base)
    marks = (f"*: significant, a Mann-Whitney U test over the seeds gives p &lt; {compare.ALPHA}"
             if tested else f"no cell is marked: fewer than {compare.MIN_SEEDS_FOR_TEST} seeds "
                            f"cannot make a difference significant")
    return _save(root, fig, "overview-ratios.png", alt,
                 f"Median of each strategy over its median of {base} (the base), per workload; "
                 f"blue better, red worse (log colour scale, clipped at 4x), grey: no value (no such "
                 f"calls).") + _note(marks)


def _note(html_text: str) -> str:
    return f'<p class="note">{html_text}.</p>'


def _strategies_table(names) -> str:
    """What each strategy of the results stands for, with the kernels and commits it follows
    (strategies/<name>.py); a measured row (kernel-*) is the kernel it ran on."""
    from strategies import STRATEGIES
    rows = []
    for name in names:
        s = STRATEGIES.get(name)
        if s is not None:
            rows.append([td(name), td(s.summary), td(s.kernels)])
        elif name.startswith("kernel-"):
            rows.append([td(name), td("measured on a real mount of this kernel"),
                         td(name[len("kernel-"):])])
        else:
            rows.append([td(name), td("not a strategy of this version"), td("")])
    return "<h2>Strategies</h2>" + table(["strategy", "what it does", "kernels and commits"], rows)


def _index_body(sources, workloads, strategies, slugs, home, trends, heat: str = "",
                history: str = "") -> str:
    parts = ["<h1>Overview</h1>",
             f'<p class="note">{len(sources)} result file(s), {len(workloads)} workload(s), '
             f'{len(strategies)} strateg{"y" if len(strategies) == 1 else "ies"}. Values are medians '
             f'over seeds; the workload pages show spreads, confidence intervals and figures.</p>',
             "<h2>Result files</h2>"]
    head = [""] + [f"{i + 1}. {src.label}" for i, src in enumerate(sources)]
    rows = [[th_row("file")] + [td(shown_path(src.path)) for src in sources]]
    known = {k for k, _ in META}
    for key, title in META:
        rows.append([th_row(title)] + [td(_meta_value(src, key)) for src in sources])
    extra = list(dict.fromkeys(k for src in sources for k in src.suite.metadata if k not in known))
    for key in extra:
        rows.append([th_row(key)] + [td(_meta_value(src, key)) for src in sources])
    rows.append([th_row("runs")] + [td(str(len(src.suite.runs))) for src in sources])
    parts.append(table(head, rows))

    parts.append(_strategies_table(strategies))
    if history:
        parts.append(history)
    if heat:
        parts.append("<h2>Ratios to the base strategy</h2>")
        parts.append(heat)
    parts.append("<h2>Summary</h2>")
    if len(sources) > 1:
        parts.append('<p class="note">Each workload from the last file that holds it '
                     '(the file number is in the first column).</p>')
    parts.append(f'<p class="note">Medians over seeds; bold: the best strategy of the workload '
                 f'(with those within {100 * compare.TIE:.1f}% of it), only where a Mann-Whitney U '
                 f'test over the seeds against the next best gives p &lt; {compare.ALPHA} (it needs '
                 f'{compare.MIN_SEEDS_FOR_TEST} seeds or more). Lost updates in red when any seed '
                 f'lost one (the largest is shown).</p>')
    head = ["workload", "strategy"] + [t for _, t, _, _ in SUMMARY]
    rows = []
    ranked = [m for m, _, _, _ in SUMMARY if m != "lost_updates"]
    wins = {id(src): {(v.workload, v.metric): v for v in compare.verdicts(src.suite, ranked)}
            for src in {id(src): src for src in home.values()}.values()}
    for w in workloads:
        src = home[w]
        names = [s for s in src.suite.strategies() if src.suite.select(w, s)]
        cols = {}
        for metric, _, key, scale in SUMMARY:
            cols[metric] = {s: values(src.suite.select(w, s), metric, key, scale) for s in names}
        for i, s in enumerate(names):
            row = []
            if i == 0:
                label = link(f"{slugs[w]}.html", w)
                if len(sources) > 1:
                    label += f' <span class="note">(file {sources.index(src) + 1})</span>'
                row.append(th_row(label, raw=True, rowspan=len(names)))
            row.append(td(s))
            for metric, _, _, _ in SUMMARY:
                vs = cols[metric][s]
                v = wins[id(src)].get((w, metric))
                row.append(_summary_cell(metric, vs, best=bool(v and v.significant and
                                                             s in v.winners)))
            rows.append(row)
    parts.append(table(head, rows))

    if trends:
        parts.append("<h2>Trends across the result files</h2>")
        parts.append('<p class="note">x: the result files in the order given (with --history, '
                     'oldest first by date), labelled by short commit (or date); y: medians over '
                     'seeds. A gap: the file lacks that workload '
                     'or the value (no fsync, say).</p>')
        for w in workloads:
            parts.append(f"<h3>{link(f'{slugs[w]}.html', w)}</h3>")
            parts.append(trends[w])
    parts.append("<h2>Workloads</h2><ul>" + "".join(
        f"<li>{link(f'{slugs[w]}.html', w)}: {len(home[w].suite.select(w))} runs</li>"
        for w in workloads) + "</ul>")
    return "\n".join(parts)


def _summary_cell(metric: str, vs: list[float], best: bool) -> str:
    """best: this strategy wins the workload on the metric, significantly (compare.verdicts)."""
    if not vs:
        return td("—", "num")
    m = median(vs)
    if metric == "lost_updates":
        worst = max(vs)
        return td(fmt(worst) if worst else "0", "num bad" if worst else "num",
                  title=f"median {fmt(m)}, max {fmt(worst)} over {len(vs)} seeds")
    return td(fmt(m), "num best" if best else "num")


# ------------------------------------------------------------------ workload pages
def _workload_body(root: Path, w: str, slug: str, src: Source, colors, comp_rows, trend_html: str,
                   multi: bool) -> str:
    suite = src.suite
    names = [s for s in suite.strategies() if suite.select(w, s)]
    runs = {s: suite.select(w, s) for s in names}
    seeds = sorted({r.seed for r in suite.select(w)})
    params = suite.select(w)[0].params
    parts = [f"<h1>{esc(w)}</h1>",
             f'<p class="note">From <code>{esc(shown_path(src.path))}</code>'
             + (f" (file {esc(src.label)})" if multi else "")
             + f"; {len(seeds)} seed(s) ({esc(', '.join(map(str, seeds)))}), engine "
             f"{esc(', '.join(dict.fromkeys(r.engine for r in suite.select(w))))}; run parameters: "
             f"{esc(', '.join(f'{k}={v}' for k, v in params.items()) or 'defaults')}.</p>"]

    parts.append("<h2>Throughput</h2>")
    data = {}
    for metric, title in (("app_throughput_bps", "application throughput"),
                          ("wb_throughput_bps", "writeback throughput")):
        per = {}
        for s in names:
            vs = values(runs[s], metric, scale=1e-6)
            if vs:
                sm = stats.summarize(vs)
                per[s] = (sm.median, sm.lo, sm.hi, vs)
        if per:
            data[title] = per
    if data:
        fig, alt = F.throughput(w, data, colors)
        parts.append(_save(root, fig, f"{slug}-throughput.png", alt,
                           "Median over seeds (bar), 95% bootstrap confidence interval of the median "
                           "(error bar), each seed (dot)."))

    parts.append("<h2>Latency</h2>")
    lat = {}
    for metric, kind in LATENCY_KINDS:
        per = {}
        for s in names:
            got = {k: values(runs[s], metric, k, 1e-3) for k, _ in F.PERCENTILES}
            if got["p50"]:
                per[s] = {k: median(v) for k, v in got.items()}
        if per:
            lat[kind] = per
    if lat:
        fig, alt = F.latency(w, lat, colors)
        parts.append(_save(root, fig, f"{slug}-latency.png", alt,
                           "Percentiles of each run, median over seeds (log scale where they span "
                           "decades); kinds without samples are left out."))
    else:
        parts.append('<p class="note">No latency samples in this workload.</p>')

    parts.append("<h2>Memory over simulated time</h2>")
    series = {}
    seed_shown = None
    peaks = {}
    for s in names:
        with_series = [r for r in runs[s] if len(r.series)]
        if with_series:
            first = min(with_series, key=lambda r: r.seed)
            series[s] = first.series
            peaks[s] = float(first.metrics.get("temp_pages_peak") or 0)
            seed_shown = first.seed if seed_shown is None else min(seed_shown, first.seed)
    if series:
        fig, alt = F.memory(w, series, seed_shown, colors, peaks)
        parts.append(_save(root, fig, f"{slug}-memory.png", alt,
                           "The first seed of each strategy, as sampled by the engine (a result "
                           "file keeps at most a few hundred samples per run, so peaks shorter than "
                           "the sample spacing are missed; a dashed line is the run's temp pages "
                           "peak as the engine counted it, where it is above every sample); "
                           "strategies joined by '=' have the same series and are drawn once; the "
                           "time axis stops after the last busy sample."))
    else:
        parts.append('<p class="note">The result file holds no time series for this workload.</p>')

    parts.append("<h2>Pages per WRITE request</h2>")
    hists = {}
    for s in names:
        h: dict[int, int] = {}
        for r in runs[s]:
            for k, n in (r.metrics.get("pages_per_request") or {}).items():
                h[int(k)] = h.get(int(k), 0) + int(n)
        hists[s] = h
    if any(hists.values()):
        fig, alt = F.pages_per_request(w, hists, colors)
        parts.append(_save(root, fig, f"{slug}-pages.png", alt,
                           "Fraction of each strategy's WRITE requests, all seeds together."))

    parts.append("<h2>Correctness</h2>")
    present = [c for c in CORRECTNESS if any(c in r.metrics for r in suite.select(w))]
    rows = []
    for s in names:
        row = [th_row(s)]
        for c in present:
            vs = values(runs[s], c)
            if not vs:
                row.append(td("—", "num"))
                continue
            worst = max(vs)
            row.append(td(f"{fmt(median(vs))} / {fmt(worst)}",
                          "num bad" if c in ALARMS and worst > 0 else "num"))
        rows.append(row)
    parts.append('<p class="note">median / max over seeds; red: a seed saw it at least once.</p>')
    parts.append(table(["strategy"] + [c.replace("_", " ") for c in present], rows))

    parts.append("<h2>Comparison with the baseline</h2>")
    parts.append(_comparison_table(w, [r for r in comp_rows if r.workload == w]))

    if trend_html:
        parts.append("<h2>Trend across the result files</h2>")
        parts.append(trend_html)
    return "\n".join(parts)


def _comparison_table(w: str, rows: list) -> str:
    if not rows:
        return '<p class="note">No comparable metric.</p>'
    base = rows[0].base
    headline = {h[0]: h for h in compare.HEADLINE}
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    head = ["metric"] + [f"{s} (base)" if s == base else s for s in strategies]
    out = []
    for m in dict.fromkeys(r.metric for r in rows):
        _, label, _, scale, unit = headline.get(m, (m, m, None, 1, ""))
        by = {r.strategy: r for r in rows if r.metric == m}
        unit = {"us": "µs"}.get(unit, unit)
        if unit == "µs" and max((abs(r.median * scale) for r in by.values()
                                if not math.isnan(r.median)), default=0) >= 1e6:
            scale, unit = scale * 1e-6, "s"     # a 40 s stall in µs would widen all 7 columns
        cells = [th_row(f"{label} ({unit})" if unit else label)]
        for s in strategies:
            r = by.get(s)
            if r is None:
                cells.append(td("—", "num"))
                continue
            text = esc(fmt(r.median * scale))
            sub = []        # a second, smaller line, so the table fits a narrow window
            if r.hi != r.lo:
                sub.append(f'<span class="ci">[{esc(fmt(r.lo * scale))}–{esc(fmt(r.hi * scale))}]</span>')
            if s != base:
                sub.append('<span class="ratio">new</span>' if math.isnan(r.ratio) and r.median
                           else "" if math.isnan(r.ratio) else f'<span class="ratio">{r.ratio:.2f}×</span>')
            if any(sub):
                text += '<span class="sub">' + " ".join(x for x in sub if x) + "</span>"
            cls = "num" + (f" {r.verdict}" if r.verdict in ("better", "worse") else "")
            p = "n/a" if math.isnan(r.p_value) else f"{r.p_value:.3g}"
            cells.append(td(text, cls, title=f"{r.verdict}; p={p}; n={r.n}", raw=True))
        out.append(cells)
    note = (f'<p class="note">Median [95% bootstrap CI] over seeds and its ratio to {esc(base)}; '
            f"green better, red worse where a Mann-Whitney U test over the seeds gives "
            f"p &lt; {compare.ALPHA} (too few seeds can never reach it).</p>")
    return note + table(head, out)


def _trend_figure(root: Path, w: str, slug: str, sources: list[Source], colors) -> str:
    panels = (("app throughput", "app_throughput_bps", None, 1e-6),
              ("fsync p99", "fsync_latency_ns", "p99", 1e-3),
              ("temp pages peak", "temp_pages_peak", None, 1))
    strategies = list(dict.fromkeys(s for src in sources for s in src.suite.strategies()
                                    if src.suite.select(w, s)))
    data = {}
    for title, metric, key, scale in panels:
        data[title] = {s: [median(values(src.suite.select(w, s), metric, key, scale))
                           for src in sources] for s in strategies}
    fig, alt = F.trend(w, [src.label for src in sources], data, colors)
    return _save(root, fig, f"{slug}-trend.png", alt,
                 "Medians over seeds per result file, in the order the files were given "
                 "(with --history: oldest first by the files' dates).")
