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

__all__ = ["BeforeAfter", "JobReport", "JobResult", "METRIC_LABELS", "per_frame_table", "plain_summary"]

# Metric key → how the page and the CLI name it (units in the label where there are any).
METRIC_LABELS = {"pen_percent": "Penetration (Pen%)", "semantic_distance": "Semantic distance",
                 "jdm_error": "JDM error", "contacts_kept": "Hand contacts kept", "jitter": "Jitter (m/s²)",
                 "foot_skate": "Foot skate (m/s)", "scl": "Semantics consistency loss (SCL)",
                 "fid": "Semantic FID", "itm": "Image-text matching (ITM)"}


# A frame counts as "an arm passes through the body" from this Pen% on (arm vertices inside the torso/head, as a
# share of all vertices): below it an arm only grazes the surface, which no one sees at preview size.
PASS_THROUGH_PERCENT = 0.1


@dataclass(frozen=True)
class BeforeAfter:
    """A metric on the retargeted motion (before stage II) and on the final one (None without stage II)."""

    before: float
    after: float | None = None


@dataclass
class JobReport:
    """What happened in one job, for the page, the CLI and the benches.

    frames, fps: the clip as used (after trimming). source: "video" or "motion file". character, height: who
    plays it. retargeter: which retargeter ran and why; licence: the licence its checkpoint gives what it makes
    (None for one that learned nothing, such as Copy). supervisor: stage II's semantic supervisor (None without
    stage II). semantic_source: where stage II's source embeddings came from ("video frames ...", "renders of the
    source ...", "the source's joint positions ..."). semantic_measured_on: on which frames the VLM's metrics
    (semantic distance, SCL, FID) were measured, and why ITM is missing where it is. metrics: key (see :data:`METRIC_LABELS`) → before/after. per_frame: plot name ("pen_percent",
    "semantic_distance") → series ("before", "after") → ``(frames (N,), values (N,))``. warnings: what the user
    should know (several people, variable frame rate, notes of stage II). measured_on: on which frames the mesh
    metrics (Pen%, contacts) were measured, when not on all, with Pen%'s sampling error. seconds: wall time per
    stage label.
    files: kind ("bvh", "fbx", "glb", "motion", "preview", "overlay") → the file written. ready: the same kinds →
    seconds from the job's start until that file was complete (the FBX/GLB are written as soon as the motion is
    final, while the previews render; every file is handed over together when the job ends, all or nothing).
    """

    frames: int
    fps: float
    source: str
    character: str | None = None
    height: float | None = None
    retargeter: str | None = None
    licence: str | None = None
    supervisor: str | None = None
    semantic_source: str | None = None
    semantic_measured_on: str | None = None
    metrics: dict[str, BeforeAfter] = field(default_factory=dict)
    per_frame: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    measured_on: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)

    def per_frame_table(self, plot: str):
        """A long-format table (frame, value, series) of one plot, or None when there is nothing to plot."""
        return per_frame_table(self.per_frame.get(plot))


def per_frame_table(series: dict | None):
    """One per-frame plot (series name → (frames, values)) as a long-format pandas table (frame, value, series),
    or None when there is nothing to plot."""
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


def _frames_phrase(count: int, measured: int, total: int) -> str:
    """``count`` of ``measured`` evenly spaced frames, said for the whole clip of ``total`` frames (the report
    measures at most a few hundred frames of a long clip)."""
    about = "" if measured >= total else "about "
    n = count if measured >= total else max(1, round(count * total / max(measured, 1)))
    return f"{about}{n} frame" + ("s" if n != 1 else "")


def plain_summary(report: JobReport) -> list[str]:
    """What the job did, in a few plain sentences for someone who knows animation but not the metrics (the
    page leads with them; the CLI prints them before the numbers)."""
    r = report
    seconds = r.frames / r.fps if r.fps else 0.0
    lines = []
    if r.character is None:
        lines.append(f"The person's motion: {r.frames} frames ({seconds:.1f} s at {r.fps:g} fps).")
        return lines
    lines.append(f"{r.character} plays {r.frames} frames ({seconds:.1f} s at {r.fps:g} fps).")
    if r.supervisor is None:
        lines.append("Semantic optimisation was off: arms may pass through the body where the source's did not.")
        return lines
    pen = r.per_frame.get("pen_percent")
    if pen:
        (frames, before), (_, after) = pen["before"], pen["after"]
        inside_before, inside_after = before >= PASS_THROUGH_PERCENT, after >= PASS_THROUGH_PERCENT
        fixed = int((inside_before & ~inside_after).sum())
        left = int(inside_after.sum())
        n = len(frames)
        if fixed:
            lines.append(f"Arms no longer pass through the body in {_frames_phrase(fixed, n, r.frames)}.")
        if left:
            lines.append(f"They still do in {_frames_phrase(left, n, r.frames)}.")
        elif not fixed:
            lines.append("Arms did not pass through the body, before or after optimisation.")
        else:
            lines.append("No frame has an arm inside the body any more.")
    contacts = r.metrics.get("contacts_kept")
    if contacts is not None and contacts.after is not None and contacts.after == contacts.after:  # NaN: none
        lines.append(f"Where the source's hands touch (each other or the body), the result's do in "
                     f"{100 * contacts.after:.0f} % of those frames "
                     f"(plain retargeting: {100 * contacts.before:.0f} %).")
    jdm = r.metrics.get("jdm_error")
    if jdm is not None and jdm.after is not None:
        if jdm.after <= jdm.before * 1.01:
            lines.append("The pose stays at least as close to the source's as plain retargeting.")
        else:
            lines.append(f"To clear the body, the pose moved {100 * (jdm.after / jdm.before - 1):.0f} % further from "
                         "the source's than plain retargeting.")
    jitter = r.metrics.get("jitter")
    if jitter is not None and jitter.after is not None and jitter.after > jitter.before * 1.05:
        lines.append(f"The motion is a little more jittery than before optimisation "
                     f"(+{100 * (jitter.after / jitter.before - 1):.0f} %).")
    return lines
