"""The service times' log and exp (refsim.det_log / det_exp, engine.c's twins).

Both are built from + - * only, table look-ups and exact steps, so that the C engine
(compiled with -ffp-contract=off) and Python compute the same double for every input.
Checked here: the tables and constants are the correctly rounded values they claim to be
(derived again with decimal arithmetic); both functions are within a few ulps of math.log /
math.exp over the ranges the engines use; C and Python agree bit for bit on many inputs,
through tests/c/detmath_driver.c (engine.c's static functions, built with the extension's
flags and again under the sanitizers); the draws have the distribution they should; the
engines agree on runs with exponential and lognormal service.
"""
from __future__ import annotations

import math
import shutil
import subprocess
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bench import sim
from bench.sim import _cengine, refsim
from conftest import assert_same_raw

ROOT = Path(__file__).resolve().parent.parent
TWO53 = 2.0 ** 53
ULP1 = 2.0 ** -52
SANITIZE = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-ffp-contract=off"]


# ------------------------------------------------------------------ the tables

def _round_bits(q: Fraction, bits: int) -> float:
    """q rounded to the nearest value of `bits` significant bits (ties to even)."""
    _, e = math.frexp(float(q))
    scale = Fraction(2) ** (bits - e)
    n = q * scale
    f = math.floor(n)
    if n - f > Fraction(1, 2) or (n - f == Fraction(1, 2) and f % 2):
        f += 1
    return float(f / scale)


def _dec(q: Fraction) -> Decimal:
    return Decimal(q.numerator) / Decimal(q.denominator)


def test_tables_and_constants_are_the_correctly_rounded_values():
    with localcontext() as ctx:
        ctx.prec = 50
        ln2 = Decimal(2).ln()
        for i, (c, t) in enumerate(refsim.LOG_TABLE, refsim.LOG_FIRST):
            if i in (refsim.LOG_N - 1, refsim.LOG_N):     # the steps either side of 1
                assert c == 1.0
            else:
                assert c == _round_bits(Fraction(2 * refsim.LOG_N, 2 * i + 1), 45), i
            assert Fraction(i, refsim.LOG_N) * Fraction(c) == (i / refsim.LOG_N) * c, i  # exact
            assert t == float(-_dec(Fraction(c)).ln()), i
        # the rows cover det_log's m in [0.703125, 2 * 0.703125)
        assert refsim.LOG_FIRST / refsim.LOG_N == 0.703125
        assert (refsim.LOG_FIRST + len(refsim.LOG_TABLE)) / refsim.LOG_N >= 2 * 0.703125
        assert refsim.EXP_TABLE == tuple(float((_dec(Fraction(j, refsim.EXP_N)) * ln2).exp())
                                         for j in range(refsim.EXP_N))
        assert refsim.LN2_HI == _round_bits(Fraction(ln2), 40)
        assert refsim.LN2_LO == float(ln2 - _dec(Fraction(refsim.LN2_HI)))
        assert refsim.EXP_LN2_HI == _round_bits(Fraction(ln2) / refsim.EXP_N, 36)
        assert refsim.EXP_LN2_LO == float(ln2 / refsim.EXP_N - _dec(Fraction(refsim.EXP_LN2_HI)))
        assert refsim.EXP_INV == float(refsim.EXP_N / ln2)
    assert tuple(getattr(refsim, f"LOG_C{k}") for k in range(2, 9)) == tuple(
        (-1) ** (k + 1) / k for k in range(2, 9))
    assert tuple(getattr(refsim, f"EXP_C{k}") for k in range(2, 7)) == tuple(
        1 / math.factorial(k) for k in range(2, 7))
    assert refsim.EXP_SHIFT == 1.5 * TWO53 / 2


# ------------------------------------------------------------------ accuracy

def _log_inputs(n: int, seed: int) -> np.ndarray:
    """What Server.uniform gives, plus values just under 1, powers of two down to 2**-53,
    every table row's two ends, a few values above 1 and subnormals."""
    rng = np.random.default_rng(seed)
    uniforms = (rng.integers(0, 1 << 53, n, dtype=np.int64) + 1) / TWO53
    near_one = 1.0 - rng.random(n // 4) * 2.0 ** -rng.integers(1, 53, n // 4).astype(float)
    spread = 2.0 ** -rng.uniform(0.0, 53.0, n // 4)
    rows = np.arange(refsim.LOG_FIRST, refsim.LOG_FIRST + len(refsim.LOG_TABLE)) / refsim.LOG_N
    ends = np.concatenate([rows, np.nextafter(rows + 1.0 / refsim.LOG_N, 0.0)])
    ends = np.concatenate([ends * 2.0 ** e for e in (-40, -3, -1, 0)])
    ends = ends[(ends > 0) & (ends <= 1.0)]
    extra = np.array([1.0, 2.0 ** -53, 0.5, np.nextafter(1.0, 0.0), 3.0, 1e300, 1e-310, 5e-324])
    return np.concatenate([uniforms, near_one, spread, ends, extra])


def _exp_inputs(n: int, seed: int) -> np.ndarray:
    """[-40, 40] (the lognormal draw's argument is within [-32, 16]), small values, and the
    points half-way between two multiples of ln 2 / EXP_N where the rounding of k turns."""
    rng = np.random.default_rng(seed)
    step = math.log(2.0) / refsim.EXP_N
    halves = (np.arange(-40 * refsim.EXP_N, 40 * refsim.EXP_N) + 0.5) * step
    halves = halves[np.abs(halves) <= 40.0]
    return np.concatenate([rng.uniform(-40.0, 40.0, n), rng.uniform(-1e-3, 1e-3, n // 8),
                           halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf),
                           [0.0, -0.0, 1e-300, -1e-300, 700.0, -700.0]])


def test_det_log_is_within_a_few_ulps_of_math_log():
    worst = 0.0
    for x in _log_inputs(100_000, 1).tolist():
        want = math.log(x)
        got = refsim.det_log(x)
        if want == 0.0:
            assert got == 0.0
            continue
        worst = max(worst, abs(got - want) / abs(want))
    assert worst <= 2 * ULP1, worst          # a relative error of 1e-14 is the requirement


def test_det_exp_is_within_a_few_ulps_of_math_exp():
    worst = 0.0
    for x in _exp_inputs(100_000, 2).tolist():
        want = math.exp(x)
        worst = max(worst, abs(refsim.det_exp(x) - want) / want)
    assert refsim.det_exp(0.0) == 1.0
    assert worst <= 2 * ULP1, worst


# ------------------------------------------------------------------ C against Python

def _driver(tmp_path: Path, flags: list[str]) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "detmath_driver"
    # the driver includes engine.c; the rest of the C core (strategies, page space) is linked
    others = sorted(str(p) for p in (ROOT / "csrc").glob("*.c") if p.name != "engine.c")
    build = subprocess.run([cc, *flags, f"-I{ROOT / 'csrc'}", str(ROOT / "tests" / "c" / "detmath_driver.c"),
                            *others, "-lm", "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert "warning" not in build.stderr, build.stderr
    return exe


def _run(exe: Path, fn: str, xs: np.ndarray) -> np.ndarray:
    run = subprocess.run([str(exe), fn], input=np.ascontiguousarray(xs, dtype=np.float64).tobytes(),
                         capture_output=True)
    assert run.returncode == 0 and not run.stderr, run.stderr.decode()
    return np.frombuffer(run.stdout, dtype=np.float64)


def _extension_flags() -> list[str]:
    from bench.sim._build_sim import CFLAGS
    assert "-ffp-contract=off" in CFLAGS
    return CFLAGS


@pytest.mark.parametrize("flags", ["extension", "sanitizers"])
def test_c_and_python_agree_bit_for_bit(tmp_path, flags):
    exe = _driver(tmp_path, _extension_flags() if flags == "extension" else SANITIZE)
    n = 200_000 if flags == "extension" else 20_000
    for fn, xs, ref in (("log", _log_inputs(n, 3), refsim.det_log),
                        ("exp", _exp_inputs(n, 4), refsim.det_exp)):
        c = _run(exe, fn, xs)
        py = np.array([ref(x) for x in xs.tolist()])
        assert len(c) == len(xs)
        differ = np.flatnonzero(c.view(np.int64) != py.view(np.int64))
        assert differ.size == 0, (f"det_{fn}: {differ.size} of {len(xs)} differ, first at "
                                  f"{xs[differ[0]]!r}: C {c[differ[0]]!r}, Python {py[differ[0]]!r}")


# ------------------------------------------------------------------ the draws

def _server(dist: int, sigma: float = 0.5, seed: int = 7) -> refsim.Server:
    return refsim.Server({"server_threads": 1, "server_dist": dist, "server_sigma": sigma,
                          "stall_windows": ()}, seed)


def test_fixed_service_takes_no_draw():
    s = _server(0)
    state = s.rng
    assert [s.service(12345) for _ in range(3)] == [12345] * 3 and s.rng == state


def test_exponential_and_lognormal_draws_have_their_distributions():
    mean, n = 1_000_000, 40_000
    s = _server(1)
    exp = np.array([s.service(mean) for _ in range(n)], dtype=float)
    assert abs(exp.mean() / mean - 1.0) < 0.03            # mean of Exp(mean); sd of the estimate 0.5%
    assert abs(np.median(exp) / (mean * math.log(2.0)) - 1.0) < 0.03
    sigma = 0.8
    s = _server(2, sigma)
    logn = np.log(np.array([s.service(mean) for _ in range(n)], dtype=float) / mean)
    assert abs(logn.mean() + sigma * sigma / 2) < 0.02    # ln v ~ N(-sigma**2/2, sigma**2)
    assert abs(logn.std() / sigma - 1.0) < 0.03


@pytest.mark.parametrize("dist,sigma", [("exponential", 0.5), ("lognormal", 0.5), ("lognormal", 4.0)])
@pytest.mark.parametrize("workload,params", [
    ("dio-redirty", {}),
    ("rand-write", {"file_size": 16 << 20, "writes": 3000, "server_threads": 3}),
])
def test_engines_agree_on_drawn_service_times(dist, sigma, workload, params):
    for seed in (0, 5):
        wl, cfg = sim.prepare("merge-in-queue", workload, seed, server_dist=dist, server_sigma=sigma,
                              **params)
        assert_same_raw(refsim.simulate(cfg, wl.ops, wl.file_sizes, seed),
                        _cengine.simulate(cfg, wl.ops, wl.file_sizes, seed), f"{workload} seed {seed}")
