"""Sweeps of strategies x workloads x seeds, and the text tables that show them."""
from __future__ import annotations

from typing import Iterable

from . import sim

DEFAULT_SUITE = ["seq-write", "rand-write", "rewrite-hot", "mmap-rewrite", "dio-redirty",
                 "fsync-heavy", "mem-pressure", "stuck-server", "multi-writer"]

# (metric, header, formatter)
HEADLINE = (
    ("app_throughput_bps", "app MB/s", lambda v: f"{v / 1e6:.1f}"),
    ("wb_throughput_bps", "wb MB/s", lambda v: f"{v / 1e6:.1f}"),
    ("write_latency_ns", "write p99 us", lambda v: f"{v['p99'] / 1e3:.1f}"),
    ("fsync_latency_ns", "fsync p99 us", lambda v: f"{v['p99'] / 1e3:.1f}"),
    ("temp_pages_peak", "temp peak", str),
    ("pinned_pages_peak", "pinned peak", str),
    ("requests", "requests", str),
    ("max_copies_in_flight", "max copies", str),
    ("out_of_order", "out of order", str),
    ("lost_updates", "lost", str),
    ("hangs", "hangs", str),
)


def sweep(strategies: list[str], workloads: list[str], seeds: Iterable[int], engine: str,
          params: dict) -> dict[str, list]:
    """Run every combination; {workload: [Run, ...]} in strategy then seed order."""
    out: dict[str, list] = {}
    for w in workloads:
        out[w] = [sim.run(s, w, seed=seed, engine=engine, **params)
                  for s in strategies for seed in seeds]
    return out


def _median(values: list) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def render(table: dict[str, list]) -> str:
    """One table per workload: each strategy's median over seeds of the headline metrics."""
    lines = []
    for workload, runs in table.items():
        lines.append(f"{workload} ({len({r.seed for r in runs})} seed(s), engine {runs[0].engine})")
        header = ["strategy"] + [h for _, h, _ in HEADLINE]
        rows = [header]
        for strategy in dict.fromkeys(r.strategy for r in runs):
            mine = [r for r in runs if r.strategy == strategy]
            row = [strategy]
            for name, _, fmt in HEADLINE:
                vals = [r.metrics[name] for r in mine]
                if isinstance(vals[0], dict):
                    p99 = _median([v["p99"] for v in vals])
                    row.append(fmt({"p99": p99}))
                else:
                    row.append(fmt(type(vals[0])(_median(vals))))
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        lines.append("")
    return "\n".join(lines)


def render_list() -> str:
    import strategies as strats

    from . import params, workloads
    lines = ["strategies:"]
    for s in strats.STRATEGIES.values():
        lines.append(f"  {s.name:20s} {s.summary}  [{s.kernels}]")
        for k, (d, doc) in s.params.items():
            lines.append(f"      {k}={d}  {doc}")
    lines.append("workloads:")
    for name in workloads.workload_names():
        lines.append(f"  {name}")
        for k, spec in workloads.workload_params(name).items():
            default, doc = spec[0], spec[1]
            lines.append(f"      {k}={default}  {doc}")
    lines.append("model, cost and server parameters:")
    for p in params.PARAMS:
        lines.append(f"  {p.name}={p.default}  ({p.group}) {p.doc}")
    for k, (d, lo, hi, g, doc) in params.FLOAT_PARAMS.items():
        lines.append(f"  {k}={d}  ({g}) {doc}")
    return "\n".join(lines) + "\n"
