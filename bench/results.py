"""Result records.  A `Run` is one strategy on one workload with one seed."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

SERIES_FIELDS = ("time_ns", "dirty", "writeback", "temp", "cache", "anon")


@dataclass(frozen=True, slots=True)
class Run:
    strategy: str
    workload: str
    params: Mapping[str, Any]      # workload and model parameters given by the caller
    seed: int
    engine: str                    # "c", "python" or a mount's kernel name
    metrics: Mapping[str, Any]     # names of model.md's "Result names" table, and more
    series: np.ndarray = field(default_factory=lambda: np.zeros((0, len(SERIES_FIELDS)), np.int64),
                               compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.strategy or not self.workload:
            raise ValueError("Run: strategy and workload must be named")
        if self.seed < 0:
            raise ValueError(f"Run: seed must be >= 0, got {self.seed}")
