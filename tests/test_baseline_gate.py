"""The project's own performance gate: a fresh run of the standard suite against
results/baseline.json.  Simulated numbers are deterministic, so any drift is a
change of the model or the engine, and a regression fails CI.  After an intended
change, record a new baseline (README, "The regression gate")."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baseline.json"


def test_standard_suite_does_not_regress_against_the_baseline(tmp_path):
    fresh = tmp_path / "fresh.json"
    run = subprocess.run([sys.executable, "-m", "bench", "compare", "--quiet", "--no-mount", "--out", str(fresh)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    gate = subprocess.run([sys.executable, "-m", "bench", "gate", str(BASELINE), str(fresh)],
                          capture_output=True, text=True, cwd=ROOT)
    print(gate.stdout)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert gate.stdout.startswith("OK: none of ")
