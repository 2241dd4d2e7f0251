"""Whole app: a clip of one person → FBX with semantic optimisation (skeletal supervisor), per stage and length.

Targets (issue 14): a 10 s, 30 fps, 720p clip onto a built-in character in <= 1.0x the clip's duration (about
2x the decode+pose floor); onto an imported 25-30k-vertex character with two meshes
(../shared/data/characters/Xbot.glb) in <= 1.5x; cost growing no faster than the clip (rows for 10, 30 and 60 s,
and a 60 fps source); no stage that stalls the progress bar for more than a few seconds (the longest gap between
two progress calls is in each row's note). Each job has two rows: the whole job (every file, previews included)
and the time until its FBX was written (Blender's export runs while the previews render). Each clip's floor,
decoding plus pose estimation of the body alone in one pass, is measured in the same run. Jobs run with the
app's defaults: hands and fingers tracked (pose.pipeline.DEFAULT_HANDS, on since issue 16), a clip of 4 s or more
estimated in two halves at once (pose.pipeline.SPLIT_SECONDS), a 60 fps clip read at 30 (pose.video.pose_step; the
floor reads every frame, and the files are written at 60); the 10 s clip onto Bob also runs with hands off
(the body alone, as before issue 16). The clips are made by the repo itself (scripts/make_sample_clip.py: a
built-in character rendered at 1280x720), so the benchmark runs anywhere; Xbot's rows need the shared data. Last,
the peak memory of a job on a 1.28 M-vertex character (target: under 4 GB, and it finishes).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .common import ROOT, SHARED_DATA, Row

CLIPS = ((10.0, 30.0), (30.0, 30.0), (60.0, 30.0), (10.0, 60.0))  # (seconds, fps)
XBOT = SHARED_DATA / "characters" / "Xbot.glb"
TARGETS = {"Bob": 1.0, "Xbot": 1.5}  # whole job / clip duration


def _clip(seconds: float, fps: float) -> Path:
    """The bench's clip of that length and rate (made once, kept in bench/out)."""
    import sys

    path = ROOT / "bench" / "out" / f"clip_{seconds:.0f}s_{fps:.0f}fps_720p.mp4"
    if (seconds, fps) == (10.0, 30.0):
        path = ROOT / "bench" / "out" / "clip_10s_720p.mp4"  # the name earlier runs cached it under
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_sample_clip import wave_turn_squat

    from core.character_library import load_character
    from core.render.preview import render_motion_clip
    from core.render.video import write_mp4

    character = load_character("Slim")
    motion = wave_turn_squat(character.skeleton, seconds=seconds, fps=fps)
    write_mp4(render_motion_clip(character, motion, size=(1280, 720)), path, motion.fps)
    return path


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


class _Gaps:
    """The longest wait between two progress calls of a job (what a user sees as a frozen bar)."""

    def __init__(self) -> None:
        self.last, self.longest, self.where = time.perf_counter(), 0.0, ""

    def __call__(self, fraction: float, what: str) -> None:
        now = time.perf_counter()
        if now - self.last > self.longest:
            self.longest, self.where = now - self.last, what
        self.last = now


def _job_rows(clip: Path, seconds: float, fps: float, floor: float, name: str, character,
              hands: bool | None = None) -> list[Row]:
    """Two rows: the whole job (every file, previews included) and the time until its FBX was written (the
    export runs beside the previews; the report's ``ready`` times), each over the clip's duration. ``hands``:
    the job's setting (None: the app's default)."""
    from jobs import JobSpec, run_job

    gaps = _Gaps()
    options = {} if hands is None else {"hands": hands}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = run_job(JobSpec(clip, Path(tmp) / "out", character=character, semantic=True, **options), gaps)
        total = time.perf_counter() - t
        assert result.report.files["fbx"].exists(), "the job wrote no FBX"
    ready = result.report.ready
    stages = " | ".join(f"{stage} {s:.1f}" for stage, s in result.report.seconds.items())
    files = ", ".join(f"{kind} {ready[kind]:.1f}" for kind in sorted(ready, key=ready.get))
    head = f"{seconds:.0f} s at {fps:.0f} fps -> {name}" + ("" if hands is None else f", hands {'on' if hands else 'off'}")
    return [Row(f"{head}: whole job / clip", total / seconds, "x", target=TARGETS[name], higher_is_better=False,
                note=f"{total:.1f} s, {total / floor:.2f}x the floor; {stages} (s); longest progress gap "
                     f"{gaps.longest:.1f} s (before '{gaps.where}')"),
            Row(f"{head}: FBX written / clip (previews still rendering)", ready["fbx"] / seconds, "x",
                target=TARGETS[name], higher_is_better=False,
                note=f"{ready['fbx']:.1f} s, {ready['fbx'] / floor:.2f}x the floor; each file ready at (s): {files}")]


def run() -> list[Row]:
    rows: list[Row] = []
    characters = {"Bob": "Bob"}
    if XBOT.is_file():
        characters["Xbot"] = XBOT
    else:
        rows.append(Row("Xbot rows", float("nan"), "", note=f"not measured: {XBOT} is missing"))
    for seconds, fps in CLIPS:
        clip = _clip(seconds, fps)
        floor, frames = _floor_seconds(clip)
        rows.append(Row(f"{seconds:.0f} s at {fps:.0f} fps: floor (decode + MediaPipe pose)", floor, "s",
                        note=f"{frames} frames, {frames / floor:.1f} frames/s"))
        for name, character in characters.items():
            rows.extend(_job_rows(clip, seconds, fps, floor, name, character))
        if (seconds, fps) == CLIPS[0]:
            rows.extend(_job_rows(clip, seconds, fps, floor, "Bob", "Bob", hands=False))
    rows.append(memory_row())
    return rows


def subdivided(character, times: int):
    """``character`` with every triangle split in four ``times`` times (edge midpoints; skin weights and colours
    averaged, parts from the first end): Bob 4 times has 1.28 M vertices, 2.56 M triangles."""
    import numpy as np

    from core.character import Character

    V, F = character.rest_vertices, character.faces
    dense = character.dense_weights().numpy()
    parts, colors = character.parts, character.colors
    for _ in range(times):
        edges = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mid = len(V) + inverse.reshape(3, -1).T  # (F, 3): the midpoints of edges 01, 12, 20
        V = np.concatenate([V, V[unique].mean(1)])
        dense = np.concatenate([dense, dense[unique].mean(1)])
        parts = np.concatenate([parts, parts[unique[:, 0]]])
        colors = None if colors is None else np.concatenate([colors, colors[unique].mean(1)])
        a, b, c = F.T
        ab, bc, ca = mid.T
        F = np.concatenate([np.stack(t, 1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    top = np.argsort(-dense, axis=1)[:, :4]
    weights = np.take_along_axis(dense, top, 1)
    weights /= weights.sum(1, keepdims=True)
    return Character(f"{character.name} x{4 ** times}", character.skeleton, V, F, top, weights, parts, colors)


_MEMORY_JOB = """
import resource, sys, time
sys.path.insert(0, {root!r})
from bench.bench_app import subdivided
from core.character_library import load_character
from jobs import JobSpec, run_job
character = subdivided(load_character("Bob"), 4)
t = time.perf_counter()
run_job(JobSpec({clip!r}, {out!r}, character=character, semantic=True))
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(character.rest_vertices), time.perf_counter() - t, own)
"""


def memory_row() -> Row:
    """Peak memory of a semantic job (a 2 s motion file, previews, FBX) on Bob subdivided to 1.28 M vertices, in
    a process of its own so earlier rows do not count."""
    import subprocess
    import sys

    clip = SHARED_DATA / "motion" / "bandai_namco_1" / "data" / "dataset-1_bow_normal_001.bvh"
    if not clip.is_file():
        return Row("1.28 M-vertex character: peak memory", float("nan"), "GB", note=f"not measured: {clip} is missing")
    with tempfile.TemporaryDirectory() as tmp:
        code = _MEMORY_JOB.format(root=str(ROOT), clip=str(clip), out=str(Path(tmp) / "out"))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode:
        return Row("1.28 M-vertex character: peak memory", float("nan"), "GB",
                   note="the job failed: " + done.stderr.strip().splitlines()[-1][:200])
    vertices, seconds, own_kb = done.stdout.split()[-3:]
    # Blender's export worker is a process of its own, not counted (its fork starts out sharing this one's pages,
    # so RUSAGE_CHILDREN reads the parent's size and says nothing about the worker).
    return Row("1.28 M-vertex character: peak memory of the job's process", int(own_kb) / 2 ** 20, "GB", 4.0, False,
               note=f"{int(vertices):,} vertices, {float(seconds):.0f} s; Blender's export worker not counted")
