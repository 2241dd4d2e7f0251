"""The named stages of a job, and the clock that times them and turns them into progress fractions.

Each stage has a weight: its usual share of a job's wall time on this 2-core CPU (measured with ``python -m
bench.run app``: a 10 s 720p clip with optimisation spends about 45 % in pose, 30 % optimising, 15 % rendering).
A job only counts the stages it runs, so a motion-file job without optimisation moves its bar as quickly
through retargeting as a video job moves through pose.
"""
from __future__ import annotations

import time
from enum import Enum
from typing import Callable, Iterable

__all__ = ["Stage", "StageClock", "Progress"]

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], what is happening)``."""


class Stage(Enum):
    """A job's stages in the order they run; the value is (label, weight)."""

    READ = ("reading input", 0.03)
    POSE = ("estimating pose", 0.45)
    RETARGET = ("retargeting", 0.04)
    OPTIMISE = ("optimising", 0.30)
    RENDER = ("rendering", 0.13)
    EXPORT = ("exporting", 0.05)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def weight(self) -> float:
        return self.value[1]


def _no_progress(fraction: float, what: str) -> None:
    pass


class StageClock:
    """Times the stages of one job and reports progress as fractions of the whole.

    Args:
        stages: the stages this job runs (their weights are normalised over these alone).
        progress: the callback, or None.
    """

    def __init__(self, stages: Iterable[Stage], progress: Progress | None = None) -> None:
        self.stages = [s for s in Stage if s in set(stages)]
        total = sum(s.weight for s in self.stages) or 1.0
        self._start: dict[Stage, float] = {}
        acc = 0.0
        for s in self.stages:
            self._start[s] = acc / total
            acc += s.weight
        self._share = {s: s.weight / total for s in self.stages}
        self.progress = progress or _no_progress
        self.seconds: dict[str, float] = {}
        self._current: Stage | None = None
        self._t = time.perf_counter()

    def start(self, stage: Stage) -> None:
        """Close the stage running now (its time is recorded) and begin ``stage``."""
        self.stop()
        self._current, self._t = stage, time.perf_counter()
        self.progress(self._start.get(stage, 0.0), stage.label)

    def stop(self) -> None:
        if self._current is not None:
            label = self._current.label
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - self._t
            self._current = None

    def within(self, stage: Stage) -> Progress:
        """A callback for inside ``stage``: its own [0, 1] maps onto the stage's part of the bar."""
        start, share = self._start.get(stage, 0.0), self._share.get(stage, 0.0)

        def report(fraction: float, what: str) -> None:
            self.progress(start + share * min(max(fraction, 0.0), 1.0), what or stage.label)

        return report

    def record(self, name: str, seconds: float) -> None:
        """Add time measured elsewhere (a worker thread's wait, a sub-stage) under ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def done(self) -> None:
        self.stop()
        self.progress(1.0, "done")
