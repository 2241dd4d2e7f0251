"""What the front ends call: one function per user-level job, with a progress callback.

The CLI (app.py) and the web app only orchestrate: they call these and show the result or the InputError.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .character import Character, load_character
from .errors import InputError
from .io.bvh import read_bvh, write_bvh
from .io.files import staged_output_dir
from .motion import Motion
from .retarget.copy import copy_retarget

__all__ = ["RetargetResult", "retarget_motion_file", "MAX_CLIP_SECONDS", "Progress"]

Progress = Callable[[float, str], None]
MAX_CLIP_SECONDS = 600.0  # longer clips must be trimmed first: rendering and export time grow with length


def _no_progress(fraction: float, stage: str) -> None:
    pass


@dataclass
class RetargetResult:
    """Files and data of one retargeting job.

    bvh_path: the motion on the character's skeleton.
    video_path: before/after H.264 mp4 (None when rendering was skipped).
    source, result: the motions on the source rig and on the character.
    seconds: wall time per stage.
    """

    bvh_path: Path
    video_path: Path | None
    source: Motion
    result: Motion
    character: Character
    seconds: dict[str, float] = field(default_factory=dict)


def check_clip_length(motion: Motion) -> None:
    if motion.duration > MAX_CLIP_SECONDS:
        raise InputError(f"the clip is {motion.duration / 60:.1f} minutes long; the limit is "
                         f"{MAX_CLIP_SECONDS / 60:.0f} minutes: trim it first")


def retarget_motion_file(motion_path: str | Path, character: str | Character, out_dir: str | Path, *,
                         render: bool = True, video_size: int = 512, progress: Progress = _no_progress) -> RetargetResult:
    """Retarget a BVH file onto a character; write ``result.bvh`` and ``before_after.mp4`` into ``out_dir``.

    Raises:
        InputError: unreadable motion file, unknown character, unmappable rig, clip too long, unwritable folder.
    """
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "reading motion")
    source = read_bvh(motion_path)
    check_clip_length(source)
    char = load_character(character) if isinstance(character, str) else character
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.2, "retargeting")
    result = copy_retarget(source, char.skeleton)
    seconds["retarget"] = time.perf_counter() - t

    with staged_output_dir(out_dir) as stage:
        t = time.perf_counter()
        progress(0.3, "writing BVH")
        write_bvh(result, stage / "result.bvh")
        seconds["write_bvh"] = time.perf_counter() - t
        video = None
        if render:
            from .render.preview import write_before_after  # GL context only when a video is wanted

            t = time.perf_counter()
            progress(0.4, "rendering")
            write_before_after(stage / "before_after.mp4", (None, source), (char, result), size=video_size)
            seconds["render"] = time.perf_counter() - t
            video = Path(out_dir) / "before_after.mp4"
    progress(1.0, "done")
    return RetargetResult(Path(out_dir) / "result.bvh", video, source, result, char, seconds)
