"""Helpers shared by the verbs of ``python -m bench``: the argument parser class and the
checks of seeds, KEY=VALUE pairs and comma-separated names.  It imports nothing of bench, so
every verb's module can use it without an import running back up to the CLI."""
from __future__ import annotations

import argparse


MAX_SEEDS = 1000        # more seeds than this is a typo, not a sweep


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``ERROR: ...`` line (exit 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"ERROR: {self.prog}: {message} (see {self.prog} --help)\n")


def check_seeds(n: int, what: str = "--seeds") -> int:
    if not 1 <= n <= MAX_SEEDS:
        raise ValueError(f"{what}: must be in 1..{MAX_SEEDS}, got {n}")
    return n


def parse_pairs(pairs: list[str], what: str = "--param") -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{what}: expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = int(value, 0)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def pick_names(text: str | None, known: list[str], what: str) -> list[str]:
    if not text:
        return known
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise ValueError(f"{what}: no names in {text!r}; allowed: {', '.join(known)}")
    for n in names:
        if n not in known:
            raise ValueError(f"{what}: unknown {n!r}; allowed: {', '.join(known)}")
    return names


def add_machine_option(parser: argparse.ArgumentParser) -> None:
    """--machine NAME|PATH: the machine profile a simulation models (bench.sim.machine)."""
    parser.add_argument("--machine", metavar="NAME|PATH",
                        help="machine profile to simulate: a name (python -m bench list shows "
                             "them), a TOML/JSON file, or 'none' for the parameter table "
                             "(default: $FWB_MACHINE, else ci-2cpu-24g, the machine the costs "
                             "were measured on)")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``sweep SPEC.toml`` (bench.sim.sweepspec has the spec's format)."""
    parser.add_argument("spec", metavar="SPEC.toml",
                        help="the sweep: product, zipped and random axes over strategies, "
                             "workloads, parameters, machine profiles and seeds "
                             "(examples/sweep.toml)")
    parser.add_argument("--out", metavar="DIR",
                        help="the result store, a directory of Parquet files; runs it holds "
                             "are not run again (default: results/sweeps/SPEC beside "
                             "compare's results/latest.json)")
    parser.add_argument("--executor", choices=("local", "dask"),
                        help="local: a process pool on this machine (the default); dask: a "
                             "Dask LocalCluster, or the cluster of --scheduler")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="the scheduler of an existing Dask cluster (implies --executor "
                             "dask)")
    parser.add_argument("--jobs", type=int,
                        help="worker processes, local or in the LocalCluster (default: all "
                             "cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
