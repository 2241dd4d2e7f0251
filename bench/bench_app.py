"""Whole app: a 10 s, 30 fps, 720p clip of one person → FBX with semantic optimisation (skeletal supervisor).

Target (issue 6): <= 30 s of processing on this 2-core CPU (<= 3x the clip's duration), time per stage in the
table, and in the same run the floor: decoding plus pose estimation alone. The clip is made by the repo itself
(scripts/make_sample_clip.py: a built-in character rendered at 1280x720), so the benchmark runs anywhere.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .common import ROOT, Row

CLIP_SECONDS = 10.0


def _make_clip(path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_sample_clip import wave_turn_squat

    from core.character_library import load_character
    from core.render.preview import render_motion_clip
    from core.render.video import write_mp4

    character = load_character("Slim")
    motion = wave_turn_squat(character.skeleton, seconds=CLIP_SECONDS, fps=30.0)
    write_mp4(render_motion_clip(character, motion, size=(1280, 720)), path, motion.fps)


def _floor_seconds(path: Path) -> tuple[float, int]:
    """Decoding plus pose estimation alone (no cleaning, fitting, retargeting, rendering or export)."""
    from pose.estimators import make_estimator
    from pose.video import open_video

    estimator = make_estimator("mediapipe")
    t = time.perf_counter()
    n = 0
    for frame in open_video(path).frames():
        estimator.track(frame.rgb)
        n += 1
    seconds = time.perf_counter() - t
    estimator.close()
    return seconds, n


def run() -> list[Row]:
    from jobs import JobSpec, run_job

    cache = ROOT / "bench" / "out"
    cache.mkdir(parents=True, exist_ok=True)
    clip = cache / "clip_10s_720p.mp4"
    if not clip.exists():
        _make_clip(clip)
    floor, frames = _floor_seconds(clip)
    rows = [Row("floor: decode + MediaPipe pose only", floor, "s", note=f"{frames} frames, {frames / floor:.1f} fps")]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = run_job(JobSpec(clip, Path(tmp) / "out", character="Bob", semantic=True))
        total = time.perf_counter() - t
        assert result.report.files["fbx"].exists(), "the job wrote no FBX"
    for stage, seconds in result.report.seconds.items():
        rows.append(Row(f"stage: {stage}", seconds, "s"))
    rows.append(Row("whole job: video -> FBX, semantic on", total, "s", target=3 * CLIP_SECONDS, higher_is_better=False,
                    note=f"{total / CLIP_SECONDS:.2f}x the clip; {total / floor:.2f}x the floor; "
                         f"supervisor: {result.report.supervisor or '-'}"))
    return rows
