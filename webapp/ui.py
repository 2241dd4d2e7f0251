"""The Gradio front end. It only orchestrates: every job is one call of a core.pipeline function.

For now the page retargets an uploaded BVH motion onto a built-in character; the video stages join it as
they land. Each job works in its own temp folder; folders older than an hour are removed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from core.character import builtin_character_names  # noqa: E402
from core.errors import InputError  # noqa: E402
from core.pipeline import MAX_CLIP_SECONDS, retarget_motion_file  # noqa: E402

JOBS_DIR = Path(tempfile.gettempdir()) / "smt-jobs"
JOB_MAX_AGE_S = 3600


def _new_job_dir() -> Path:
    JOBS_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in JOBS_DIR.iterdir():
        if now - old.stat().st_mtime > JOB_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    job = JOBS_DIR / uuid.uuid4().hex
    job.mkdir()
    return job


def run_retarget(motion_file: str | None, character: str, progress: gr.Progress = gr.Progress()):
    if not motion_file:
        raise gr.Error("Upload a BVH motion file first.")
    job = _new_job_dir()
    try:
        result = retarget_motion_file(motion_file, character, job / "out",
                                      progress=lambda f, stage: progress(f, desc=stage))
    except InputError as e:
        shutil.rmtree(job, ignore_errors=True)
        raise gr.Error(str(e)) from None
    report = (f"{result.source.num_frames} frames at {result.source.fps:g} fps onto {result.character.name} "
              f"({result.character.height:.2f} m). Time: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()))
    return str(result.video_path), str(result.bvh_path), report


def build_app() -> gr.Blocks:
    names = builtin_character_names()
    with gr.Blocks(title="SMT motion retargeting") as demo:
        gr.Markdown("# Motion → character\nUpload a BVH motion, pick a character, press Run. "
                    f"Clips up to {MAX_CLIP_SECONDS / 60:.0f} minutes. Video input arrives with the pose stage.")
        with gr.Row():
            with gr.Column():
                motion = gr.File(label="Motion (.bvh)", file_types=[".bvh"])
                character = gr.Dropdown(names, value=names[0] if names else None, label="Character")
                run = gr.Button("Run", variant="primary")
            with gr.Column():
                video = gr.Video(label="Before / after")
                bvh = gr.File(label="Download BVH")
                report = gr.Markdown()
        run.click(run_retarget, [motion, character], [video, bvh, report])
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860) -> None:
    demo = build_app()
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True)
