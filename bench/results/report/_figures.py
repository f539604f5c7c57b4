"""The dashboard's figures: seaborn/matplotlib on the Agg backend, one PNG each.

Every function takes plain numbers (no Suite, no engine) and returns
(Figure, alt text); `save` writes it.  Figures are built on
matplotlib.figure.Figure, never through pyplot, so no global figure state is
kept between them, and saved without the "Software" PNG key so the bytes
depend only on the numbers and the installed matplotlib.
"""
from __future__ import annotations

import math
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
    fig.legend(handles, names, loc="outside upper center", ncols=min(len(names), 5),
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


def memory(workload: str, series: Mapping[str, np.ndarray], seed: int, colors) -> tuple[Figure, str]:
    """series: {strategy: rows of (time_ns, dirty, writeback, temp, cache, anon)}."""
    cols = ((3, "temp pages"), (2, "pages under writeback"), (1, "dirty pages"))
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
        for s, rows in series.items():
            shown = rows[rows[:, 0] <= t_end * 1.001]
            few = len(shown) < 40
            ax.plot(shown[:, 0] * scale, shown[:, col], drawstyle="steps-post", lw=1.3,
                    color=colors[s], label=s, alpha=0.9, marker="o" if few else None, ms=2.5)
        ax.set_title(title)
        ax.set_xlabel(f"simulated time ({unit})")
        ax.set_ylabel("pages")
        ax.set_ylim(bottom=0, top=max(1.0, max(float(r[:, col].max()) for r in series.values()) * 1.08))
        ax.set_xlim(0, t_end * scale * 1.04)
        alt.append(f"Largest sampled {title}: " + ", ".join(f"{s} {int(r[:, col].max())}"
                                                           for s, r in series.items()) + ".")
    if step:
        alt.append(f"One sample every {step * 1e-6:g} ms.")
    _legend(fig, colors, list(series), lines=True)
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
        mean = float((keys * frac).sum()) if total else 0.0
        ax.set_title(f"{s}\n{total} requests, mean {mean:.1f}", fontsize="medium")
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
    alt = [f"Line charts across {len(labels)} result files ({', '.join(labels)}) on workload "
           f"{workload}, one line per strategy: " + ", ".join(data) + " (medians over seeds)."]
    for ax, (panel, per) in zip(axes, data.items()):
        unit = dict(TREND_PANELS).get(panel, "")
        for s, ys in per.items():
            ax.plot(x, ys, marker="o", ms=4, lw=1.4, color=colors[s])
        ax.set_title(panel)
        ax.set_ylabel(unit)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize="x-small")
        ax.set_xlim(-0.3, len(labels) - 0.7)
        ax.set_ylim(bottom=0)
        last = {s: ys[-1] for s, ys in per.items() if not math.isnan(ys[-1])}
        if last:
            alt.append(f"{panel} in the last file: " + ", ".join(f"{s} {_fmt(v)}"
                                                                 for s, v in last.items()) + ".")
    _legend(fig, colors, names, lines=True)
    return fig, " ".join(alt)
