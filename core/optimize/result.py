"""What stage II returns: the refined motion, its metrics before and after, and the semantic distance."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metrics import ClipMetrics
from ..motion import Motion

__all__ = ["OptimizeResult", "SemanticDistance", "SemanticMetrics"]


@dataclass(frozen=True)
class SemanticDistance:
    """The semantic supervisor's distance ||E_source − E_character||² per frame (the loss's λ_sem term).

    frames: ``(N,)`` frame indices (all frames for the skeletal supervisor, an even spread of at most
    ``OptimizeConfig.metric_frames`` for image supervisors, whose embeddings cost a VLM pass each per view).
    before, after: ``(N,)`` distances.
    """

    frames: np.ndarray
    before: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class SemanticMetrics:
    """The paper's semantic metrics (§4.1) with a vision-language supervisor, on the start ("before") and on the
    result ("after"), from the embeddings of :class:`SemanticDistance`'s frames.

    scl: semantics consistency loss (Eq. 10, "calculated using the mean square error"): the squared difference
    of source and character embeddings, averaged over embedding dimensions, frames and views.
    fid: Fréchet distance (Eq. 15) between the source's and the character's embeddings, frames and views pooled
    (:func:`core.metrics.frechet_distance`; with tens of samples it compares the clip's spread, not a
    population's). itm: image-text matching (Eq. 14) of the character's renders with the source's guiding
    answers, or None; itm_missing: why there is none. samples: embeddings on each side.
    """

    scl: tuple[float, float]
    fid: tuple[float, float]
    itm: tuple[float, float] | None
    itm_missing: str | None
    samples: int


@dataclass
class OptimizeResult:
    """What :func:`~core.optimize.optimize_motion` returns.

    motion: the refined motion on the character's skeleton. before / after: metrics of the start and of the
    result (None when not measured). supervisor: plain words on the semantic supervisor used. iterations: Adam
    steps taken. seconds: wall time of the optimisation (metrics excluded). history: total loss per step.
    notes: anything the user should know (a term that was skipped and why).
    semantic: the supervisor's distance between source and character, per frame, before and after.
    semantic_source: where the source's embeddings came from ("video frames ...", "renders of the source ...",
    "the source's joint positions" for the skeletal supervisor).
    semantic_metrics: SCL, FID and ITM before and after (image supervisors only).
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
    semantic_source: str = ""
    semantic_metrics: SemanticMetrics | None = None
