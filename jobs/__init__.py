"""The job layer: the only place that knows the whole flow (input → pose → retarget → optimise → files).

Page, CLI and benches build a :class:`JobSpec` (the CLI's commands are :func:`preset` s of it) and call
:func:`run_job`, which reports progress as named :class:`Stage` s and returns a :class:`JobResult` with a typed
:class:`JobReport`. Below this layer, ``core/`` knows nothing of ``pose/`` or of jobs.
"""
from __future__ import annotations

from pathlib import Path

from .report import METRIC_LABELS, BeforeAfter, JobReport, JobResult, per_frame_table, plain_summary
from .run import check_clip_length, run_job
from .spec import MOTION_SUFFIXES, OUTPUTS, JobSpec, preset
from .stages import CancelToken, JobCancelled, Progress, Stage, StageClock

__all__ = ["run_job", "JobSpec", "preset", "JobResult", "JobReport", "BeforeAfter", "Stage", "StageClock", "Progress",
           "CancelToken", "JobCancelled", "METRIC_LABELS", "plain_summary", "MOTION_SUFFIXES", "OUTPUTS",
           "SAMPLE_VIDEO", "check_clip_length", "per_frame_table"]

# A clip this repo renders itself (scripts/make_sample_clip.py): the page's "Use the sample clip".
SAMPLE_VIDEO = Path(__file__).resolve().parent.parent / "assets" / "samples" / "wave_turn_squat.mp4"
