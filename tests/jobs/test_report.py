"""The report's plain sentences (page and CLI lead with them), from the metrics a job measured."""
from __future__ import annotations

import numpy as np

from jobs import BeforeAfter, JobReport, plain_summary


def _report(frames: int, before: list[float], after: list[float], **metrics) -> JobReport:
    measured = np.linspace(0, frames - 1, len(before)).round().astype(int)
    r = JobReport(frames=frames, fps=30.0, source="video", character="Brute", height=1.9, retargeter="graph",
                  supervisor="skeletal fallback")
    r.per_frame["pen_percent"] = {"before": (measured, np.array(before)), "after": (measured, np.array(after))}
    r.metrics.update(metrics)
    return r


def test_summary_counts_frames_where_arms_stop_passing_through_the_body():
    # Frames 0-3 measured: two go from inside to clear, one stays inside, one only grazes (below 0.1 %).
    r = _report(4, [1.5, 2.0, 0.8, 0.0], [0.0, 0.05, 0.6, 0.0],
                contacts_kept=BeforeAfter(0.5, 0.9), jdm_error=BeforeAfter(0.10, 0.09), jitter=BeforeAfter(2.0, 2.0))
    lines = plain_summary(r)
    assert lines[0] == "Brute plays 4 frames (0.1 s at 30 fps)."
    assert "Arms no longer pass through the body in 2 frames." in lines
    assert "They still do in 1 frame." in lines
    assert any("in 90 % of those frames (plain retargeting: 50 %)" in line for line in lines)
    assert "The pose stays at least as close to the source's as plain retargeting." in lines
    assert not any("jittery" in line for line in lines)


def test_summary_scales_sampled_frames_to_the_clip_and_says_so():
    # 300 frames, 100 measured: 30 fixed measured frames stand for about 90.
    r = _report(300, [1.0] * 30 + [0.0] * 70, [0.0] * 100, jdm_error=BeforeAfter(0.1, 0.12),
                jitter=BeforeAfter(2.0, 2.5))
    lines = plain_summary(r)
    assert "Arms no longer pass through the body in about 90 frames." in lines
    assert "No frame has an arm inside the body any more." in lines
    assert "To clear the body, the pose moved 20 % further from the source's than plain retargeting." in lines
    assert any("more jittery" in line and "+25 %" in line for line in lines)


def test_summary_without_optimisation_or_character():
    r = JobReport(frames=90, fps=30.0, source="motion file", character="Bob", height=1.8, retargeter="graph")
    assert plain_summary(r)[1].startswith("Semantic optimisation was off")
    assert plain_summary(JobReport(frames=90, fps=30.0, source="video")) == [
        "The person's motion: 90 frames (3.0 s at 30 fps)."]


def test_the_report_says_when_arm_vertices_overlap_the_body_at_rest():
    """Pen% leaves out arm vertices already inside the body in the rest pose; the report says how many."""
    import types

    from jobs.run import _report_metrics
    from tests.core.geometry.shapes import ball_beside_box, box_and_ball

    def measured(pen):
        return types.SimpleNamespace(pen_percent=pen, jdm_error=0.1, contacts_kept=1.0, jitter=1.0, foot_skate=0.0,
                                     pen_frames=np.arange(3), pen_per_frame=np.full(3, pen))

    for character, says in ((box_and_ball(), True), (ball_beside_box(), False)):
        r = _report(3, [0.0] * 3, [0.0] * 3)
        _report_metrics(r, character, measured(0.5), measured(0.0))
        assert r.metrics["pen_percent"] == BeforeAfter(0.5, 0.0)
        assert any("inside its body already in its rest pose" in w for w in r.warnings) == says
