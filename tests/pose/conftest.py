"""Fixtures for the pose tests: small videos the tests make themselves."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.render.video import write_mp4


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True, timeout=120)


def gradient_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """Frames with a moving pattern and an arrow-like marker at the top-left (to check orientation)."""
    frames = []
    y, x = np.mgrid[0:height, 0:width]
    for i in range(n):
        f = np.zeros((height, width, 3), np.uint8)
        f[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
        f[..., 1] = ((y + 3 * i) * 255 // max(height - 1, 1) % 256).astype(np.uint8)
        f[: height // 5, : width // 5] = 255  # bright block in the top-left corner
        frames.append(f)
    return frames


@pytest.fixture(scope="session")
def rendered_person(tmp_path_factory) -> Path:
    """A built-in character moving its limbs in front of the preview camera: 30 frames, 360x360, 20 fps."""
    from core.character_library import builtin_character_names, load_character
    from core.render.preview import render_motion_clip
    from core.retarget.copy import copy_retarget
    from core.skeleton import canonical_skeleton
    from pose.fit import BodyLengths, person_offsets
    from tests.synthetic import random_motion

    names = builtin_character_names()
    if not names:
        pytest.skip("no built-in characters in assets/")
    character = load_character(names[0])
    sk = canonical_skeleton(person_offsets(BodyLengths()))
    motion = random_motion(sk, frames=30, scale=0.3, seed=1)
    motion.root_positions[:] = sk.offsets[0]
    frames = list(render_motion_clip(character, copy_retarget(motion, character.skeleton), size=(360, 360)))
    path = tmp_path_factory.mktemp("rendered") / "person.mp4"
    write_mp4(frames, path, fps=20)
    return path
