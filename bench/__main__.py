"""Command line: ``python -m bench VERB ...``.

One sub-parser per verb, each dispatched to a short ``cmd_*`` function that
imports its module lazily (``import bench`` stays light).  Bad input becomes
one ``ERROR: ...`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import sys


def _params(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param: expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = int(value, 0)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def _names(text: str | None, known: list[str], what: str) -> list[str]:
    if not text:
        return known
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in known:
            raise ValueError(f"{what}: unknown {n!r}; allowed: {', '.join(known)}")
    return names


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare, sim
    strategies = _names(args.strategies, sim.strategies(), "--strategies")
    workloads = _names(args.workloads, compare.DEFAULT_SUITE, "--workloads") if args.workloads \
        else compare.DEFAULT_SUITE
    if args.workloads:
        workloads = _names(args.workloads, sim.workloads(), "--workloads")
    if args.seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {args.seeds}")
    table = compare.sweep(strategies, workloads, range(args.seeds), args.engine, _params(args.param))
    sys.stdout.write(compare.render(table))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from . import compare
    sys.stdout.write(compare.render_list())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="What each FUSE writeback strategy costs.")
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("compare", help="run strategies over workloads and print a table per workload")
    p.add_argument("--strategies", help="comma-separated strategy names (default: all)")
    p.add_argument("--workloads", help="comma-separated workload names (default: the standard suite)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per (strategy, workload) (default 1)")
    p.add_argument("--engine", choices=("c", "python"), default="c")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a model, server, strategy or workload parameter (repeatable)")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("list", help="list strategies, workloads and parameters with defaults")
    p.set_defaults(func=cmd_list)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
