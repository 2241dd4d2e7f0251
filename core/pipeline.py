"""What the front ends call: one function per user-level job, with a progress callback.

The CLI (app.py) and the web app only orchestrate: they call these and show the result or the InputError.
"""
from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .character import Character, load_character
from .errors import InputError
from .io.bvh import write_bvh
from .io.files import staged_output_dir
from .io.uploads import check_input_file
from .limits import MAX_CLIP_SECONDS
from .motion import Motion
from pose.pipeline import PoseResult, video_to_motion  # noqa: E402 - the pose stage (pose/), importable from here

if TYPE_CHECKING:
    from .optimize import OptimizeResult

__all__ = ["RetargetResult", "retarget_motion_file", "MAX_CLIP_SECONDS", "Progress", "video_to_motion", "PoseResult",
           "PoseFilesResult", "pose_video_file"]

Progress = Callable[[float, str], None]
# The report's Pen% and contacts use this many evenly spaced frames (exact on each; 2.7x faster on 300).
REPORT_MESH_FRAMES = 120


def _no_progress(fraction: float, stage: str) -> None:
    pass


@dataclass
class RetargetResult:
    """Files and data of one retargeting job.

    bvh_path: the motion on the character's skeleton.
    video_path: before/after H.264 mp4 (None when rendering was skipped).
    exports: format ("fbx", "glb") → the animated character file written in that format.
    source, result: the motions on the source rig and on the character.
    seconds: wall time per stage.
    retargeter: which retargeter ran ("network" or "copy"); retargeter_reason: why (e.g. no checkpoint).
    optimization: the stage-II result when ``semantic=True`` (supervisor used, Pen% and other metrics before and
        after in ``.before`` / ``.after``), else None.
    """

    bvh_path: Path
    video_path: Path | None
    source: Motion
    result: Motion
    character: Character
    seconds: dict[str, float] = field(default_factory=dict)
    exports: dict[str, Path] = field(default_factory=dict)
    retargeter: str = "copy"
    retargeter_reason: str = ""
    optimization: OptimizeResult | None = None


def check_clip_length(motion: Motion) -> None:
    if motion.duration > MAX_CLIP_SECONDS:
        raise InputError(f"the clip is {motion.duration / 60:.1f} minutes long; the limit is "
                         f"{MAX_CLIP_SECONDS / 60:.0f} minutes: trim it first")


def retarget_motion_file(motion_path: str | Path, character: str | Path | Character, out_dir: str | Path, *,
                         render: bool = True, video_size: int = 512, export_formats: tuple[str, ...] = ("fbx", "glb"),
                         retargeter: str = "network", semantic: bool = False, vlm_path: str | Path | None = None,
                         progress: Progress = _no_progress) -> RetargetResult:
    """Retarget a motion file (.bvh, or an animation in .fbx/.glb) onto a character (a name, or a path to an
    .fbx/.glb character); write ``result.bvh``, ``result.<format>`` for each of ``export_formats`` and
    ``before_after.mp4`` into ``out_dir``. ``retargeter``: "network" (the shipped graph network, or Copy
    when its checkpoint does not load: see ``RetargetResult.retargeter_reason``) or "copy".
    ``semantic``: refine the result with stage II (:func:`core.optimize.optimize_motion`) using the supervisor
    :func:`core.semantics.select_supervisor` picks for ``vlm_path`` (skeletal without VLM weights); see
    ``RetargetResult.optimization`` for which one ran and Pen% before/after.

    Raises:
        InputError: unreadable motion file, unknown character, unmappable rig, clip too long, unwritable folder,
            an export format other than "fbx"/"glb", an unknown retargeter, Blender failing.
    """
    from .io.character_import import read_motion_file
    from .retarget.model import CopyRetargeter, load_retargeter

    if retargeter not in ("network", "copy"):
        raise InputError(f"unknown retargeter {retargeter!r}: choose 'network' or 'copy'")

    unknown = [f for f in export_formats if f not in ("fbx", "glb")]
    if unknown:
        raise InputError(f"cannot export {', '.join(map(repr, unknown))}: choose from 'fbx', 'glb'")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "reading motion")
    source = read_motion_file(motion_path)
    check_clip_length(source)
    char = character if isinstance(character, Character) else load_character(character)
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.2, "retargeting")
    rt = load_retargeter() if retargeter == "network" else CopyRetargeter("Copy retargeter requested")
    result = rt.retarget(source, char.skeleton)
    seconds["retarget"] = time.perf_counter() - t
    optimization = None
    if semantic:  # stage II: semantics + penetration (the supervisor falls back to skeletal without VLM weights)
        from .optimize import optimize_motion
        from .semantics import select_supervisor

        t = time.perf_counter()
        progress(0.22, "semantic refinement")
        optimization = optimize_motion(source, result, char, supervisor=select_supervisor(vlm_path),
                                       max_mesh_frames=REPORT_MESH_FRAMES,
                                       progress=lambda f, s: progress(0.22 + 0.07 * f, s))
        result = optimization.motion
        seconds["semantic"] = time.perf_counter() - t

    with staged_output_dir(out_dir) as stage:
        t = time.perf_counter()
        progress(0.3, "writing BVH")
        write_bvh(result, stage / "result.bvh")
        seconds["write_bvh"] = time.perf_counter() - t
        exports: dict[str, Path] = {}
        if export_formats:
            from .io.export import export_character_motion_files

            t = time.perf_counter()
            progress(0.35, "writing " + " and ".join(f.upper() for f in export_formats))
            export_character_motion_files(char, result, [stage / f"result.{f}" for f in export_formats])
            exports = {f: Path(out_dir) / f"result.{f}" for f in export_formats}
            seconds["write_" + "_".join(export_formats)] = time.perf_counter() - t
        video = None
        if render:
            from .render.preview import write_before_after  # GL context only when a video is wanted

            t = time.perf_counter()
            progress(0.4, "rendering")
            write_before_after(stage / "before_after.mp4", (None, source), (char, result), size=video_size)
            seconds["render"] = time.perf_counter() - t
            video = Path(out_dir) / "before_after.mp4"
    progress(1.0, "done")
    return RetargetResult(Path(out_dir) / "result.bvh", video, source, result, char, seconds, exports, rt.name,
                          rt.reason, optimization)


@dataclass
class PoseFilesResult:
    """Files and data of one pose job: ``motion.bvh``, the overlay video (None when skipped), per-stage seconds."""

    pose: PoseResult
    bvh_path: Path
    overlay_path: Path | None
    seconds: dict[str, float] = field(default_factory=dict)


def pose_video_file(video_path: str | Path, out_dir: str | Path, *, smoothing: float = 0.5,
                    trim: tuple[float | None, float | None] | None = None, overlay: bool = True,
                    progress: Progress = _no_progress) -> PoseFilesResult:
    """A person's motion from a video: write ``motion.bvh`` and ``overlay.mp4`` into ``out_dir``.

    Raises:
        InputError: unreadable video, nobody in most frames, clip too long, unwritable folder.
    """
    pose = video_to_motion(video_path, smoothing=smoothing, trim=trim, progress=_scaled(progress, 0.0, 0.85))
    seconds = dict(pose.seconds)
    with staged_output_dir(out_dir) as stage:
        t = time.perf_counter()
        progress(0.85, "writing BVH")
        write_bvh(pose.motion, stage / "motion.bvh")
        seconds["write_bvh"] = time.perf_counter() - t
        overlay_path = None
        if overlay:
            from pose.overlay import write_overlay

            t = time.perf_counter()
            progress(0.9, "rendering overlay")
            write_overlay(pose, video_path, stage / "overlay.mp4")
            seconds["overlay"] = time.perf_counter() - t
            overlay_path = Path(out_dir) / "overlay.mp4"
    progress(1.0, "done")
    return PoseFilesResult(pose, Path(out_dir) / "motion.bvh", overlay_path, seconds)


# ----------------------------------------------------------------------------------------------------------
# The whole flow behind the web page and `python app.py run`: video or motion file → files to download.
# ----------------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = ROOT / "assets" / "samples" / "wave_turn_squat.mp4"
MOTION_SUFFIXES = (".bvh", ".fbx", ".glb")
PREVIEW_FPS = 30.0  # preview videos never need more; a 120 fps mocap clip renders 4x faster
PREVIEW_SIZE = 384


@dataclass
class JobOptions:
    """What the user can set for one job (the page's controls and the CLI's flags).

    semantic: run the stage-II optimisation. smoothing: pose filter strength in [0, 1] (video input).
    foot_locking: keep planted feet in place during optimisation. iterations: most optimisation steps
    (None: the optimiser's default).
    vlm_path: BLIP-2 weights folder (default: $SMT_VLM_PATH; without weights the skeletal supervisor runs).
    trim: ``(start, end)`` seconds of the input to use. render: write the preview videos.
    """

    semantic: bool = False
    smoothing: float = 0.5
    foot_locking: bool = True
    iterations: int | None = None
    vlm_path: str | None = None
    trim: tuple[float, float] | None = None
    render: bool = True


@dataclass
class JobResult:
    """Everything one job produced.

    source_video: the input video with the fitted skeleton drawn over it (None for motion-file input).
    result_video: the character before/after optimisation (the source skeleton and the character without it).
    fbx_path, glb_path, bvh_path: downloads. report: frames, fps, character, height, retargeter, supervisor,
    metrics as (before, after) pairs, notes. per_frame: the page's plots, plot name ("pen_percent",
    "semantic_distance") → series name ("before", "after") → ``(frames (N,), values (N,))``.
    seconds: wall time per stage.
    """

    source_video: Path | None
    result_video: Path | None
    fbx_path: Path | None
    glb_path: Path | None
    bvh_path: Path
    report: dict
    per_frame: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def per_frame_table(self, plot: str):
        """A long-format table (frame, value, series) of one plot, or None when there is nothing to plot."""
        series = self.per_frame.get(plot)
        if not series:
            return None
        import pandas as pd

        return pd.concat([pd.DataFrame({"frame": frames, "value": values, "series": name})
                          for name, (frames, values) in series.items()], ignore_index=True)


def _scaled(progress: Progress, start: float, end: float) -> Progress:
    """A progress callback for one stage that maps its [0, 1] onto the job's [start, end]."""
    return lambda fraction, stage: progress(start + (end - start) * min(max(fraction, 0.0), 1.0), stage)


@functools.lru_cache(maxsize=1)
def _job_renderer():
    """The previews' renderer: no multisampling, which after H.264 at preview size is invisible and cost 2.4x."""
    from .render.preview import PreviewRenderer

    return PreviewRenderer(samples=0)


@functools.lru_cache(maxsize=1)
def _retargeter():
    from .retarget.model import load_retargeter

    return load_retargeter()


def _optimise_for_job(source: Motion, retargeted: Motion, char: Character, options: JobOptions, report: dict,
                      per_frame: dict, progress: Progress) -> Motion:
    """Stage II for a job: the optimised motion; fills ``report`` and ``per_frame`` (see :class:`JobResult`)."""
    from .optimize import OptimizeConfig, optimize_motion
    from .semantics import select_supervisor

    progress(0.0, "optimising")
    supervisor, description = select_supervisor(options.vlm_path)
    config = OptimizeConfig() if options.iterations is None else OptimizeConfig(iterations=options.iterations)
    if not options.foot_locking:
        config.foot = 0.0
    opt = optimize_motion(source, retargeted, char, supervisor=supervisor, config=config, progress=progress,
                          max_mesh_frames=REPORT_MESH_FRAMES)
    report["supervisor"] = description
    report["notes"].extend(opt.notes)
    if opt.before is not None and opt.after is not None:
        for key in ("pen_percent", "jdm_error", "contacts_kept", "jitter", "foot_skate"):
            report[key] = (getattr(opt.before, key), getattr(opt.after, key))
        if len(opt.after.pen_frames):
            per_frame["pen_percent"] = {"before": (opt.before.pen_frames, opt.before.pen_per_frame),
                                        "after": (opt.after.pen_frames, opt.after.pen_per_frame)}
    if opt.semantic is not None:
        sem = opt.semantic
        report["semantic_distance"] = (float(sem.before.mean()), float(sem.after.mean()))
        per_frame["semantic_distance"] = {"before": (sem.frames, sem.before), "after": (sem.frames, sem.after)}
    return opt.motion


def run_job(source: str | Path, character: str | Path | Character, out_dir: str | Path,
            options: JobOptions = JobOptions(), progress: Progress = _no_progress) -> JobResult:
    """Video or motion file → retargeted (and optionally optimised) animation, preview videos and downloads.

    Writes into ``out_dir``: ``source_overlay.mp4`` (video input), ``result.mp4``, ``result.fbx``,
    ``result.glb``, ``result.bvh``; all or nothing.

    Raises:
        InputError: for any unusable input, with a message meant for the user.
    """
    seconds: dict[str, float] = {}
    source = check_input_file(source, what="input file")
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        clock = now

    progress(0.0, "reading input")
    pose = None
    if source.suffix.lower() in MOTION_SUFFIXES:
        from .io.character_import import read_motion_file

        motion = read_motion_file(source)
        if options.trim:
            start, end = (int(round(t * motion.fps)) for t in options.trim)
            motion = motion.slice(start, end or None)
        lap("reading input")
    else:
        pose = video_to_motion(source, smoothing=options.smoothing, trim=options.trim,
                               progress=_scaled(progress, 0.0, 0.45))
        motion = pose.motion
        seconds.update({f"pose: {k}": v for k, v in pose.seconds.items()} or {"pose": time.perf_counter() - clock})
        clock = time.perf_counter()
    check_clip_length(motion)
    char = character if isinstance(character, Character) else load_character(character)
    lap("reading input")
    notes = list(pose.warnings) if pose is not None else []

    # Work that needs no result of the next stage runs beside it: the overlay video (decode, draw, encode)
    # while this thread retargets and optimises, then Blender's export while this thread renders.
    with staged_output_dir(out_dir) as stage_dir, ThreadPoolExecutor(max_workers=2) as pool:
        overlay = None
        if options.render and pose is not None:
            from pose.overlay import write_overlay

            overlay = pool.submit(write_overlay, pose, source, stage_dir / "source_overlay.mp4")

        progress(0.45, "retargeting")
        retargeter = _retargeter()
        retargeted = retargeter.retarget(motion, char.skeleton)
        report: dict = {"frames": motion.num_frames, "fps": motion.fps, "character": char.name,
                        "height": char.height,
                        "retargeter": getattr(retargeter, "reason", None) or "graph network (stage I)", "notes": notes}
        lap("retargeting")

        final, per_frame = retargeted, {}
        if options.semantic:
            final = _optimise_for_job(motion, retargeted, char, options, report, per_frame,
                                      _scaled(progress, 0.5, 0.75))
            lap("optimising")

        from .io.export import export_character_motion_files

        progress(0.75, "exporting and rendering")
        write_bvh(final, stage_dir / "result.bvh")
        export = pool.submit(export_character_motion_files, char, final,
                             [stage_dir / "result.fbx", stage_dir / "result.glb"])
        source_video = result_video = None
        if options.render:
            from .render.preview import write_before_after

            left, labels = ((char, retargeted), ("without optimisation", "with optimisation")) if options.semantic \
                else ((None, motion), ("source", char.name))
            write_before_after(stage_dir / "result.mp4", left, (char, final), size=PREVIEW_SIZE,
                               fps=min(motion.fps, PREVIEW_FPS), labels=labels, renderer=_job_renderer())
            result_video = Path(out_dir) / "result.mp4"
            lap("rendering")
            if overlay is not None:
                progress(0.9, "finishing the overlay video")
                overlay.result()
                source_video = Path(out_dir) / "source_overlay.mp4"
                lap("waiting for the overlay")
        progress(0.95, "exporting")
        export.result()
        lap("waiting for the export")
    progress(1.0, "done")
    out = Path(out_dir)
    return JobResult(source_video, result_video, out / "result.fbx", out / "result.glb", out / "result.bvh", report,
                     per_frame, seconds)
