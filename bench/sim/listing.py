"""What ``python -m bench list`` prints: every strategy, workload and parameter with its default."""
from __future__ import annotations

import strategies as strats

from bench.sim import params, workload


def render_list() -> str:
    lines = ["strategies:"]
    for s in strats.STRATEGIES.values():
        lines.append(f"  {s.name:20s} {s.summary}  [{s.kernels}]")
        for k, (d, doc) in s.params.items():
            lines.append(f"      {k}={d}  {doc}")
    lines.append("workloads:")
    for name in workload.workload_names():
        lines.append(f"  {name}")
        for k, spec in workload.workload_params(name).items():
            lines.append(f"      {k}={spec[0]}  {spec[1]}")
    lines.append("model, cost and server parameters:")
    for p in params.PARAMS:
        lines.append(f"  {p.name}={p.default}  ({p.group}) {p.doc}")
    for k, (d, lo, hi, g, doc) in params.FLOAT_PARAMS.items():
        lines.append(f"  {k}={d}  ({g}) {doc}")
    return "\n".join(lines) + "\n"
