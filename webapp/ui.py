"""The Gradio front end. It only orchestrates: every job is one call of :func:`jobs.run_job`.

Each job works in its own folder in the job history (:mod:`webapp.history`): a failed or cancelled job's folder
is removed at once, a finished one stays in its browser's list of jobs, with its player and downloads, until the
user removes it or the history's disk budget (the server owner's ``history_mb``) is reached, oldest first. Gradio
keeps its own copies of what the page shows, cleaned after an hour by ``delete_cache``. Jobs go through Gradio's
queue, one at a time on this 2-core class of machine, so any number of users can submit. Visitors never name a
path or a model: the supervisor is the server owner's.

The result player (``webapp/player.html``, served at ``smt/player/<job>`` beside the page) plays the job's
videos and its animated GLB with one timeline: play, pause, frame steps, scrub, speed, loop, and orbit in 3D.
Its scripts (three.js) are vendored in ``webapp/static``: the page loads nothing from the internet.

Cancelling: a job runs in a worker thread with a :class:`jobs.CancelToken` in its progress callback. The Cancel
button, Gradio's own cancellation of the event (the button's ``cancels=``, an API client's ``job.cancel()``) and a
page that goes away (``unload``) all set it, and kill the job's Blender worker; the job stops within about two
seconds, its folder is removed, and only then does the queue's slot free for the next job.
"""
from __future__ import annotations

import asyncio
import atexit
import html
import json
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
from urllib.parse import quote

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# This process's workspace, made before Gradio is imported: Gradio creates its cache folders on import, and they
# must land in the workspace to go with it.
_WORKSPACE = Path(tempfile.mkdtemp(prefix="smt-server-"))
atexit.register(shutil.rmtree, _WORKSPACE, ignore_errors=True)
os.environ.setdefault("GRADIO_TEMP_DIR", str(_WORKSPACE / "gradio"))

import gradio as gr  # noqa: E402
from fastapi import Request as HTTPRequest  # noqa: E402

from core.character_library import (builtin_character_names, is_character_file,  # noqa: E402
                                    user_character_names, user_characters_dir)
from core.errors import InputError  # noqa: E402
from core.io.character_import import IMPORT_SUFFIXES  # noqa: E402
from core.limits import MAX_CLIP_SECONDS  # noqa: E402
from core.optimize import OptimizeConfig  # noqa: E402
from jobs import (METRIC_LABELS, MOTION_SUFFIXES, SAMPLE_VIDEO, CancelToken, JobResult,  # noqa: E402
                  JobSpec, per_frame_table, plain_summary, run_job)
from pose.pipeline import DEFAULT_HANDS  # noqa: E402
from webapp.history import BROWSER_COOKIE, COOKIE_SCRIPT, NOBODY, JobEntry, JobHistory, owner_of  # noqa: E402

log = logging.getLogger(__name__)
GRADIO_COPIES_MAX_AGE_S = 3600  # Gradio's copies of shown files; the jobs themselves stay in the history
HISTORY_MB = 2048  # the job history's default disk budget
WEBAPP = Path(__file__).resolve().parent
PREVIEW_SIZE = 512  # px, each half of the before/after video: the player shows it about 900 px wide
PLAYER_HEIGHT = 560  # px: the before/after video (2:1) at about 900 px wide, the view buttons and controls
MAX_UPLOAD = "200mb"
# The page's words for core.motion.place_root's placements.
ROOT_CHOICES = {"Starts at the origin": "origin", "In place (no travel)": "in_place",
                "As captured (world coordinates)": "world"}
# The page's words for core.io.export's FBX targets.
# The retargeters a page job may use, with the licence of what each makes (MODEL_CARD.md).
RETARGETER_CHOICES = {"Graph network (non-commercial use only)": "network",
                      "Graph network trained on CMU only (commercial use allowed)": "network-cmu",
                      "Copy rotations (commercial use allowed)": "copy"}
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
    history: JobHistory | None = None


_server = _Server()


def default_history_dir() -> Path:
    """Beside the user's character library (``$SMT_HOME/jobs``, else ``~/.local/share/smt/jobs``): kept across
    restarts, as the browsers' ids are."""
    return user_characters_dir().parent / "jobs"


def _history() -> JobHistory:
    if _server.history is None:  # build_app without serve (tests, scripts): the defaults
        _server.history = JobHistory(default_history_dir(), HISTORY_MB * 2**20)
    return _server.history


def _owner(request: gr.Request | None) -> str:
    """This browser's folder in the history, from its cookie (see :mod:`webapp.history`)."""
    try:
        cookies = dict(request.cookies) if request is not None else {}
    except (AttributeError, TypeError):
        cookies = {}
    return owner_of(cookies.get(BROWSER_COOKIE))


def _report_markdown(result: JobResult, character_note: str = "") -> str:
    """Plain sentences first (:func:`jobs.plain_summary`); the numbers under a fold for those who want them."""
    r = result.report
    summary = plain_summary(r)
    if summary and character_note:
        summary[0] = summary[0].replace(r.character or "", f"**{r.character}** ({character_note})", 1)
    notes = [f"Note: {note}" for note in r.warnings]
    if r.licence:  # what the user may do with the downloads depends on the retargeter they chose
        notes.append(f"Licence of these results (from the retargeter's checkpoint): {r.licence}.")
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
_latest: dict[str, str] = {}  # browser session → the job it finished last (the player shows it next)
_running_lock = threading.Lock()


def _cancel(job: _RunningJob, reason: str) -> None:
    from core.io.blender import kill_running_workers

    job.token.cancel(reason)
    # The job's Blender worker (export, or reading an uploaded character) is a process: killing it ends the wait
    # at once. It can only be this job's: run and "save character" share one queue slot (concurrency_id "job").
    kill_running_workers()


def _run_job_for_page(token: CancelToken, owner: str, video: str | None, motion_file: str | None,
                      character: str, character_file: str | None, semantic: bool, smoothing: float,
                      foot_locking: bool, iterations: int, trim_start: float, trim_end: float, root: str,
                      skeleton_only: bool, fbx_target: str, person: str | None, progress,
                      hands: bool = DEFAULT_HANDS, retargeter: str = "network") -> tuple[tuple, JobEntry | None]:
    """The job in ``owner``'s history; returns the page's outputs and the history's entry (None: cancelled)."""
    source = motion_file or video
    if not source:
        raise gr.Error("Upload a video (or a BVH/FBX motion file), or press 'Use the sample clip'.", duration=None)
    if character_file and not is_character_file(character_file):
        raise gr.Error(f"A character must be an .fbx or .glb file, not {Path(character_file).suffix or 'that'}.",
                       duration=None)
    job = _history().new_job(owner)
    try:
        spec = JobSpec(source=Path(source), out_dir=job / "out", character=character_file or character,
                       semantic=semantic, vlm_path=_server.vlm_path, smoothing=smoothing, foot_locking=foot_locking,
                       iterations=int(iterations), root=ROOT_CHOICES.get(root, root),
                       skeleton_only=bool(skeleton_only), preview_size=PREVIEW_SIZE,
                       person=_person_number(person), hands=bool(hands),
                       retargeter=RETARGETER_CHOICES.get(retargeter, retargeter or "network"),
                       fbx_target=FBX_TARGET_CHOICES.get(fbx_target, fbx_target or "unity"),
                       trim=(float(trim_start or 0), float(trim_end)) if trim_end else None)
        result = run_job(spec, progress=token.guard(lambda f, stage: progress(f, desc=stage)))
        token.check()  # cancelled as it finished: the user asked for nothing, so nothing is kept
    except Exception as e:
        shutil.rmtree(job, ignore_errors=True)
        if token.cancelled:  # whatever the cancel interrupted (a killed Blender worker's error included)
            # Not an error toast: the user asked for it. The panels empty and the report says what happened.
            return (None, None, None, None, f"The job was {token.reason}; its files were removed.",
                    *(gr.LinePlot(value=None, visible=False) for _ in PLOTS)), None
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
    report = _report_markdown(result, note)
    shown = {kind: files[kind] for kind in ("fbx", "glb", "bvh", "preview", "overlay") if kind in files}
    entry = _history().finish(job, f"{Path(source).name} → {result.report.character}", report, shown,
                              result.report.frames, result.report.fps,
                              "Before / after optimisation" if semantic else "Source / character",
                              result.report.per_frame)
    return (str(files["overlay"]) if "overlay" in files else None, str(files["preview"]),
            str(files["glb"]) if "glb" in files else None, downloads, report,
            *(gr.LinePlot(value=plot, visible=plot is not None) for plot in plots)), entry


async def run_from_page(video: str | None, motion_file: str | None, character: str, character_file: str | None,
                        semantic: bool, smoothing: float, foot_locking: bool, iterations: int,
                        trim_start: float, trim_end: float, root: str = "origin", skeleton_only: bool = False,
                        fbx_target: str = "unity", person: str | None = AUTO_PERSON, hands: bool = DEFAULT_HANDS,
                        retargeter: str = "network", progress: gr.Progress = gr.Progress(), request: gr.Request = None):
    """One job from the page (or the API), in a worker thread this coroutine waits for. Gradio cancels the event by
    cancelling this coroutine; a thread cannot be cancelled, so the job's token is set instead, and the coroutine
    waits for the thread to stop before it lets the queue start the next job."""
    job = _RunningJob(CancelToken(), threading.Event())
    session = request.session_hash if request is not None and request.session_hash else uuid.uuid4().hex
    with _running_lock:
        _running[session] = job
        _latest.pop(session, None)
    work = asyncio.ensure_future(asyncio.to_thread(
        _run_job_for_page, job.token, _owner(request), video, motion_file, character, character_file, semantic,
        smoothing, foot_locking, iterations, trim_start, trim_end, root, skeleton_only, fbx_target, person, progress,
        hands, retargeter))
    try:
        outputs, entry = await asyncio.shield(work)
        if entry is not None:
            with _running_lock:
                _latest[session] = entry.id
        return outputs
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


def _report_after_cancel(status: str):
    return "The job was cancelled; its files were removed." if status.startswith("Cancelled:") else gr.update()


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
    if not is_character_file(character_file):
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
            "(see assets/retarget/MODEL_CARD.md). For results you may sell, choose a commercial-use retargeter "
            "under Advanced.")


# ----------------------------------------------------------------------------------------------------------
# The result player and the job history
# ----------------------------------------------------------------------------------------------------------

def _player_html(entry: JobEntry | None) -> str:
    if entry is None:
        return "<p>The result plays here once a job has finished.</p>"
    return (f'<iframe src="smt/player/{entry.id}" title="Result player: {html.escape(entry.title)}" '
            f'style="width:100%;height:{PLAYER_HEIGHT}px;border:0"></iframe>')


def _jobs_dropdown(owner: str, value: str | None = None) -> gr.Dropdown:
    choices = [(e.label, e.id) for e in _history().list(owner)]
    if value not in {c[1] for c in choices}:
        value = None
    return gr.Dropdown(choices=choices, value=value,
                       info=None if choices else "None yet: finished jobs are listed here.")


def _load_jobs(request: gr.Request = None) -> gr.Dropdown:
    return _jobs_dropdown(_owner(request))


def _show_latest(request: gr.Request = None):
    """After a run: the player shows the job it finished (nothing after a cancel), and the list has it first."""
    owner = _owner(request)
    with _running_lock:
        job_id = _latest.pop(request.session_hash, None) if request is not None else None
    if job_id is not None and owner == NOBODY:
        return ("<p>This browser keeps no cookies, which the player and the list of your jobs need: use the "
                "downloads below.</p>", _jobs_dropdown(owner))
    return _player_html(_history().get(owner, job_id)), _jobs_dropdown(owner, job_id)


def open_job(job_id: str | None, request: gr.Request = None):
    """A job from this browser's list: its player, downloads, report and plots."""
    entry = _history().get(_owner(request), job_id)
    if entry is None:
        raise gr.Error("That job is not in this browser's list any more (removed, or the server's space for "
                       "results ran out).", duration=None)
    downloads = [str(entry.path(k)) for k in ("fbx", "glb", "bvh") if k in entry.files]
    plots = [per_frame_table(entry.plots.get(name)) for name in PLOTS]
    return (_player_html(entry), downloads, entry.report,
            *(gr.LinePlot(value=plot, visible=plot is not None) for plot in plots))


def remove_job(job_id: str | None, request: gr.Request = None):
    owner = _owner(request)
    removed = _history().remove(owner, job_id)
    message = "Removed the job and its files from the server." if removed else "Choose one of your jobs first."
    return _jobs_dropdown(owner), _player_html(None), None, message


def _add_routes(app) -> None:
    """The player and the files it plays, beside Gradio's routes: only to the browser whose job it is (its
    cookie), and only the files the job recorded; three.js from ``webapp/static``."""
    from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles

    template = (WEBAPP / "player.html").read_text()
    not_found = PlainTextResponse("No such job of this browser's.", status_code=404)
    # Belt and braces for "nothing from the internet": the player may only load what this server serves.
    policy = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data: blob:; media-src 'self'; connect-src 'self' data: blob:")

    def player(job_id: str, request: HTTPRequest):
        entry = _history().get(owner_of(request.cookies.get(BROWSER_COOKIE)), job_id)
        if entry is None:
            return not_found

        def url(kind: str) -> str | None:
            return f"../jobs/{entry.id}/{quote(entry.files[kind])}" if kind in entry.files else None

        job = {"frames": entry.frames, "fps": entry.fps, "result": url("preview"), "source": url("overlay"),
               "glb": url("glb"), "result_label": entry.preview_label}
        page = template.replace("__JOB__", json.dumps(job).replace("</", "<\\/"))
        return HTMLResponse(page, headers={"Content-Security-Policy": policy, "Cache-Control": "no-store"})

    def job_file(job_id: str, name: str, request: HTTPRequest):
        path = _history().file(owner_of(request.cookies.get(BROWSER_COOKIE)), job_id, name)
        if path is None:
            return not_found
        return FileResponse(path, headers={"Cache-Control": "private, no-cache"})  # serves Range: the player seeks

    app.add_api_route("/smt/player/{job_id}", player, methods=["GET"], include_in_schema=False)
    app.add_api_route("/smt/jobs/{job_id}/{name}", job_file, methods=["GET"], include_in_schema=False)
    app.mount("/smt/static", StaticFiles(directory=WEBAPP / "static"), name="smt-static")


def build_app() -> gr.Blocks:
    choices = _character_choices()
    if not _server.supervisor:
        from core.semantics import select_supervisor

        _server.supervisor = select_supervisor(_server.vlm_path).description
    budget = _history().budget_bytes / 2**30
    with gr.Blocks(title="SMT: video to animated character",
                   delete_cache=(GRADIO_COPIES_MAX_AGE_S, GRADIO_COPIES_MAX_AGE_S)) as demo:
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
                character_file = gr.File(label="…or your own character (FBX/GLB)", file_types=list(IMPORT_SUFFIXES),
                                         elem_id="character-input")
                save = gr.Button("Save to my characters", size="sm", elem_id="save-character")
                saved = gr.Markdown(elem_id="character-status")
                semantic = gr.Checkbox(label="Semantic optimisation (keeps the motion's meaning, stops limbs "
                                             "cutting through the body)", value=True, elem_id="semantic")
                with gr.Accordion("Advanced", open=False):
                    hands = gr.Checkbox(value=DEFAULT_HANDS, label="Hands and fingers (video; characters with finger "
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
                    retargeter_choice = gr.Dropdown(list(RETARGETER_CHOICES), value=next(iter(RETARGETER_CHOICES)),
                                                    label="Retargeter (and the licence of the results)",
                                                    elem_id="retargeter")
                    with gr.Row():
                        trim_start = gr.Number(value=0, label="Trim start (s)", minimum=0)
                        trim_end = gr.Number(value=0, label="Trim end (s, 0 = whole clip)", minimum=0)
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run")
                    cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Markdown(elem_id="job-status")
                with gr.Accordion("Your jobs", open=True):
                    jobs = gr.Dropdown([], label="Finished jobs (choose one to open it)", elem_id="history",
                                       allow_custom_value=False)
                    remove = gr.Button("Remove this job", size="sm", elem_id="remove-job")
                    gr.Markdown(f"Only this browser sees its jobs. They stay on the server, with their downloads, "
                                f"until you remove them or its space for results ({budget:.3g} GB) runs out, "
                                "oldest first.", elem_id="history-note")
            with gr.Column(scale=3):
                # The player: before/after, the source with its skeleton, and the 3D character on one timeline.
                player = gr.HTML(_player_html(None), elem_id="player", min_height=120)
                # The videos and the GLB as files, for API clients (the page shows them in the player).
                with gr.Row(visible=False):
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
                            iterations, trim_start, trim_end, root, skeleton_only, fbx_target, person, hands,
                            retargeter_choice],
            [source_video, result_video, model3d, downloads, report, *plots], api_name="run",
            concurrency_id="job", concurrency_limit=1,
            show_progress_on=player)  # one progress display (stage, elapsed, estimate), not one per panel
        running.success(_show_latest, None, [player, jobs], api_name=False, queue=False)
        # The report says so too: whether the run's own outputs arrive (it saw its token) or Gradio cancelled the
        # event first (no outputs) is a race.
        cancel.click(cancel_from_page, None, status, cancels=[running], queue=False, api_name="cancel").then(
            _report_after_cancel, status, report, queue=False, api_name=False)
        jobs.input(open_job, jobs, [player, downloads, report, *plots], api_name=False, queue=False)
        remove.click(remove_job, jobs, [jobs, player, downloads, report], api_name=False, queue=False)
        demo.load(lambda: gr.Dropdown(choices=_character_choices()), None, character, api_name=False)
        demo.load(_load_jobs, None, jobs, api_name=False)
        demo.unload(_page_closed)
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, block: bool = True, vlm_path: str | None = None,
          history_dir: str | os.PathLike | None = None, history_mb: float = HISTORY_MB) -> gr.Blocks:
    """Serve the page. The semantic supervisor is the server owner's choice (``vlm_path``, else
    ``$SMT_VLM_PATH``), loaded once here; visitors see which one runs and cannot change it.

    Finished jobs are kept per browser in ``history_dir`` (default :func:`default_history_dir`, kept across
    restarts) within ``history_mb`` megabytes, oldest removed first. Gradio may hand out files from it
    (``allowed_paths``): their paths hold the browser's hashed id and the job's 128-bit id, which only that
    browser is told.

    Every other file the server makes (Blender workers' folders, Gradio's upload cache and copies, input
    previews) lives in one workspace folder that is removed on exit. With ``block``, Ctrl-C or SIGTERM stops the
    server at once: running Blender workers are killed, the workspace removed, and the process exits without
    waiting for a job.
    """
    from core.io.blender import kill_running_workers
    from core.semantics import select_supervisor

    workspace = _server.workspace
    # Everything below tempfile's default folder (Blender workers, staging) now lands in the workspace too.
    tempfile.tempdir = str(workspace)
    _server.vlm_path = vlm_path
    _server.supervisor = select_supervisor(vlm_path).description
    if history_mb < 0:
        raise InputError(f"the job history's budget must be 0 MB or more, got {history_mb:g}")
    _server.history = JobHistory(Path(history_dir) if history_dir else default_history_dir(), history_mb * 2**20)
    _server.history.root.mkdir(parents=True, exist_ok=True)
    _server.history.remove_unfinished()
    log.warning("semantic supervisor: %s", _server.supervisor)
    demo = build_app()
    demo.queue(default_concurrency_limit=1, max_size=32)
    # quiet: Gradio's banner ends with "set share=True", which nobody at this server can act on; the address is
    # printed below instead.
    demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True,
                max_file_size=MAX_UPLOAD, prevent_thread_lock=True, quiet=True,
                allowed_paths=[str(_server.history.root)], head=COOKIE_SCRIPT)
    _add_routes(demo.server_app)
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
