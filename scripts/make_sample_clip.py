"""Make the bundled sample video: a built-in character waving, turning and squatting (assets/samples/).

    python scripts/make_sample_clip.py

The web page offers it to users who have no clip at hand; the tests and benchmarks use it as a video the
repo makes itself. MediaPipe detects the rendered figure in every frame.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.character_library import load_character
from core.motion import Motion  # noqa: E402
from core.render.preview import render_motion_clip  # noqa: E402
from core.render.video import write_mp4  # noqa: E402
from core.retarget.copy import ground_feet  # noqa: E402
from core.skeleton import CANONICAL_JOINTS  # noqa: E402

SAMPLES_DIR = ROOT / "assets" / "samples"


def _about(axis: tuple[float, float, float], degrees: np.ndarray) -> np.ndarray:
    """``(T, 4)`` quaternions turning ``degrees (T,)`` about ``axis``."""
    a = np.radians(np.asarray(degrees, float))[:, None] / 2
    return np.concatenate([np.cos(a), np.sin(a) * np.asarray(axis, float) / np.linalg.norm(axis)], axis=1)


def wave_turn_squat(skeleton, seconds: float = 6.0, fps: float = 30.0) -> Motion:
    """Arms down, right hand waves, body turns a little, then a squat: varied but easy to see."""
    T = int(seconds * fps)
    t = np.arange(T) / fps
    q = np.zeros((T, 22, 4))
    q[..., 0] = 1

    def put(name: str, rotation: np.ndarray) -> None:
        q[:, CANONICAL_JOINTS.index(name)] = rotation

    ramp = np.clip(t / 1.0, 0, 1)  # raise the arm during the first second
    squat = np.clip(np.sin(np.pi * (t - 3.5) / 2.0), 0, None) * (t > 3.5)  # one squat from 3.5 s to 5.5 s
    put("LeftArm", _about((0, 0, 1), -72 + 10 * squat))
    put("LeftForeArm", _about((0, 1, 0), 20 * squat))
    put("RightArm", _about((0, 0, 1), 72 - 135 * ramp * (1 - squat)))
    put("RightForeArm", _about((0, 0, 1), -35 * np.sin(2 * np.pi * 1.5 * t) * ramp * (1 - squat)))
    put("Hips", _about((0, 1, 0), 25 * np.sin(2 * np.pi * t / seconds)))
    put("Spine1", _about((1, 0, 0), 15 * squat))
    for side in ("Left", "Right"):
        put(f"{side}UpLeg", _about((1, 0, 0), -80 * squat))
        put(f"{side}Leg", _about((1, 0, 0), 110 * squat))
        put(f"{side}Foot", _about((1, 0, 0), -30 * squat))
    motion = Motion(skeleton, q, np.tile(skeleton.offsets[0], (T, 1)), fps, "wave_turn_squat")
    return ground_feet(motion, np.zeros(T), float(skeleton.rest_positions()[[16, 17, 20, 21], 1].min()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--character", default="Ava")
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR / "wave_turn_squat.mp4")
    args = parser.parse_args()
    character = load_character(args.character)
    motion = wave_turn_squat(character.skeleton)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    n = write_mp4(render_motion_clip(character, motion, size=(1280, 720)), args.out, motion.fps)
    print(f"wrote {args.out}: {n} frames, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
