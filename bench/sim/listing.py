"""What ``python -m bench list`` prints: every strategy, workload and parameter with its default,
the machine profiles, and each parameter's value on the active machine."""
from __future__ import annotations

import strategies as strats

from bench.sim import machine, params, workload


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
    active = machine.active()
    lines.append("machine profiles (--machine NAME|PATH, or FWB_MACHINE; 'none': the table):")
    for name, where in machine.known():
        mark = "*" if active is not None and active.name == name else " "
        lines.append(f"  {mark} {name}  ({where})")
    lines.append(f"active machine: {machine.label(active)}"
                 + (f", {active.source}: {active.description}" if active is not None else ""))
    values = params.defaults()
    set_by = set(active.values) if active is not None else set()
    lines.append("model, cost and server parameters, with the active machine's value (the "
                 "table's default in brackets where the machine sets it):")
    for p in params.PARAMS:
        v = values[p.name]
        note = f" [table {p.default}]" if p.name in set_by else ""
        lines.append(f"  {p.name}={v}{note}  ({p.group}) {p.doc}")
    for k, (d, lo, hi, g, doc) in params.FLOAT_PARAMS.items():
        note = f" [table {d}]" if k in set_by else ""
        lines.append(f"  {k}={values[k]}{note}  ({g}) {doc}")
    return "\n".join(lines) + "\n"
