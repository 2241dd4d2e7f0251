"""Make the bundled sample video: a built-in character waving, pointing, turning and squatting, with hand
gestures (assets/samples/).

    python scripts/make_sample_clip.py

The web page offers it to users who have no clip at hand; the tests and benchmarks use it as a video the
repo makes itself. MediaPipe detects the rendered figure in every frame. The hands show what the hands switch
does: the right hand waves with spread fingers and closes to a fist, the left points sideways, and both make
fists in the squat (the built-in characters have five fingers with finger bones).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.character_library import load_character  # noqa: E402
from core.motion import Motion, with_fingers  # noqa: E402
from core.render.preview import render_motion_clip  # noqa: E402
from core.render.video import write_mp4  # noqa: E402
from core.retarget.copy import ground_feet  # noqa: E402
from core.skeleton import CANONICAL_JOINTS  # noqa: E402
from pose.hands import GESTURES  # noqa: E402

SAMPLES_DIR = ROOT / "assets" / "samples"


def _about(axis: tuple[float, float, float], degrees: np.ndarray) -> np.ndarray:
    """``(T, 4)`` quaternions turning ``degrees (T,)`` about ``axis``."""
    a = np.radians(np.asarray(degrees, float))[:, None] / 2
    return np.concatenate([np.cos(a), np.sin(a) * np.asarray(axis, float) / np.linalg.norm(axis)], axis=1)


def _ease(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """``(T,)`` 0 before ``start``, 1 after ``end``, smooth in between."""
    x = np.clip((t - start) / (end - start), 0, 1)
    return x * x * (3 - 2 * x)


def hand_gestures(t: np.ndarray) -> np.ndarray:
    """``(T, 2, 20)`` finger angles (:data:`pose.hands.GESTURES`; left hand, right hand) for times ``t`` (s):
    right hand open with spread fingers while it waves, then a fist; left hand points while its arm is out;
    both fists in the squat; relaxed at the start and the end."""
    def blend(a: np.ndarray, b: str, w: np.ndarray) -> np.ndarray:
        return (1 - w)[:, None] * a + w[:, None] * GESTURES[b]

    right = np.tile(GESTURES["relaxed"], (len(t), 1))
    right = blend(right, "open", _ease(t, 0.3, 0.8))
    right = blend(right, "fist", _ease(t, 2.6, 2.9))
    right = blend(right, "relaxed", _ease(t, 5.4, 5.9))
    left = np.tile(GESTURES["relaxed"], (len(t), 1))
    left = blend(left, "point", _ease(t, 1.2, 1.6))
    left = blend(left, "fist", _ease(t, 3.3, 3.7))
    left = blend(left, "relaxed", _ease(t, 5.4, 5.9))
    return np.stack([left, right], axis=1)


def wave_turn_squat(skeleton, seconds: float = 6.0, fps: float = 30.0) -> Motion:
    """Right arm up and waving with an open hand, left arm out pointing, body turns a little, then a squat with
    fists: varied but easy to see (longer clips hold the end). ``skeleton``: the
    canonical one, with or without finger joints (fingers are set where it has them)."""
    from pose.hands import angles_to_quats

    T = int(seconds * fps)
    t = np.arange(T) / fps
    q = np.zeros((T, skeleton.num_joints, 4))
    q[..., 0] = 1

    def put(name: str, rotation: np.ndarray) -> None:
        q[:, CANONICAL_JOINTS.index(name)] = rotation

    ramp = np.clip(t / 1.0, 0, 1)  # raise the arm during the first second
    squat = np.clip(np.sin(np.pi * (t - 3.5) / 2.0), 0, None) * (t > 3.5)  # one squat from 3.5 s to 5.5 s
    point = _ease(t, 0.8, 1.4) * (1 - _ease(t, 3.0, 3.6))  # the left arm out to the side, pointing
    put("LeftArm", _about((0, 0, 1), -72 + 62 * point + 10 * squat))
    put("LeftForeArm", _about((0, 1, 0), 20 * squat))
    put("LeftHand", _about((1, 0, 0), -80 * point))  # palm to the camera, thumb up
    put("RightArm", _about((0, 0, 1), 72 - 135 * ramp * (1 - squat)))
    put("RightForeArm", _about((0, 0, 1), -35 * np.sin(2 * np.pi * 1.5 * t) * ramp * (1 - squat)))
    put("RightHand", _about((1, 0, 0), -90 * ramp * (1 - squat)))  # palm to the camera while it waves
    put("Hips", _about((0, 1, 0), 25 * np.sin(2 * np.pi * t / seconds)))
    put("Spine1", _about((1, 0, 0), 15 * squat))
    for side in ("Left", "Right"):
        put(f"{side}UpLeg", _about((1, 0, 0), -80 * squat))
        put(f"{side}Leg", _about((1, 0, 0), 110 * squat))
        put(f"{side}Foot", _about((1, 0, 0), -30 * squat))
    motion = Motion(skeleton, q, np.tile(skeleton.offsets[0], (T, 1)), fps, "wave_turn_squat")
    motion = with_fingers(motion, angles_to_quats(hand_gestures(t)))
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
