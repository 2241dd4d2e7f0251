"""The named stages of a job, and the clock that times them and turns them into progress fractions.

Each stage has a weight: its usual share of a job's wall time on this 2-core CPU (measured with ``python -m
bench.run app``: a 10 s 720p clip with optimisation spends about 45 % in pose, 30 % optimising, 15 % rendering).
A job only counts the stages it runs, so a motion-file job without optimisation moves its bar as quickly
through retargeting as a video job moves through pose.

Cancelling: every stage reports progress often (a pose frame batch, an optimiser step, a rendered chunk), so a
job is stopped by a progress callback that raises :class:`JobCancelled` once its :class:`CancelToken` is set
(:meth:`CancelToken.guard`). The exception unwinds through the stages like any error: nothing half-written is
left in the output folder.
"""
from __future__ import annotations

import threading
import time
from enum import Enum
from typing import Callable, Iterable

__all__ = ["Stage", "StageClock", "Progress", "JobCancelled", "CancelToken"]

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], what is happening)``."""


class JobCancelled(Exception):
    """The job was stopped on request (a Cancel button, a page that went away); not an error of the input."""


class CancelToken:
    """A request to stop one job, set from any thread (:meth:`cancel`) and checked in the job's own thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = self.reason or reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` when the job was asked to stop."""
        if self._event.is_set():
            raise JobCancelled(self.reason)

    def guard(self, progress: Progress | None = None) -> Progress:
        """``progress`` (or none) behind a check: pass the result to :func:`jobs.run_job` to make it cancellable."""

        def report(fraction: float, what: str) -> None:
            self.check()
            if progress is not None:
                progress(fraction, what)

        return report


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
        self._t = self._t0 = time.perf_counter()
        self._last = (0.0, "starting")

    def _report(self, fraction: float, what: str) -> None:
        self._last = (fraction, what)
        self.progress(fraction, what)

    def check(self) -> None:
        """Send the last report again. For work on other threads (the overlay video), which has no fraction of
        its own to report: a cancelled job's callback raises here as it does on any report."""
        self.progress(*self._last)

    def start(self, stage: Stage) -> None:
        """Close the stage running now (its time is recorded) and begin ``stage``."""
        self.stop()
        self._current, self._t = stage, time.perf_counter()
        self._report(self._start.get(stage, 0.0), stage.label)

    def stop(self) -> None:
        if self._current is not None:
            label = self._current.label
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - self._t
            self._current = None

    def within(self, stage: Stage) -> Progress:
        """A callback for inside ``stage``: its own [0, 1] maps onto the stage's part of the bar."""
        start, share = self._start.get(stage, 0.0), self._share.get(stage, 0.0)

        def report(fraction: float, what: str) -> None:
            self._report(start + share * min(max(fraction, 0.0), 1.0), what or stage.label)

        return report

    def elapsed(self) -> float:
        """Seconds since the clock was made (the job's start); safe from any thread."""
        return time.perf_counter() - self._t0

    def record(self, name: str, seconds: float) -> None:
        """Add time measured elsewhere (a worker thread's wait, a sub-stage) under ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def done(self) -> None:
        self.stop()
        try:
            self._report(1.0, "done")
        except JobCancelled:
            pass  # too late to stop: every file is written, so the result stands (the caller knows its token)
