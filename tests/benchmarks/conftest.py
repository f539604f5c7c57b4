"""Benchmarks run only when asked: `python -m pytest tests/benchmarks --benchmark-only`.

At the end they print the ratios the simulator issue asks for, from medians
measured side by side in the same session.
"""
import pytest

MEDIANS: dict[str, float] = {}


def pytest_collection_modifyitems(config, items):
    if config.getoption("benchmark_only", False):
        return
    skip = pytest.mark.skip(reason="benchmark: run with --benchmark-only")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if not MEDIANS:
        return
    tr = terminalreporter
    tr.section("simulator speed ratios (medians, same session)")
    bare = MEDIANS.get("bare")
    for key in sorted(k for k in MEDIANS if k.startswith("c:")):
        strategy = key[2:]
        c = MEDIANS[key]
        line = f"{strategy:20s} C {c * 1e3:9.1f} ms"
        if bare:
            line += f"   C / bare loop = {c / bare:6.2f}x"
        py = MEDIANS.get("python:" + strategy)
        if py:
            line += f"   Python / C = {py / c:7.1f}x"
        tr.write_line(line)
    if bare:
        tr.write_line(f"{'bare loop':20s}   {bare * 1e3:9.2f} ms")
    sizes = sorted((k for k in MEDIANS if k.startswith("size:")), key=MEDIANS.get)
    for key in sizes:
        tr.write_line(f"C engine, 4,096 page writes, {key[len('size:c-engine-'):]:6s} file "
                      f"{MEDIANS[key] * 1e3:9.2f} ms")
    if "floor:engine" in MEDIANS and "floor:heap" in MEDIANS:
        e, h = MEDIANS["floor:engine"], MEDIANS["floor:heap"]
        tr.write_line(f"1 GiB rand-write: engine {e * 1e3:.1f} ms, its events on the heap alone "
                      f"{h * 1e3:.1f} ms, engine / floor = {e / h:.2f}x (target 1.5x)")
        n = MEDIANS.get("floor:events")
        if n:
            tr.write_line(f"  {n:,.0f} events: engine {n / e / 1e6:.1f} M events/s, the queue alone "
                          f"{n / h / 1e6:.1f} M events/s")
    for key in sorted(k for k in MEDIANS if k.startswith("sweep:")):
        tr.write_line(f"sweep of 400 runs, {key[len('sweep:'):]:16s} "
                      f"{MEDIANS[key]:7.1f} runs/s per core")
