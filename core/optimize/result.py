"""What stage II returns: the refined motion, its metrics before and after, and the semantic distance."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metrics import ClipMetrics
from ..motion import Motion

__all__ = ["OptimizeResult", "SemanticDistance"]


@dataclass(frozen=True)
class SemanticDistance:
    """The semantic supervisor's distance ||E_source − E_character||² per frame (the loss's λ_sem term).

    frames: ``(N,)`` frame indices (all frames for the skeletal supervisor, an even spread of at most 8 for
    image supervisors, whose embeddings cost a VLM pass each). before, after: ``(N,)`` distances.
    """

    frames: np.ndarray
    before: np.ndarray
    after: np.ndarray


@dataclass
class OptimizeResult:
    """What :func:`~core.optimize.optimize_motion` returns.

    motion: the refined motion on the character's skeleton. before / after: metrics of the start and of the
    result (None when not measured). supervisor: plain words on the semantic supervisor used. iterations: Adam
    steps taken. seconds: wall time of the optimisation (metrics excluded). history: total loss per step.
    notes: anything the user should know (a term that was skipped and why).
    semantic: the supervisor's distance between source and character, per frame, before and after.
    """

    motion: Motion
    before: ClipMetrics | None
    after: ClipMetrics | None
    supervisor: str
    iterations: int
    seconds: float
    history: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    semantic: SemanticDistance | None = None
