"""What a job tells its user: a typed report, and the result that carries it with the motions and files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.character import Character
from core.motion import Motion

if TYPE_CHECKING:
    from core.optimize import OptimizeResult
    from pose.pipeline import PoseResult

__all__ = ["BeforeAfter", "JobReport", "JobResult", "METRIC_LABELS"]

# Metric key → how the page and the CLI name it (units in the label where there are any).
METRIC_LABELS = {"pen_percent": "Penetration (Pen%)", "semantic_distance": "Semantic distance",
                 "jdm_error": "JDM error", "contacts_kept": "Hand contacts kept", "jitter": "Jitter (m/s²)",
                 "foot_skate": "Foot skate (m/s)"}


@dataclass(frozen=True)
class BeforeAfter:
    """A metric on the retargeted motion (before stage II) and on the final one (None without stage II)."""

    before: float
    after: float | None = None


@dataclass
class JobReport:
    """What happened in one job, for the page, the CLI and the benches.

    frames, fps: the clip as used (after trimming). source: "video" or "motion file". character, height: who
    plays it. retargeter: which retargeter ran and why. supervisor: stage II's semantic supervisor (None without
    stage II). metrics: key (see :data:`METRIC_LABELS`) → before/after. per_frame: plot name ("pen_percent",
    "semantic_distance") → series ("before", "after") → ``(frames (N,), values (N,))``. warnings: what the user
    should know (several people, variable frame rate, notes of stage II). measured_on: on which frames the mesh
    metrics (Pen%, contacts) were measured, when not on all, with Pen%'s sampling error. seconds: wall time per
    stage label.
    files: kind ("bvh", "fbx", "glb", "motion", "preview", "overlay") → the file written.
    """

    frames: int
    fps: float
    source: str
    character: str | None = None
    height: float | None = None
    retargeter: str | None = None
    supervisor: str | None = None
    metrics: dict[str, BeforeAfter] = field(default_factory=dict)
    per_frame: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    measured_on: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def per_frame_table(self, plot: str):
        """A long-format table (frame, value, series) of one plot, or None when there is nothing to plot."""
        series = self.per_frame.get(plot)
        if not series:
            return None
        import pandas as pd

        return pd.concat([pd.DataFrame({"frame": frames, "value": values, "series": name})
                          for name, (frames, values) in series.items()], ignore_index=True)


@dataclass
class JobResult:
    """The report plus what the job computed: the source motion, the retargeted and final motions on the
    character, the character, the pose stage's result (video input) and stage II's (when it ran)."""

    report: JobReport
    source: Motion
    retargeted: Motion | None = None
    final: Motion | None = None
    character: Character | None = None
    pose: PoseResult | None = None
    optimization: OptimizeResult | None = None
