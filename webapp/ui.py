"""The Gradio front end. It only orchestrates: every job is one call of :func:`jobs.run_job`.

Each job works in its own folder in the server's workspace (removed when the server stops); a failed job's
folder is removed at once, finished ones after an hour (Gradio keeps its own copies of what the page shows,
cleaned by ``delete_cache``). Jobs go through Gradio's queue, one at a time on this 2-core class of machine, so
any number of users can submit. Visitors never name a path or a model: the supervisor is the server owner's.

Cancelling: a job runs in a worker thread with a :class:`jobs.CancelToken` in its progress callback. The Cancel
button, Gradio's own cancellation of the event (the button's ``cancels=``, an API client's ``job.cancel()``) and a
page that goes away (``unload``) all set it, and kill the job's Blender worker; the job stops within about two
seconds, its folder is removed, and only then does the queue's slot free for the next job.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
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

from core.character_library import builtin_character_names, user_character_names  # noqa: E402
from core.errors import InputError  # noqa: E402
from core.limits import MAX_CLIP_SECONDS  # noqa: E402
from core.optimize import OptimizeConfig  # noqa: E402
from jobs import (METRIC_LABELS, MOTION_SUFFIXES, SAMPLE_VIDEO, CancelToken, JobResult,  # noqa: E402
                  JobSpec, plain_summary, run_job)

log = logging.getLogger(__name__)
JOB_MAX_AGE_S = 3600
MAX_UPLOAD = "200mb"
CHARACTER_SUFFIXES = (".fbx", ".glb")
# The page's words for core.motion.place_root's placements.
ROOT_CHOICES = {"Starts at the origin": "origin", "In place (no travel)": "in_place",
                "As captured (world coordinates)": "world"}
# The page's words for core.io.export's FBX targets.
FBX_TARGET_CHOICES = {"Unity (Mixamo layout)": "unity", "Unreal Engine (root bone for root motion)": "unreal",
                      "Blender (Z up, metres)": "blender"}
# The per-frame plots under the report: JobResult.per_frame's key → (title, y-axis title).
PLOTS = {"pen_percent": ("Penetration per frame, before / after optimisation", "Pen%"),
         "semantic_distance": ("Semantic distance per frame, before / after", "distance to the source")}

INTRO = f"""# Video → animated character
Upload a phone video of a person (or a BVH/FBX motion file), pick a character or upload your own rigged
character (Mixamo FBX or GLB), press **Run**, then download the animation as FBX (Blender, Unity, Unreal), GLB or BVH.

Limits: uploads up to {MAX_UPLOAD.upper()}, clips up to {MAX_CLIP_SECONDS / 60:.0f} minutes (use *Trim* in Advanced
for longer ones). With several people in view, the page shows them numbered under your video: pick who to follow.
"""
AUTO_PERSON = "auto"  # the person choice's value for "let the tracker choose" (the largest, most central)


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


def _report_markdown(result: JobResult, character_note: str = "") -> str:
    """Plain sentences first (:func:`jobs.plain_summary`); the numbers under a fold for those who want them."""
    r = result.report
    summary = plain_summary(r)
    if summary and character_note:
        summary[0] = summary[0].replace(r.character or "", f"**{r.character}** ({character_note})", 1)
    notes = [f"Note: {note}" for note in r.warnings]
    details = [f"{r.frames} frames at {r.fps:g} fps onto {r.character} ({r.height:.2f} m); "
               f"retargeter: {r.retargeter}."] if r.character else [f"{r.frames} frames at {r.fps:g} fps."]
    if r.supervisor:
        details.append(f"Semantic supervisor: {r.supervisor}.")
    if r.semantic_source:
        details.append(f"Source semantics from: {r.semantic_source}.")
    for key in ("pen_percent", "semantic_distance", "scl", "fid", "itm", "jdm_error", "contacts_kept", "jitter"):
        if key in r.metrics:
            m, label = r.metrics[key], METRIC_LABELS[key]
            if m.before != m.before:  # NaN: nothing to measure (no hand contacts in the source)
                continue
            details.append(f"{label}: {m.before:.3g} before → {m.after:.3g} after optimisation." if m.after is not None
                           else f"{label}: {m.before:.3g}.")
    if r.measured_on:
        details.append(f"Measured: {r.measured_on}.")
    if r.semantic_measured_on:
        details.append(f"Measured: {r.semantic_measured_on}.")
    details.append("Time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.seconds.items())
                   + f" (total {sum(r.seconds.values()):.1f} s).")
    # Markdown inside <details> needs the blank lines around it to be parsed as Markdown.
    return ("\n\n".join(summary + notes) + "\n\n<details><summary>Details: the numbers</summary>\n\n"
            + "\n\n".join(details) + "\n\n</details>")


# ----------------------------------------------------------------------------------------------------------
# Running and cancelling jobs
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _RunningJob:
    token: CancelToken
    finished: threading.Event


_running: dict[str, _RunningJob] = {}  # browser session → its job (Gradio runs one job at a time)
_running_lock = threading.Lock()


def _cancel(job: _RunningJob, reason: str) -> None:
    from core.io.blender import kill_running_workers

    job.token.cancel(reason)
    # The job's Blender worker (export, or reading an uploaded character) is a process: killing it ends the wait
    # at once. It can only be this job's: run and "save character" share one queue slot (concurrency_id "job").
    kill_running_workers()


def _run_job_for_page(token: CancelToken, video: str | None, motion_file: str | None, character: str,
                      character_file: str | None, semantic: bool, smoothing: float, foot_locking: bool,
                      iterations: int, trim_start: float, trim_end: float, root: str, skeleton_only: bool,
                      fbx_target: str, person: str | None, progress, hands: bool = False) -> tuple:
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
                       skeleton_only=bool(skeleton_only), person=_person_number(person), hands=bool(hands),
                       fbx_target=FBX_TARGET_CHOICES.get(fbx_target, fbx_target or "unity"),
                       trim=(float(trim_start or 0), float(trim_end)) if trim_end else None)
        result = run_job(spec, progress=token.guard(lambda f, stage: progress(f, desc=stage)))
        token.check()  # cancelled as it finished: the user asked for nothing, so nothing is kept
    except Exception as e:
        shutil.rmtree(job, ignore_errors=True)
        if token.cancelled:  # whatever the cancel interrupted (a killed Blender worker's error included)
            # Not an error toast: the user asked for it. The panels empty and the report says what happened.
            return (None, None, None, None, f"The job was {token.reason}; its files were removed.",
                    *(gr.LinePlot(value=None, visible=False) for _ in PLOTS))
        if isinstance(e, InputError):
            raise gr.Error(str(e), duration=None, title="Cannot use this input") from None
        # A bug: keep the traceback in the server log, tell the user in plain words.
        log.exception("job failed")
        raise gr.Error(f"The job failed unexpectedly ({type(e).__name__}: {e}). The server keeps running; "
                       "please report this with the input file.", duration=None) from None
    files = result.report.files
    downloads = [str(files[k]) for k in ("fbx", "glb", "bvh") if k in files]
    plots = [result.report.per_frame_table(name) for name in PLOTS]
    note = ("your file " + Path(character_file).name) if character_file else (
        "saved character" if character in user_character_names() else "built-in character")
    return (str(files["overlay"]) if "overlay" in files else None, str(files["preview"]),
            str(files["glb"]) if "glb" in files else None, downloads, _report_markdown(result, note),
            *(gr.LinePlot(value=plot, visible=plot is not None) for plot in plots))


async def run_from_page(video: str | None, motion_file: str | None, character: str, character_file: str | None,
                        semantic: bool, smoothing: float, foot_locking: bool, iterations: int,
                        trim_start: float, trim_end: float, root: str = "origin", skeleton_only: bool = False,
                        fbx_target: str = "unity", person: str | None = AUTO_PERSON, hands: bool = False,
                        progress: gr.Progress = gr.Progress(), request: gr.Request = None):
    """One job from the page (or the API), in a worker thread this coroutine waits for. Gradio cancels the event by
    cancelling this coroutine; a thread cannot be cancelled, so the job's token is set instead, and the coroutine
    waits for the thread to stop before it lets the queue start the next job."""
    job = _RunningJob(CancelToken(), threading.Event())
    session = request.session_hash if request is not None and request.session_hash else uuid.uuid4().hex
    with _running_lock:
        _running[session] = job
    work = asyncio.ensure_future(asyncio.to_thread(
        _run_job_for_page, job.token, video, motion_file, character, character_file, semantic, smoothing,
        foot_locking, iterations, trim_start, trim_end, root, skeleton_only, fbx_target, person, progress, hands))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        _cancel(job, "cancelled")
        await asyncio.wait([work])
        raise
    finally:
        with _running_lock:
            if _running.get(session) is job:
                del _running[session]
        job.finished.set()


def cancel_from_page(request: gr.Request = None) -> str:
    """The Cancel button: stop this browser's running job and say so once it has stopped (a job still waiting in
    the queue is dropped by Gradio itself, through the button's ``cancels=``)."""
    with _running_lock:
        job = _running.get(request.session_hash) if request is not None else None
    if job is None:
        return "Cancelled (no job of yours was running)."
    t = time.perf_counter()
    _cancel(job, "cancelled")
    stopped = job.finished.wait(timeout=30)
    return (f"Cancelled: the job stopped after {time.perf_counter() - t:.1f} s and its files were removed." if stopped
            else "Cancelling: the job is still stopping.")


def _page_closed(request: gr.Request = None) -> None:
    """A page that went away (tab closed, reloaded) takes its job with it: nobody will see the result."""
    with _running_lock:
        job = _running.get(request.session_hash) if request is not None else None
    if job is not None:
        log.warning("page closed: cancelling its job")
        _cancel(job, "cancelled because its page was closed")


# ----------------------------------------------------------------------------------------------------------
# The input video's preview, and the user's characters
# ----------------------------------------------------------------------------------------------------------

def input_preview(video: str | None) -> gr.Video:
    """What the input panel plays: the upload itself when browsers can play it, else a small H.264 copy (an
    MPEG-4 Part 2 or HEVC clip shows a blank panel and "Video not playable" otherwise). The job always reads the
    upload itself."""
    from core.render.video import VideoWriteError, browser_playable, write_browser_preview

    if not video:
        return gr.Video(value=None, visible=False)
    if browser_playable(video):
        return gr.Video(value=video, visible=True)
    folder = _server.workspace / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{uuid.uuid4().hex}.mp4"
    try:
        write_browser_preview(video, out)
    except VideoWriteError as e:
        gr.Warning(f"No preview: {e}. The job may still be able to read it.")
        return gr.Video(value=None, visible=False)
    return gr.Video(value=str(out), visible=True)


def _person_number(person: str | int | None) -> int | None:
    """The person choice's value as the job's ``person``: None for automatic, else the number (1..)."""
    if person in (None, "", AUTO_PERSON):
        return None
    try:
        return int(person)
    except (TypeError, ValueError):
        raise gr.Error("Pick a person by their number, or leave it on Automatic.", duration=None) from None


def _no_people_choice(note: str = "") -> tuple:
    return (gr.Image(value=None, visible=False), gr.Radio(choices=[("Automatic", AUTO_PERSON)], value=AUTO_PERSON,
                                                          visible=False), note)


def people_for_page(video: str | None, trim_start: float | None) -> tuple:
    """The people a job on this video would choose from (:func:`pose.pipeline.find_people`: the first frame with
    anyone in it, from the trim start): with two or more, the frame with numbered boxes and a choice of who to
    follow, left on Automatic (the largest, most central; the report then warns) until the user picks."""
    from pose.overlay import people_picture
    from pose.pipeline import find_people

    if not video:
        return _no_people_choice()
    try:
        people = find_people(video, trim=(float(trim_start or 0), None))
    except InputError:
        return _no_people_choice()  # the job says what is wrong with the file, in its own words
    if people.count < 2:
        return _no_people_choice()
    picture = people_picture(people.rgb, people.boxes, people.suggested)
    choices = ([(f"Automatic (person {people.suggested}: the largest, most central)", AUTO_PERSON)]
               + [(f"Person {k}", str(k)) for k in range(1, people.count + 1)])
    note = (f"**{people.count} people are in view** (at {people.time:.1f} s, numbered left to right). Pick who to "
            f"follow; the job keeps to that person through the clip.")
    return (gr.Image(value=picture, visible=True, label=f"{people.count} people in view at {people.time:.1f} s"),
            gr.Radio(choices=choices, value=AUTO_PERSON, visible=True), note)


def _character_choices() -> list[tuple[str, str]]:
    """The dropdown: built-in characters, then the ones saved into the library (``$SMT_HOME/characters``)."""
    return ([(n, n) for n in builtin_character_names()]
            + [(f"{n} (saved)", n) for n in user_character_names()])


def _library_name(file_name: str) -> str:
    """A library name from an uploaded file's name: the characters save_user_character accepts, and never a
    built-in's name (which it refuses)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(file_name).stem).strip("_.-")[:56] or "character"
    if not name[0].isalnum():
        name = "c" + name
    if name.lower() in (n.lower() for n in builtin_character_names()):
        name += "_own"
    return name


def save_character(character_file: str | None):
    """"Save to my characters": import the uploaded FBX/GLB (Blender's worker checks it), keep it in the library,
    and select it. Returns the dropdown, the cleared upload and a message."""
    from core.character_library import save_user_character
    from core.io.character_import import import_character

    if not character_file:
        raise gr.Error("Upload your character's FBX or GLB first, then save it.", duration=None)
    if Path(character_file).suffix.lower() not in CHARACTER_SUFFIXES:
        raise gr.Error(f"A character must be an .fbx or .glb file, not {Path(character_file).suffix or 'that'}.",
                       duration=None)
    name = _library_name(Path(character_file).name)
    replaced = name in user_character_names()
    try:
        save_user_character(import_character(character_file, name=name), name)
    except InputError as e:
        raise gr.Error(str(e), duration=None, title="Cannot use this character") from None
    message = (f"Saved **{name}** to your characters"
               + (" (replacing the earlier one of that name)" if replaced else "")
               + ": it is selected below and stays in the list after a restart.")
    return gr.Dropdown(choices=_character_choices(), value=name, interactive=True, info=None), None, message


def _character_file_changed(character_file: str | None):
    """While an uploaded character file is there, it is what the job uses: the dropdown says so and is locked."""
    if character_file:
        return gr.Dropdown(interactive=False, info=f"Your file {Path(character_file).name} is used instead.")
    return gr.Dropdown(interactive=True, info=None)


def _retargeter_line() -> str:
    """Which retargeter this server's jobs use and under which licence (from its checkpoint): what a user downloads
    is made with it, and the shipped network was trained on non-commercial data."""
    from core.retarget.model import load_retargeter

    retargeter = load_retargeter()
    licence = getattr(retargeter, "meta", {}).get("licence")
    if licence is None:
        return f"Retargeter on this server: {retargeter.reason or retargeter.name}."
    return (f"Retargeter on this server: {retargeter.reason}. **Licence of the results: {licence}** "
            "(see assets/retarget/MODEL_CARD.md).")


def build_app() -> gr.Blocks:
    choices = _character_choices()
    if not _server.supervisor:
        from core.semantics import select_supervisor

        _server.supervisor = select_supervisor(_server.vlm_path).description
    with gr.Blocks(title="SMT: video to animated character", delete_cache=(JOB_MAX_AGE_S, JOB_MAX_AGE_S)) as demo:
        gr.Markdown(INTRO)
        gr.Markdown(f"Semantic supervisor on this server: {_server.supervisor}.",
                    elem_id="supervisor")
        gr.Markdown(_retargeter_line(), elem_id="licence")
        with gr.Row():
            with gr.Column(scale=1):
                video_file = gr.File(label="Video of a person", file_types=["video"], elem_id="video-file")
                video = gr.Video(label="Your video (preview)", interactive=False, elem_id="video-input", visible=False)
                sample = gr.Button("Use the sample clip", size="sm")
                people_note = gr.Markdown(elem_id="people-note")
                people_image = gr.Image(label="People in view", interactive=False, visible=False, type="numpy",
                                        elem_id="people-image")
                person = gr.Radio([("Automatic", AUTO_PERSON)], value=AUTO_PERSON, label="Follow this person",
                                  visible=False, elem_id="person")
                with gr.Accordion("…or a motion file instead (BVH or animated FBX)", open=False):
                    motion_file = gr.File(label="Motion file", file_types=list(MOTION_SUFFIXES),
                                          elem_id="motion-input")
                character = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Character",
                                        elem_id="character")
                character_file = gr.File(label="…or your own character (FBX/GLB)", file_types=list(CHARACTER_SUFFIXES),
                                         elem_id="character-input")
                save = gr.Button("Save to my characters", size="sm", elem_id="save-character")
                saved = gr.Markdown(elem_id="character-status")
                semantic = gr.Checkbox(label="Semantic optimisation (keeps the motion's meaning, stops limbs "
                                             "cutting through the body)", value=True, elem_id="semantic")
                with gr.Accordion("Advanced", open=False):
                    hands = gr.Checkbox(value=False, label="Hands and fingers (video; characters with finger "
                                                          "bones move them)", elem_id="hands")
                    smoothing = gr.Slider(0, 1, value=0.5, step=0.05, label="Smoothing strength (video)")
                    foot_locking = gr.Checkbox(value=True, label="Foot locking")
                    iterations = gr.Slider(10, 500, value=OptimizeConfig.iterations, step=10,
                                           label="Optimisation iterations (most; it stops early once converged)")
                    root = gr.Dropdown(list(ROOT_CHOICES), value=next(iter(ROOT_CHOICES)), label="Root motion",
                                       elem_id="root")
                    skeleton_only = gr.Checkbox(value=False, label="Animation only (skeleton, no mesh) in FBX/GLB",
                                                elem_id="skeleton-only")
                    fbx_target = gr.Dropdown(list(FBX_TARGET_CHOICES), value=next(iter(FBX_TARGET_CHOICES)),
                                             label="FBX for", elem_id="fbx-target")
                    with gr.Row():
                        trim_start = gr.Number(value=0, label="Trim start (s)", minimum=0)
                        trim_end = gr.Number(value=0, label="Trim end (s, 0 = whole clip)", minimum=0)
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run")
                    cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Markdown(elem_id="job-status")
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
        sample.click(lambda: str(SAMPLE_VIDEO), None, video_file)
        video_file.change(input_preview, video_file, video, api_name=False)
        # Its own queue slot: listing the people takes a second or two and must not wait behind a running job.
        for event in (video_file.change, trim_start.change):
            event(people_for_page, [video_file, trim_start], [people_image, person, people_note], api_name=False,
                  concurrency_id="people", concurrency_limit=1)
        character_file.change(_character_file_changed, character_file, character, api_name=False)
        # "Save" and jobs share one queue slot: both run Blender, and Cancel kills the Blender workers it finds.
        save.click(save_character, character_file, [character, character_file, saved], api_name="save_character",
                   concurrency_id="job", concurrency_limit=1)
        running = run.click(lambda: "", None, status, queue=False, api_name=False).then(
            run_from_page, [video_file, motion_file, character, character_file, semantic, smoothing, foot_locking,
                            iterations, trim_start, trim_end, root, skeleton_only, fbx_target, person, hands],
            [source_video, result_video, model3d, downloads, report, *plots], api_name="run",
            concurrency_id="job", concurrency_limit=1,
            show_progress_on=result_video)  # one progress display (stage, elapsed, estimate), not one per panel
        cancel.click(cancel_from_page, None, status, cancels=[running], queue=False, api_name="cancel")
        demo.load(lambda: gr.Dropdown(choices=_character_choices()), None, character, api_name=False)
        demo.unload(_page_closed)
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
    # quiet: Gradio's banner ends with "set share=True", which nobody at this server can act on; the address is
    # printed below instead.
    demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True,
                max_file_size=MAX_UPLOAD, prevent_thread_lock=True, quiet=True)
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
