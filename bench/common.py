"""Shared pieces of the benchmarks: a result row, a timer, and the table/BENCHMARKS.md writers."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@dataclass
class Row:
    """One measured number. ``target`` is the issue's goal; ``higher_is_better`` says which side passes."""

    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def status(self) -> str:
        if self.target is None:
            return ""
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "ok" if ok else "MISS"

    def cells(self) -> list[str]:
        cmp = ">=" if self.higher_is_better else "<="
        target = "" if self.target is None else f"{cmp} {_number(self.target)}"
        return [self.name, _number(self.value), self.unit, target, self.status, self.note]


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def rate(fn: Callable[[], int], min_seconds: float = 1.0, warmup: int = 1) -> float:
    """Items per second of ``fn`` (which returns how many items it processed), best of repeated runs."""
    for _ in range(warmup):
        fn()
    best = 0.0
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        n = fn()
        best = max(best, n / max(time.perf_counter() - t, 1e-9))
        if time.perf_counter() - start > min_seconds:
            return best


HEADER = ["benchmark", "value", "unit", "target", "status", "note"]


def format_table(rows: list[Row]) -> str:
    cells = [HEADER] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))) for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def machine_line() -> str:
    import os

    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load average {load} "
            f"(other jobs share these cores: with load above the core count, torch's threads stall and small-op "
            f"rows drop many-fold), Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")
