"""The camera's turn and zoom from a textured background that the test moves by known amounts."""
from __future__ import annotations

import math

import numpy as np

from pose.camera_motion import CameraMotionTracker

W, H, FOCAL = 640, 360, 500.0


def _texture(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.resize(rng.integers(0, 255, (90, 160, 3)).astype(np.uint8), (4 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(big, (3, 3), 0)


def _track(frames, boxes=None) -> CameraMotionTracker:
    tracker = CameraMotionTracker(W, H, FOCAL)
    for t, f in enumerate(frames):
        tracker.step(f, None if boxes is None else boxes[t])
    return tracker


def test_a_still_camera_has_not_moved_even_with_a_person_moving_in_front():
    scene = _texture()[:H, :W].copy()
    frames, boxes = [], []
    for t in range(20):  # a bright "person" block walking right, which the tracker is told about
        f = scene.copy()
        x = 100 + 12 * t
        f[80:300, x:x + 60] = 250
        frames.append(f)
        boxes.append(np.array([x, 80, x + 60, 300], float))
    motion = _track(frames, boxes).result()
    assert not motion.moved() and motion.pan_degrees < 0.5 and abs(motion.zoom_ratio - 1) < 0.01
    assert motion.measured[1:].all()


def _turned_views(degrees_per_frame: float, frames: int) -> list[np.ndarray]:
    """What a camera (focal ``FOCAL``) sees of a wide textured view while turning right about its own centre."""
    import cv2

    scene = _texture()  # the first camera's view, wider than a frame, centred on its axis
    K0 = np.array([[FOCAL, 0, scene.shape[1] / 2], [0, FOCAL, scene.shape[0] / 2], [0, 0, 1]])
    K = np.array([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1]])
    out = []
    for t in range(frames):
        a = math.radians(degrees_per_frame * t)
        R = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])  # turned right
        out.append(cv2.warpPerspective(scene, K @ R.T @ np.linalg.inv(K0), (W, H)))
    return out


def test_a_pan_is_measured_as_the_turn_that_moves_the_scene():
    motion = _track(_turned_views(0.9, 30)).result()
    expected = 0.9 * 29
    assert motion.moved() and abs(motion.pan_degrees - expected) < 0.05 * expected
    ahead = motion.rotations[-1] @ np.array([0.0, 0.0, 1.0])
    assert ahead[0] > 0  # turned to the right, in the first frame's camera axes (x right)
    assert motion.tilt_degrees < 1.0 and abs(motion.zoom_ratio - 1) < 0.02
    assert "panned" in motion.describe()


def test_a_zoom_is_measured_as_a_scale():
    import cv2

    scene = _texture()[:H, :W].copy()
    frames = []
    for t in range(15):
        s = 1.0 + 0.01 * t  # 1 % per frame about the centre
        M = np.array([[s, 0, (1 - s) * W / 2], [0, s, (1 - s) * H / 2]])
        frames.append(cv2.warpAffine(scene, M, (W, H), borderMode=cv2.BORDER_REFLECT))
    motion = _track(frames).result()
    assert abs(motion.zoom[-1] - 1.14) < 0.02 and motion.pan_degrees < 1.0
    assert "zoomed" in motion.describe()
