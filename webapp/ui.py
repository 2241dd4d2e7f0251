"""The Gradio front end. It only orchestrates: every job is one call of :func:`jobs.run_job`.

Each job works in its own folder in the server's workspace (removed when the server stops); a failed job's
folder is removed at once, finished ones after an hour (Gradio keeps its own copies of what the page shows,
cleaned by ``delete_cache``). Jobs go through Gradio's queue, one at a time on this 2-core class of machine, so
any number of users can submit. Visitors never name a path or a model: the supervisor is the server owner's.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# This process's workspace, made before Gradio is imported: Gradio creates its cache folders on import, and they
# must land in the workspace to go with it.
_WORKSPACE = Path(tempfile.mkdtemp(prefix="smt-server-"))
atexit.register(shutil.rmtree, _WORKSPACE, ignore_errors=True)
os.environ.setdefault("GRADIO_TEMP_DIR", str(_WORKSPACE / "gradio"))

import gradio as gr  # noqa: E402

from core.character_library import builtin_character_names
from core.errors import InputError  # noqa: E402
from core.limits import MAX_CLIP_SECONDS  # noqa: E402
from core.optimize import OptimizeConfig  # noqa: E402
from jobs import METRIC_LABELS, MOTION_SUFFIXES, SAMPLE_VIDEO, JobResult, JobSpec, run_job  # noqa: E402

log = logging.getLogger(__name__)
JOB_MAX_AGE_S = 3600
MAX_UPLOAD = "200mb"
CHARACTER_SUFFIXES = (".fbx", ".glb")
# The page's words for core.motion.place_root's placements.
ROOT_CHOICES = {"Starts at the origin": "origin", "In place (no travel)": "in_place",
                "As captured (world coordinates)": "world"}
# The per-frame plots under the report: JobResult.per_frame's key → (title, y-axis title).
PLOTS = {"pen_percent": ("Penetration per frame, before / after optimisation", "Pen%"),
         "semantic_distance": ("Semantic distance per frame, before / after", "distance to the source")}

INTRO = f"""# Video → animated character
Upload a phone video of **one person** (or a BVH/FBX motion file), pick a character or upload your own rigged
character (Mixamo FBX or GLB), press **Run**, then download the animation as FBX (Blender, Unity, Unreal), GLB or BVH.

Limits: uploads up to {MAX_UPLOAD.upper()}, clips up to {MAX_CLIP_SECONDS / 60:.0f} minutes (use *Trim* in Advanced
for longer ones), one person in frame.
"""


@dataclass
class _Server:
    """What the server owner chose at start-up, and the one folder where this server keeps its files.

    vlm_path: the semantic supervisor's weights (``--vlm`` / ``$SMT_VLM_PATH``); visitors never choose it.
    workspace: jobs, Blender workers' folders and Gradio's upload cache live here; removed on every exit.
    """

    vlm_path: str | None = None
    supervisor: str = ""
    workspace: Path = _WORKSPACE

    @property
    def jobs_dir(self) -> Path:
        return self.workspace / "jobs"


_server = _Server()


def _new_job_dir() -> Path:
    jobs = _server.jobs_dir
    jobs.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in jobs.iterdir():
        if now - old.stat().st_mtime > JOB_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    job = jobs / uuid.uuid4().hex
    job.mkdir()
    return job


def _report_markdown(result: JobResult) -> str:
    r = result.report
    lines = [f"**{r.frames} frames** at {r.fps:g} fps onto **{r.character}** ({r.height:.2f} m); "
             f"retargeter: {r.retargeter}."]
    if r.supervisor:
        lines.append(f"Semantic supervisor: {r.supervisor}.")
    for key in ("pen_percent", "semantic_distance", "jdm_error"):
        if key in r.metrics:
            m, label = r.metrics[key], METRIC_LABELS[key]
            lines.append(f"{label}: {m.before:.3g} before → {m.after:.3g} after optimisation." if m.after is not None
                         else f"{label}: {m.before:.3g}.")
    if r.measured_on:
        lines.append(f"Measured: {r.measured_on}.")
    for note in r.warnings:
        lines.append(f"Note: {note}")
    lines.append("Time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.seconds.items())
                 + f" (total {sum(r.seconds.values()):.1f} s).")
    return "\n\n".join(lines)


def run_from_page(video: str | None, motion_file: str | None, character: str, character_file: str | None,
                  semantic: bool, smoothing: float, foot_locking: bool, iterations: int,
                  trim_start: float, trim_end: float, root: str = "origin", skeleton_only: bool = False,
                  progress: gr.Progress = gr.Progress()):
    source = motion_file or video
    if not source:
        raise gr.Error("Upload a video (or a BVH/FBX motion file), or press 'Use the sample clip'.", duration=None)
    if character_file and Path(character_file).suffix.lower() not in CHARACTER_SUFFIXES:
        raise gr.Error(f"A character must be an .fbx or .glb file, not {Path(character_file).suffix or 'that'}.",
                       duration=None)
    job = _new_job_dir()
    try:
        spec = JobSpec(source=Path(source), out_dir=job / "out", character=character_file or character,
                       semantic=semantic, vlm_path=_server.vlm_path, smoothing=smoothing, foot_locking=foot_locking,
                       iterations=int(iterations), root=ROOT_CHOICES.get(root, root),
                       skeleton_only=bool(skeleton_only),
                       trim=(float(trim_start or 0), float(trim_end)) if trim_end else None)
        result = run_job(spec, progress=lambda f, stage: progress(f, desc=stage))
    except InputError as e:
        shutil.rmtree(job, ignore_errors=True)
        raise gr.Error(str(e), duration=None, title="Cannot use this input") from None
    except Exception as e:  # a bug: keep the traceback in the server log, tell the user in plain words
        shutil.rmtree(job, ignore_errors=True)
        log.exception("job failed")
        raise gr.Error(f"The job failed unexpectedly ({type(e).__name__}: {e}). The server keeps running; "
                       "please report this with the input file.", duration=None) from None
    files = result.report.files
    downloads = [str(files[k]) for k in ("fbx", "glb", "bvh") if k in files]
    plots = [result.report.per_frame_table(name) for name in PLOTS]
    return (str(files["overlay"]) if "overlay" in files else None, str(files["preview"]),
            str(files["glb"]) if "glb" in files else None, downloads, _report_markdown(result),
            *(gr.LinePlot(value=plot, visible=plot is not None) for plot in plots))


def build_app() -> gr.Blocks:
    names = builtin_character_names()
    if not _server.supervisor:
        from core.semantics import select_supervisor

        _server.supervisor = select_supervisor(_server.vlm_path).description
    with gr.Blocks(title="SMT: video to animated character", delete_cache=(JOB_MAX_AGE_S, JOB_MAX_AGE_S)) as demo:
        gr.Markdown(INTRO)
        gr.Markdown(f"Semantic supervisor on this server: {_server.supervisor}.",
                    elem_id="supervisor")
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="Video of one person", sources=["upload"], elem_id="video-input")
                sample = gr.Button("Use the sample clip", size="sm")
                with gr.Accordion("…or a motion file instead (BVH or animated FBX)", open=False):
                    motion_file = gr.File(label="Motion file", file_types=list(MOTION_SUFFIXES),
                                          elem_id="motion-input")
                character = gr.Dropdown(names, value=names[0] if names else None, label="Character",
                                        elem_id="character")
                character_file = gr.File(label="…or your own character (FBX/GLB)", file_types=list(CHARACTER_SUFFIXES),
                                         elem_id="character-input")
                semantic = gr.Checkbox(label="Semantic optimisation (keeps the motion's meaning, stops limbs "
                                             "cutting through the body)", value=True, elem_id="semantic")
                with gr.Accordion("Advanced", open=False):
                    smoothing = gr.Slider(0, 1, value=0.5, step=0.05, label="Smoothing strength (video)")
                    foot_locking = gr.Checkbox(value=True, label="Foot locking")
                    iterations = gr.Slider(10, 500, value=OptimizeConfig.iterations, step=10,
                                           label="Optimisation iterations (most; it stops early once converged)")
                    root = gr.Dropdown(list(ROOT_CHOICES), value=next(iter(ROOT_CHOICES)), label="Root motion",
                                       elem_id="root")
                    skeleton_only = gr.Checkbox(value=False, label="Animation only (skeleton, no mesh) in FBX/GLB",
                                                elem_id="skeleton-only")
                    with gr.Row():
                        trim_start = gr.Number(value=0, label="Trim start (s)", minimum=0)
                        trim_end = gr.Number(value=0, label="Trim end (s, 0 = whole clip)", minimum=0)
                run = gr.Button("Run", variant="primary", elem_id="run")
            with gr.Column(scale=2):
                with gr.Row():
                    source_video = gr.Video(label="Source with fitted skeleton", elem_id="source-video",
                                            interactive=False)
                    result_video = gr.Video(label="Character: before / after optimisation", elem_id="result-video",
                                            interactive=False)
                model3d = gr.Model3D(label="3D view of the result (GLB)", elem_id="model3d")
                downloads = gr.File(label="Downloads: FBX, GLB, BVH", file_count="multiple", elem_id="downloads",
                                    interactive=False)
                report = gr.Markdown(elem_id="report")
                with gr.Row():
                    plots = [gr.LinePlot(x="frame", y="value", color="series", title=title, visible=False,
                                         elem_id=f"plot-{name.replace('_', '-')}", y_title=y_title)
                             for name, (title, y_title) in PLOTS.items()]
        sample.click(lambda: str(SAMPLE_VIDEO), None, video)
        run.click(run_from_page, [video, motion_file, character, character_file, semantic, smoothing, foot_locking,
                                  iterations, trim_start, trim_end, root, skeleton_only],
                  [source_video, result_video, model3d, downloads, report, *plots], api_name="run",
                  show_progress_on=result_video)  # one progress display (stage, elapsed, estimate), not one per panel
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, block: bool = True, vlm_path: str | None = None) -> gr.Blocks:
    """Serve the page. The semantic supervisor is the server owner's choice (``vlm_path``, else
    ``$SMT_VLM_PATH``), loaded once here; visitors see which one runs and cannot change it.

    Every file the server makes (jobs, Blender workers' folders, Gradio's upload cache) lives in one workspace
    folder that is removed on exit. With ``block``, Ctrl-C or SIGTERM stops the server at once: running
    Blender workers are killed, the workspace removed, and the process exits without waiting for a job.
    """
    from core.io.blender import kill_running_workers
    from core.semantics import select_supervisor

    workspace = _server.workspace
    # Everything below tempfile's default folder (Blender workers, staging) now lands in the workspace too.
    tempfile.tempdir = str(workspace)
    _server.vlm_path = vlm_path
    _server.supervisor = select_supervisor(vlm_path).description
    log.warning("semantic supervisor: %s", _server.supervisor)
    demo = build_app()
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True,
                max_file_size=MAX_UPLOAD, prevent_thread_lock=True, quiet=not block)
    if not block:
        return demo
    print(f"Serving at http://{host}:{port} (Ctrl-C stops)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    print("stopping", flush=True)
    kill_running_workers()
    closer = threading.Thread(target=demo.close, daemon=True)
    closer.start()
    closer.join(timeout=3.0)
    shutil.rmtree(workspace, ignore_errors=True)
    # A job may still be running in a worker thread; the process ends now rather than after it.
    os._exit(0)
