"""The dashboard's figures: seaborn/matplotlib on the Agg backend, one PNG each.

Every function takes plain numbers (no Suite, no engine) and returns
(Figure, alt text); `save` writes it.  Figures are built on
matplotlib.figure.Figure, never through pyplot, so no global figure state is
kept between them, and saved without the "Software" PNG key so the bytes
depend only on the numbers and the installed matplotlib.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")              # a report is written headless, whatever the environment says
import numpy as np                 # noqa: E402
import seaborn as sns              # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

DPI = 100
PERCENTILES = (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max"))


def theme():
    """The rc settings every figure is drawn under (a context manager: no global change)."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.8),
          "axes.titleweight": "bold", "legend.frameon": False}
    return matplotlib.rc_context(rc)


def palette(strategies: Sequence[str]) -> dict[str, tuple]:
    """One colour per strategy, the same in every figure of a site."""
    return dict(zip(strategies, sns.color_palette("colorblind", max(len(strategies), 1))))


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _strategy_axis(ax, names: Sequence[str]) -> None:
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=25, ha="right")
    ax.set_xlabel("")


def _legend(fig: Figure, colors: Mapping[str, tuple], names: Sequence[str], lines: bool = False) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    if lines:
        handles = [Line2D([], [], color=colors[n], lw=2) for n in names]
    else:
        handles = [Patch(color=colors[n]) for n in names]
    # as many columns as the figure's width holds (about 1.9 in per entry, more for a long
    # label), so a legend above a narrow figure wraps into rows instead of being cut off
    per = max(1.9, 0.075 * max(len(n) for n in names))
    fits = max(1, int(fig.get_figwidth() // per))
    fig.legend(handles, names, loc="outside upper center", ncols=min(len(names), 5, fits),
               title=None, fontsize="small")


# ------------------------------------------------------------------ per workload
def throughput(workload: str, data: Mapping[str, Mapping[str, tuple]], colors) -> tuple[Figure, str]:
    """data: {panel title: {strategy: (median, lo, hi, [per-seed values])}} in MB/s."""
    fig = Figure(figsize=(9.6, 3.3), layout="constrained")
    axes = fig.subplots(1, len(data), squeeze=False)[0]
    alt = [f"Bar charts of throughput in MB/s per strategy on workload {workload}: median over "
           f"seeds with its 95% bootstrap confidence interval as error bars, seeds as dots."]
    for ax, (title, per) in zip(axes, data.items()):
        names = list(per)
        med = np.array([per[n][0] for n in names])
        lo = np.array([per[n][1] for n in names])
        hi = np.array([per[n][2] for n in names])
        sns.barplot(x=names, y=med, hue=names, palette=[colors[n] for n in names], order=names,
                    hue_order=names, errorbar=None, legend=False, ax=ax, alpha=0.85)
        ax.errorbar(range(len(names)), med, yerr=[med - lo, hi - med], fmt="none",
                    ecolor="black", elinewidth=1.2, capsize=4)
        for i, n in enumerate(names):
            seeds = per[n][3]
            offs = np.linspace(-0.18, 0.18, len(seeds)) if len(seeds) > 1 else [0.0]
            ax.scatter(i + np.asarray(offs), seeds, s=9, color="black", alpha=0.5, zorder=3,
                       linewidths=0)
        ax.set_title(title)
        ax.set_ylabel("MB/s")
        ax.set_ylim(bottom=0)
        _strategy_axis(ax, names)
        alt.append(f"{title}: " + ", ".join(f"{n} {_fmt(per[n][0])} "
                                            f"[{_fmt(per[n][1])}-{_fmt(per[n][2])}]" for n in names) + ".")
    return fig, " ".join(alt)


def latency(workload: str, data: Mapping[str, Mapping[str, Mapping[str, float]]],
            colors) -> tuple[Figure, str]:
    """data: {kind: {strategy: {p50, p99, p999, max}}} in microseconds (medians over seeds)."""
    kinds = list(data)
    ncols = min(len(kinds), 4)
    nrows = -(-len(kinds) // ncols)
    fig = Figure(figsize=(2.6 * ncols + 0.6, 2.7 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    names = list(dict.fromkeys(s for k in kinds for s in data[k]))
    alt = [f"Bar charts of latency percentiles (p50, p99, p99.9, max) in microseconds (log scale "
           f"where values span decades) "
           f"per strategy on workload {workload}, medians over seeds; panels: {', '.join(kinds)}."]
    for ax, kind in zip(axes, kinds):
        xs, ys, hs = [], [], []
        for s, pct in data[kind].items():
            for key, label in PERCENTILES:
                v = pct[key]
                xs.append(label)
                ys.append(v if v > 0 else np.nan)    # a zero has no place on a log axis
                hs.append(s)
        sns.barplot(x=xs, y=ys, hue=hs, hue_order=names, order=[p[1] for p in PERCENTILES],
                    palette=colors, errorbar=None, legend=False, ax=ax)
        pos = [y for y in ys if y > 0]
        if pos and max(pos) / min(pos) > 30:        # log only where it spans decades
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt(v)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(f"{kind} latency")
        ax.set_ylabel("µs")
        ax.set_xlabel("")
        worst = max(data[kind].items(), key=lambda kv: kv[1]["p99"])
        alt.append(f"{kind}: highest p99 {worst[0]} {_fmt(worst[1]['p99'])} µs; p99 by strategy "
                   + ", ".join(f"{s} {_fmt(p['p99'])}" for s, p in data[kind].items()) + ".")
    for ax in axes[len(kinds):]:
        ax.set_visible(False)
    _legend(fig, colors, names)
    return fig, " ".join(alt)


def coinciding(series: Mapping[str, np.ndarray]) -> list[list[str]]:
    """Strategies whose series are the same, grouped, in the order given: each group is drawn
    once, so a line hidden under another's is not taken for missing."""
    groups: list[list[str]] = []
    for s, rows in series.items():
        for g in groups:
            if np.array_equal(series[g[0]], rows):
                g.append(s)
                break
        else:
            groups.append([s])
    return groups


def memory(workload: str, series: Mapping[str, np.ndarray], seed: int, colors,
           temp_peaks: Mapping[str, float] | None = None) -> tuple[Figure, str]:
    """series: {strategy: rows of (time_ns, dirty, writeback, temp, cache, anon)}; temp_peaks:
    {strategy: the engine's own temp_pages_peak of the same run}, drawn as a dashed line, since
    a peak shorter than the sample spacing is not in the thinned series."""
    cols = ((3, "temp pages"), (2, "pages under writeback"), (1, "dirty pages"))
    groups = coinciding(series)
    label = {g[0]: " = ".join(g) for g in groups}
    temp_peaks = dict(temp_peaks or {})
    # Runs are sampled long after the application finished; show the part where pages move.
    # (up to the sample after the last busy one, so a step plot shows how long it lasted).
    busy = [float(r[min(np.flatnonzero(r[:, 1:4].any(axis=1))[-1] + 1, len(r) - 1), 0])
            for r in series.values() if r[:, 1:4].any()]
    t_all = max(float(r[-1, 0]) for r in series.values())
    t_end = min(t_all, max(busy) * 1.1) if busy else t_all
    if t_end <= 0:
        t_end = t_all or 1.0
    scale, unit = (1e-9, "s") if t_end >= 2e9 else (1e-6, "ms")
    step = float(np.median(np.diff(next(iter(series.values()))[:, 0]))) if \
        len(next(iter(series.values()))) > 1 else 0.0
    fig = Figure(figsize=(9.6, 3.2), layout="constrained")
    axes = fig.subplots(1, len(cols))
    alt = [f"Line charts over simulated time ({unit}) on workload {workload}, seed {seed}, one line "
           f"per strategy: " + ", ".join(t for _, t in cols) + "."]
    for ax, (col, title) in zip(axes, cols):
        top = max(float(r[:, col].max()) for r in series.values())
        for g in groups:
            s, rows = g[0], series[g[0]]
            shown = rows[rows[:, 0] <= t_end * 1.001]
            few = len(shown) < 40
            ax.plot(shown[:, 0] * scale, shown[:, col], drawstyle="steps-post", lw=1.3,
                    color=colors[s], label=label[s], alpha=0.9, marker="o" if few else None,
                    ms=2.5)
            peak = temp_peaks.get(s)
            if col == 3 and peak and peak > float(rows[:, col].max()):
                ax.axhline(peak, color=colors[s], lw=1.1, ls="--", alpha=0.9)
                top = max(top, float(peak))
        ax.set_title(title)
        ax.set_xlabel(f"simulated time ({unit})")
        ax.set_ylabel("pages")
        ax.set_ylim(bottom=0, top=max(1.0, top * 1.08))
        ax.set_xlim(0, t_end * scale * 1.04)
        alt.append(f"Largest sampled {title}: " + ", ".join(
            f"{label[g[0]]} {int(series[g[0]][:, col].max())}" for g in groups) + ".")
    dashed = [g[0] for g in groups if temp_peaks.get(g[0], 0) > series[g[0]][:, 3].max()]
    if dashed:
        alt.append("Dashed: the run's temp pages peak as the engine counted it, above every "
                   "sample: " + ", ".join(f"{label[s]} {int(temp_peaks[s])}" for s in dashed) + ".")
    if any(len(g) > 1 for g in groups):
        alt.append("Strategies joined by '=' have the same series and are drawn once.")
    if step:
        alt.append(f"One sample every {step * 1e-6:g} ms.")
    _legend(fig, {label[g[0]]: colors[g[0]] for g in groups}, [label[g[0]] for g in groups],
            lines=True)
    return fig, " ".join(alt)


def pages_per_request(workload: str, hists: Mapping[str, Mapping[int, int]],
                      colors) -> tuple[Figure, str]:
    """hists: {strategy: {pages: requests}} summed over seeds."""
    names = list(hists)
    ncols = min(len(names), 5)
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(2.0 * ncols + 0.6, 2.3 * nrows + 0.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    alt = [f"Histograms of pages per WRITE request on workload {workload}, one panel per strategy, "
           f"as a fraction of its requests over all seeds."]
    for ax, s in zip(axes, names):
        h = hists[s]
        total = sum(h.values())
        keys = np.array(sorted(h), dtype=float)
        frac = np.array([h[int(k)] / total for k in keys]) if total else np.zeros(0)
        ax.bar(keys, frac, width=0.9 if len(keys) and keys.max() <= 64 else 1.0, color=colors[s])
        if len(keys):       # a single size is a narrow bar on a pages axis, not a full-width block
            ax.set_xlim(min(0.0, keys.min() - 1), max(keys.max() + 1, 8.0))
        mean = float((keys * frac).sum()) if total else 0.0
        ax.set_title(f"{s}\n{total:,} WRITEs, mean {mean:.1f}", fontsize="small")
        ax.set_xlabel("pages per request")
        alt.append(f"{s}: {total} requests, mean {mean:.1f} pages"
                   + (f", most often {int(keys[frac.argmax()])}" if total else "") + ".")
    for ax in axes[::ncols]:
        ax.set_ylabel("fraction of requests")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig, " ".join(alt)


TREND_PANELS = (("app throughput", "MB/s"), ("fsync p99", "µs"), ("temp pages peak", "pages"))


def trend(workload: str, labels: Sequence[str],
          data: Mapping[str, Mapping[str, Sequence[float]]], colors) -> tuple[Figure, str]:
    """data: {panel: {strategy: one median per file, nan where absent}}; x = the files in order."""
    fig = Figure(figsize=(9.6, 3.0), layout="constrained")
    axes = fig.subplots(1, len(data))
    x = np.arange(len(labels))
    names = list(dict.fromkeys(s for per in data.values() for s in per))
    # strategies with the same values in every panel are one line, named together
    groups: dict[str, list[str]] = {}
    for s in names:
        key = repr([list(per.get(s, [])) for per in data.values()])
        groups.setdefault(key, []).append(s)
    label = {g[0]: " = ".join(g) for g in groups.values()}
    alt = [f"Line charts across {len(labels)} result files ({', '.join(labels)}) on workload "
           f"{workload}, one line per strategy: " + ", ".join(data) + " (medians over seeds)."]
    if len(label) < len(names):
        alt.append("Strategies joined by '=' have the same values and are drawn once.")
    for ax, (panel, per) in zip(axes, data.items()):
        unit = dict(TREND_PANELS).get(panel, "")
        for s, ys in per.items():
            if s in label:
                ax.plot(x, ys, marker="o", ms=4, lw=1.4, color=colors[s])
        ax.set_title(panel)
        ax.set_ylabel(unit)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize="x-small")
        ax.set_xlim(-0.3, len(labels) - 0.7)
        ax.set_ylim(bottom=0)
        last = {s: ys[-1] for s, ys in per.items() if not math.isnan(ys[-1])}
        if last:
            alt.append(f"{panel} in the last file: " + ", ".join(f"{label[s]} {_fmt(v)}"
                                                                 for s, v in last.items()
                                                                 if s in label) + ".")
    _legend(fig, {label[s]: colors[s] for s in label}, list(label.values()), lines=True)
    return fig, " ".join(alt)


# ------------------------------------------------------------------ overview
def ratio_heatmap(panels: Mapping[str, tuple[np.ndarray, np.ndarray, bool]],
                  workloads: Sequence[str], strategies: Sequence[str],
                  base: str) -> tuple[Figure, str]:
    """panels: {title: (ratios [workload x strategy] to `base`, nan where there is no value;
    significant [same shape]; higher is better)}.  Colour: how much better (blue) or worse (red)
    than the base, on a log scale clipped at 4x either way; each cell its ratio, `*` where the
    difference is significant."""
    n = len(panels)
    fig = Figure(figsize=(1.0 + n * (0.75 * len(strategies) + 0.9), 0.8 + 0.36 * len(workloads)),
                 layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    cmap = sns.color_palette("vlag_r", as_cmap=True)
    lim = math.log2(4)
    alt = [f"Heatmaps of the ratio of each strategy's median to {base}'s, per workload (rows) and "
           f"strategy (columns), for {', '.join(panels)}; blue better, red worse, an asterisk "
           f"where a Mann-Whitney U test over the seeds finds the difference significant."]
    for i, (ax, (title, (ratio, sig, hib))) in enumerate(zip(axes, panels.items())):
        with np.errstate(divide="ignore", invalid="ignore"):
            good = np.log2(ratio) * (1 if hib else -1)
        good = np.clip(np.where(np.isfinite(good), good, np.nan), -lim, lim)
        labels = np.empty(ratio.shape, dtype=object)
        for (r, c), v in np.ndenumerate(ratio):
            if strategies[c] == base:
                labels[r, c] = "base" if math.isfinite(v) else ""
            elif not math.isfinite(v):
                labels[r, c] = "–" if math.isnan(v) else "new"
            else:
                labels[r, c] = f"{v:.2f}" + ("*" if sig[r, c] else "")
        with warnings.catch_warnings():     # seaborn's own cmap.set_bad call, deprecated
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(good, ax=ax, cmap=cmap, vmin=-lim, vmax=lim, center=0,
                        cbar=i == n - 1, annot=labels, fmt="", annot_kws={"fontsize": "small"},
                        linewidths=0.5, linecolor="white", xticklabels=list(strategies),
                        yticklabels=list(workloads) if i == 0 else False,
                        cbar_kws={"label": "better / worse than the base (log scale)",
                                  "ticks": [-lim, -1, 0, 1, lim]} if i == n - 1 else None)
        if i == n - 1:
            cb = ax.collections[0].colorbar
            cb.set_ticklabels(["4x worse", "2x", "same", "2x", "4x better"])
        ax.set_facecolor("#eceff2")        # a cell without a value (no such calls)
        ax.grid(False)
        ax.set_title(title)
        ax.set_xticklabels(list(strategies), rotation=35, ha="right")
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel("")
        best = [(workloads[r], strategies[c], ratio[r, c]) for r, c in zip(*np.nonzero(sig))]
        alt.append(f"{title}: " + (", ".join(f"{w} {s} {v:.2f}" for w, s, v in best)
                                   if best else "no significant difference") + ".")
    return fig, " ".join(alt)
