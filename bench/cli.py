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
