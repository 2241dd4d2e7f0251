"""The one function that runs a job, whatever asked for it (page, CLI, bench).

Flow: read the input (a motion file, or a video through :mod:`pose`) → retarget onto the character (stage I)
→ optimise (stage II, when asked) → write the files. Work that needs no result of the next stage runs beside
it on the second core: a character file's import and the warm-up while the pose is estimated; the overlay
video (decode, draw, encode) and the report's "before" metrics while this thread retargets and optimises; then
Blender's export (the FBX is written as soon as the motion is final: ``report.ready`` says when) while this
thread renders the preview. Rendering the preview's "without optimisation" panel beside stage II was tried and
dropped: on a quiet 2-core machine it made 10 s jobs slower (Bob 24.8 / 27.1 s with it, 23.3 / 23.3 s without;
X Bot 23.2 / 23.1 vs 21.7 / 24.5), the second core being busy with the overlay and the "before" metrics.
"""
from __future__ import annotations

import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from core.character import Character
from core.errors import InputError
from core.io.bvh import write_bvh
from core.io.files import staged_output_dir
from core.io.uploads import check_input_file
from core.limits import MAX_CLIP_SECONDS
from core.motion import Motion, place_root

from .report import BeforeAfter, JobReport, JobResult
from .spec import JobSpec
from .stages import JobCancelled, Progress, Stage, StageClock

__all__ = ["run_job", "check_clip_length", "PREVIEW_FPS"]

PREVIEW_FPS = 30.0  # preview videos never need more; a 120 fps mocap clip renders 4x faster


def check_clip_length(motion: Motion) -> None:
    if motion.duration > MAX_CLIP_SECONDS:
        raise InputError(f"the clip is {motion.duration / 60:.1f} minutes long; the limit is "
                         f"{MAX_CLIP_SECONDS / 60:.0f} minutes: trim it first")


@functools.lru_cache(maxsize=1)
def _preview_renderer():
    """The previews' renderer: no multisampling, which after H.264 at preview size is invisible and cost 2.4x."""
    from core.render.preview import PreviewRenderer

    return PreviewRenderer(samples=0)


@functools.lru_cache(maxsize=2)
def _retargeter(kind: str):
    from core.retarget.model import COMMERCIAL_CHECKPOINT, CopyRetargeter, load_retargeter

    if kind == "copy":
        return CopyRetargeter("Copy retargeter requested")
    return load_retargeter(COMMERCIAL_CHECKPOINT if kind == "network-cmu" else None)


def _stages(spec: JobSpec) -> list[Stage]:
    stages = [Stage.READ] + ([Stage.POSE] if spec.is_video else [])
    if spec.character is not None:
        stages.append(Stage.RETARGET)
    if spec.semantic:
        stages.append(Stage.OPTIMISE)
    if spec.previews:
        stages.append(Stage.RENDER)
    if set(spec.outputs) & {"fbx", "glb"}:
        stages.append(Stage.EXPORT)
    return stages


_warm_lock = threading.Lock()


def _warm_up(spec: JobSpec, character: Character | None) -> None:
    """What the later stages need that does not depend on the motion, made while the pose is estimated (which
    leaves most of the second core idle): the retargeter's weights, stage II's penetration grid and its first
    Adam (whose first use imports torch._dynamo: 2.5 s), the preview renderer's GL context.

    A job that stops early (cancelled, a bad clip) leaves its warm-up running: it only fills caches. The lock makes
    the next job's warm-up wait for it rather than build a second GL context beside it."""
    if character is None:
        return
    with _warm_lock:
        _retargeter(spec.retargeter)
        if spec.semantic:
            import torch

            from core.optimize import prepare_character

            prepare_character(character)
            torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        if spec.previews:
            _preview_renderer().info  # creates the GL context


def _failing_early(progress: Progress, work: Future | None) -> Progress:
    """``progress``, raising ``work``'s error as soon as it has failed (a character file Blender cannot
    import ends the pose estimation beside it, instead of waiting for its end)."""
    if work is None:
        return progress

    def report(fraction: float, what: str) -> None:
        if work.done() and work.exception() is not None:
            raise work.exception()
        progress(fraction, what)

    return report


def _stamp_when_done(work: Future, report: JobReport, clock: StageClock, kinds: list[str]) -> None:
    """Record in ``report.ready`` when ``work`` wrote the files of ``kinds`` (on its thread, as it succeeds)."""

    def stamp(done: Future) -> None:
        if not done.cancelled() and done.exception() is None:
            report.ready.update(dict.fromkeys(kinds, clock.elapsed()))

    work.add_done_callback(stamp)


def _saying_when_written(progress: Progress, report: JobReport, kinds: list[str]) -> Progress:
    """``progress``, its text saying so once the files of ``kinds`` are written (the FBX is usually done while
    the previews render)."""
    names = "/".join(k.upper() for k in kinds)

    def report_(fraction: float, what: str) -> None:
        written = bool(kinds) and all(k in report.ready for k in kinds)
        progress(fraction, f"{what} ({names} written)" if written else what)

    return report_


def _read_motion_file(spec: JobSpec) -> Motion:
    from core.io.character_import import read_motion_file

    motion = read_motion_file(spec.source, take=spec.take)
    if spec.trim:
        start, end = spec.trim
        motion = motion.slice(int(round(start * motion.fps)), int(round(end * motion.fps)) if end else None)
    return motion


def _optimise(spec: JobSpec, source: Motion, retargeted: Motion, character: Character, report: JobReport,
              progress: Progress, measuring: ThreadPoolExecutor, check, pose=None) -> tuple:
    """Stage II; fills the report's supervisor, where its source embeddings came from, warnings, the semantic
    metrics and plot. With a vision-language supervisor, a video job hands it the video's frames (crops around
    the person, decoded again as they are embedded) and the camera's view of them (``pose``: the pose stage's
    result). Returns the optimiser's result and the futures of the report's before/after metrics, measured on the
    second core (``measuring``): the start's while Adam runs, the result's while the previews render; ``check``
    (the clock's) stops them when the job is cancelled."""
    from core.metrics import SourceClip, affordable_mesh_frames, measure_clip
    from core.optimize import OptimizeConfig, optimize_motion
    from core.semantics import select_supervisor

    supervisor = select_supervisor(spec.vlm_path)
    config = OptimizeConfig() if spec.iterations is None else OptimizeConfig(iterations=spec.iterations)
    if not spec.foot_locking:
        config.foot = 0.0
    if pose is not None:
        config.keep_own_motion = False  # the source's own body is the person's, never the character's
    clip = SourceClip.of(source)
    # Pen% and contacts on evenly spread frames, exact on each: as many as a bounded cost affords (120 on the
    # built-in characters, 24 on a 28k-vertex upload), the sampling error in the report.
    frames = affordable_mesh_frames(character)
    before = measuring.submit(measure_clip, clip, retargeted, character, frames, check)
    video = {}
    if pose is not None and getattr(supervisor.encoder, "kind", None) == "image":
        from pose.crops import person_frames

        video = dict(zip(("source_frames", "source_camera"), person_frames(pose, spec.source)))
    opt = optimize_motion(source, retargeted, character, supervisor=supervisor, config=config, progress=progress,
                          measure=False, **video)
    after = measuring.submit(measure_clip, clip, opt.motion, character, frames, check)
    report.supervisor = opt.supervisor
    report.semantic_source = opt.semantic_source
    report.warnings.extend(opt.notes)
    if opt.semantic is not None:
        sem = opt.semantic
        report.metrics["semantic_distance"] = BeforeAfter(float(sem.before.mean()), float(sem.after.mean()))
        report.per_frame["semantic_distance"] = {"before": (sem.frames, sem.before), "after": (sem.frames, sem.after)}
    if opt.semantic_metrics is not None:
        m = opt.semantic_metrics
        report.metrics["scl"], report.metrics["fid"] = BeforeAfter(*m.scl), BeforeAfter(*m.fid)
        if m.itm is not None:
            report.metrics["itm"] = BeforeAfter(*m.itm)
        report.semantic_measured_on = (
            f"the semantic distance, SCL and FID on {len(opt.semantic.frames)} of {report.frames} frames, evenly "
            f"spread ({m.samples} embeddings a side)" + ("" if m.itm is not None else f"; no ITM: {m.itm_missing}"))
    return opt, before, after


def _report_metrics(report: JobReport, character: Character, before, after) -> None:
    """The before/after metrics and the Pen% plot, from :func:`~core.metrics.measure_clip`'s results."""
    from core.geometry.penetration import rest_overlap
    from core.metrics import sampling_error

    hidden = int(rest_overlap(character).sum())
    if hidden:  # already measured (cached): say why Pen% leaves out part of the arms
        report.warnings.append(f"{hidden} arm vertices of {character.name} are inside its body already in its "
                               "rest pose (parts that overlap where they join); Pen% does not count them.")

    for key in ("pen_percent", "jdm_error", "contacts_kept", "jitter", "foot_skate"):
        report.metrics[key] = BeforeAfter(getattr(before, key), getattr(after, key))
    n = len(after.pen_frames)
    if n:
        report.per_frame["pen_percent"] = {"before": (before.pen_frames, before.pen_per_frame),
                                           "after": (after.pen_frames, after.pen_per_frame)}
    if 0 < n < report.frames:
        errors = [sampling_error(m.pen_per_frame, report.frames) for m in (before, after)]
        report.measured_on = (f"Pen% and hand contacts on {n} of {report.frames} frames, evenly spread "
                              f"(Pen% standard error ±{errors[0]:.2g} before, ±{errors[1]:.2g} after)")


def run_job(spec: JobSpec, progress: Progress | None = None) -> JobResult:
    """Run one job (see :class:`~jobs.spec.JobSpec` for what it reads and writes).

    Raises:
        InputError: for any unusable input or option, with a message meant for the user; nothing is left in
            ``spec.out_dir`` then.
        JobCancelled: ``progress`` raised it (a :meth:`CancelToken.guard`), or the job failed while its token was
            set (the canceller killed its Blender worker); nothing is left in ``spec.out_dir`` either.
    """
    clock = StageClock(_stages(spec), progress)
    try:
        return _run(spec, clock)
    except JobCancelled:
        raise
    except Exception:
        # A cancel that killed the job's Blender worker (as the page's Cancel does) surfaces here as the worker's
        # error; the caller asked for a stop, so it gets JobCancelled (the worker's error as its context). The
        # clock's check raises it when the caller's token is set, and only re-sends the last report otherwise.
        clock.check()
        raise


def _results(futures, check, every: float = 0.2) -> list:
    """The ``futures``' results, calling ``check()`` every ``every`` seconds meanwhile: a cancel ends the wait
    at once instead of after the work (which stops at its own next check)."""
    pending = set(futures)
    while pending:
        check()
        _, pending = wait(pending, timeout=every)
    return [f.result() for f in futures]


def _run(spec: JobSpec, clock: StageClock) -> JobResult:
    import cv2

    from core.character_library import is_character_file, load_character

    # The job spreads its own work over the cores (overlay and measuring beside stage II, export beside the
    # previews); OpenCV's thread pool on top of that (decoding, resizing) slowed stage II 1.5x and gained nothing
    # (pose estimation: 6.5 s with one thread or two).
    cv2.setNumThreads(1)
    clock.start(Stage.READ)
    check_input_file(spec.source, what="video" if spec.is_video else "motion file")
    # The character first: a typo in its name is refused before minutes of pose estimation. A character file
    # (.fbx/.glb: 1-3 s in Blender's worker process) is imported beside the pose estimation instead, and one it
    # cannot use stops the pose at its next progress report (every 15 frames).
    character = spec.character if isinstance(spec.character, Character) else None
    importing = spec.character is not None and character is None and is_character_file(spec.character)
    if spec.character is not None and character is None and not importing:
        character = load_character(spec.character)
    pose = None
    side = ThreadPoolExecutor(max_workers=1)
    try:
        loaded = side.submit(load_character, spec.character) if importing else None
        # On the second core while the pose is estimated (one worker: after the import).
        warm = side.submit(lambda: _warm_up(spec, loaded.result() if loaded is not None else character))
        if spec.is_video:
            from pose.pipeline import video_to_motion

            clock.start(Stage.POSE)
            pose = video_to_motion(spec.source, smoothing=spec.smoothing, trim=spec.trim, hands=spec.hands,
                                   progress=_failing_early(clock.within(Stage.POSE), loaded), person=spec.person)
            source = pose.motion
            clock.stop()
            clock.seconds.pop(Stage.POSE.label, None)  # its parts stand in its place
            for name, seconds in pose.seconds.items():
                clock.record(f"pose: {name}", seconds)
        else:
            source = _read_motion_file(spec)
    finally:
        side.shutdown(wait=False)  # a job stopped here does not wait for its warm-up (see _warm_up)
    if loaded is not None:
        character = loaded.result()
    warm.result()
    check_clip_length(source)
    if spec.character is None:
        source = place_root(source, spec.root)  # the person's own motion is the result of a pose job
    report = JobReport(frames=source.num_frames, fps=source.fps, source="video" if spec.is_video else "motion file",
                       warnings=list(pose.warnings) if pose is not None else [])
    result = JobResult(report, source, character=character, pose=pose)

    # The pool (files: overlay, export) is left, every task finished, before the staging folder is: nothing writes
    # into a removed folder. The report's measuring writes nothing: a job that stops does not wait for it (it stops
    # at its own next check when cancelled).
    measuring = ThreadPoolExecutor(max_workers=1)
    try:
        return _write(spec, result, clock, pose, character, measuring)
    finally:
        measuring.shutdown(wait=False, cancel_futures=True)


def _at_source_rate(motion: Motion, pose) -> Motion:
    """``motion`` at the video's own frame rate, for the files a user takes away: the pose stage reads a fast clip
    at a lower rate (:func:`pose.video.pose_step`), and the motion keeps that rate through stages I and II (their
    cost grows with frames; the correction has 4 knots a second)."""
    if pose is None or abs(pose.source_fps - motion.fps) < 1e-6:
        return motion
    return motion.resample(pose.source_fps)


def _write(spec: JobSpec, result: JobResult, clock: StageClock, pose, character: Character | None,
           measuring: ThreadPoolExecutor) -> JobResult:
    """Everything after the motion is read: stages I and II, previews, files (all or nothing)."""
    source, report = result.source, result.report
    with staged_output_dir(spec.out_dir) as stage_dir, ThreadPoolExecutor(max_workers=2) as pool:
        overlay: Future | None = None
        if spec.previews and pose is not None:
            from pose.overlay import write_overlay

            overlay = pool.submit(write_overlay, pose, spec.source, stage_dir / "source_overlay.mp4", clock.check)
            _stamp_when_done(overlay, report, clock, ["overlay"])
        if "motion" in spec.outputs:
            write_bvh(_at_source_rate(source, pose), stage_dir / "motion.bvh")
            report.files["motion"] = spec.out_dir / "motion.bvh"
            report.ready["motion"] = clock.elapsed()

        if character is not None:
            measured = _retarget_and_optimise(spec, result, clock, measuring)
            _write_results(spec, result, clock, stage_dir, pool, measured, overlay)
        elif overlay is not None:
            clock.start(Stage.RENDER)
            overlay.result()
        if overlay is not None:
            report.files["overlay"] = spec.out_dir / "source_overlay.mp4"
        clock.stop()
    report.seconds = dict(clock.seconds)
    clock.done()
    return result


def _retarget_and_optimise(spec: JobSpec, result: JobResult, clock: StageClock,
                           measuring: ThreadPoolExecutor) -> tuple[Future, Future] | None:
    """Stages I and II; returns the futures of the report's before/after metrics (measured in ``measuring``)
    when stage II ran."""
    from core.io.export import on_rig

    character, source, report = result.character, result.source, result.report
    assert character is not None
    report.character, report.height = character.name, character.height
    clock.start(Stage.RETARGET)
    retargeted = on_rig(source, character.skeleton)  # already on the character's rig (an export of a result)
    if retargeted is not None:
        report.retargeter = "none needed: the motion is on the character's rig"
    else:
        retargeter = _retargeter(spec.retargeter)
        retargeted = retargeter.retarget(source, character.skeleton)
        report.retargeter = retargeter.reason or retargeter.name
        report.licence = getattr(retargeter, "meta", {}).get("licence")
    result.retargeted = result.final = retargeted
    measured = None
    if spec.semantic:
        clock.start(Stage.OPTIMISE)
        result.optimization, *measured = _optimise(spec, source, retargeted, character, report,
                                                   clock.within(Stage.OPTIMISE), measuring, clock.check,
                                                   result.pose)
        result.final = result.optimization.motion
    # Placed once the motion is final: the optimiser compares positions with the source's, in the source's frame.
    result.retargeted = place_root(result.retargeted, spec.root)
    result.final = place_root(result.final, spec.root)
    return tuple(measured) if measured else None


def _write_results(spec: JobSpec, result: JobResult, clock: StageClock, stage_dir: Path,
                   pool: ThreadPoolExecutor, measured: tuple[Future, Future] | None, overlay: Future | None) -> None:
    """The BVH, the before/after preview (this thread) and Blender's FBX/GLB (a separate process, started first);
    the report's metrics once ``measured`` and the ``overlay`` (on the second core meanwhile) are in, before
    waiting for the export, so the progress bar never steps back."""
    from core.io.export import export_character_motion_files

    character, final, report = result.character, result.final, result.report
    assert character is not None and final is not None and result.retargeted is not None
    files = _at_source_rate(final, result.pose)  # the preview's is final's (at most PREVIEW_FPS)
    if "bvh" in spec.outputs:
        write_bvh(files, stage_dir / f"{spec.name}.bvh")
        report.files["bvh"] = spec.out_dir / f"{spec.name}.bvh"
        report.ready["bvh"] = clock.elapsed()
    blender_formats = [f for f in ("fbx", "glb") if f in spec.outputs]
    export: Future | None = None
    if blender_formats:
        export = pool.submit(export_character_motion_files, character, files,
                             [stage_dir / f"{spec.name}.{f}" for f in blender_formats],
                             skeleton_only=spec.skeleton_only, target=spec.fbx_target, check=clock.check)
        _stamp_when_done(export, report, clock, blender_formats)
    if spec.previews:
        from core.render.preview import write_before_after

        clock.start(Stage.RENDER)
        if spec.semantic:
            left, labels = (character, result.retargeted), ("without optimisation", "with optimisation")
        else:
            left, labels = (None, result.source), ("source", character.name)
        write_before_after(stage_dir / f"{spec.name}.mp4", left, (character, final), size=spec.preview_size,
                           fps=min(result.source.fps, PREVIEW_FPS), labels=labels, renderer=_preview_renderer(),
                           progress=_saying_when_written(clock.within(Stage.RENDER), report, blender_formats))
        report.files["preview"] = spec.out_dir / f"{spec.name}.mp4"
        report.ready["preview"] = clock.elapsed()
    if measured is not None:  # what is left of measuring waits under the stage running now
        _report_metrics(report, character, *_results(measured, clock.check))
    if overlay is not None:
        overlay.result()
    if export is not None:
        clock.start(Stage.EXPORT)
        export.result()
        for f in blender_formats:
            report.files[f] = spec.out_dir / f"{spec.name}.{f}"
