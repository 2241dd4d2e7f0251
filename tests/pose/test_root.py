"""Root path: translation from 2D + 3D landmarks, and a standing person stays put on the floor."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from pose.estimators import LM
from pose.fit import BodyLengths, landmarks_from_pose, person_offsets
from pose.pipeline import motion_from_landmarks
from pose.root import CameraModel, pin_feet, solve_translation

J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}
W, H = 640, 480


def look_at(eye, target) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera (x right, y down, z forward) rotation rows and the eye."""
    f = np.asarray(target, float) - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    return np.stack([r, -u, f]), np.asarray(eye, float)


def film(world_points: np.ndarray, eye, target, noise_px: float = 0.0, noise_m: float = 0.0, seed: int = 0):
    """2D landmarks and hip-centred camera-axis 3D landmarks of world points, as an estimator would give them."""
    R, e = look_at(np.asarray(eye, float), target)
    cam = (world_points - e) @ R.T
    c = CameraModel.from_fov(W, H)
    image = c.focal * cam[..., :2] / cam[..., 2:] + (c.cx, c.cy)
    hips = 0.5 * (cam[:, LM["left_hip"]] + cam[:, LM["right_hip"]])
    rng = np.random.default_rng(seed)
    return (image + rng.normal(0, noise_px, image.shape), cam - hips[:, None] + rng.normal(0, noise_m, cam.shape),
            cam)


def test_translation_is_recovered_exactly():
    rng = np.random.default_rng(1)
    local = rng.normal(0, 0.4, (5, 33, 3))
    t = np.array([[0.3, -0.2, 3.0], [-1.0, 0.5, 5.0], [0.0, 0.0, 2.0], [0.2, 0.1, 8.0], [0.5, 0.4, 1.5]])
    cam = CameraModel.from_fov(W, H)
    pts = local + t[:, None]
    image = cam.focal * pts[..., :2] / pts[..., 2:] + (cam.cx, cam.cy)
    assert np.allclose(solve_translation(local, image, np.ones((5, 33)), cam), t, atol=1e-9)


def standing_motion(T: int = 90, fps: float = 30.0) -> Motion:
    """Standing in place, waving both arms and turning the head, swaying slightly at the hips."""
    L = BodyLengths()
    sk = canonical_skeleton(person_offsets(L))
    q = np.tile([1.0, 0, 0, 0], (T, 22, 1))
    t = np.arange(T) / fps
    for name, axis, amp, freq in (("LeftArm", [0, 0, 1], 1.0, 1.0), ("RightArm", [0, 0, 1], -0.8, 0.7),
                                  ("LeftForeArm", [0, 1, 0], 0.8, 1.3), ("Head", [0, 1, 0], 0.5, 0.5)):
        q[:, J[name]] = Rotation.from_rotvec(np.outer(amp * np.sin(2 * np.pi * freq * t), axis)).as_quat()[:, [3, 0, 1, 2]]
    root = np.tile([0.3, sk.offsets[0, 1], -0.5], (T, 1))
    return Motion(sk, q, root, fps), L


@pytest.mark.parametrize("eye", [(0.0, 1.2, 3.5), (0.8, 2.2, 3.0)], ids=["level camera", "camera looking down"])
def test_standing_person_neither_floats_sinks_nor_drifts(eye):
    eye = np.asarray(eye)
    motion, L = standing_motion()
    pose = motion.fk()
    P = landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), L)
    image, world_cam, _ = film(P, eye, (0.3, 1.0, -0.5), noise_px=1.0, noise_m=0.01)
    result = motion_from_landmarks(image, world_cam, np.ones((len(P), 33)), 30.0, W, H)
    root = result.motion.root_positions
    X = result.motion.positions()
    horizontal = root[:, [0, 2]]
    assert np.linalg.norm(horizontal - np.median(horizontal, axis=0), axis=1).max() < 0.02
    assert np.linalg.norm(horizontal[:15].mean(0) - horizontal[-15:].mean(0)) < 0.01  # no drift
    assert root[:, 1].std() < 0.005
    lowest = X[:, [J["LeftToeBase"], J["RightToeBase"]], 1].min(axis=1)
    assert np.abs(lowest).max() < 0.01  # toes on the floor (y = 0): no floating, no sinking
    assert result.contacts.mean() > 0.95
    assert result.fit_error < 0.02 and result.bone_length_variation < 1e-9
    # Facing: the world's +Z is the camera's backward direction on the floor; the person faces the true +Z, so
    # the hips' heading must be off by the camera's own heading, and steady.
    back = -(np.array([0.3, 1.0, -0.5]) - eye)[[0, 2]]
    expected = np.degrees(np.arctan2(back[0], back[1]))
    forward = result.fit.world_rotations[:, 0] @ np.array([0.0, 0.0, 1.0])
    heading = np.degrees(np.arctan2(forward[:, 0], forward[:, 2]))
    assert abs(np.median(heading) + expected) < 4.0
    assert np.abs(heading - np.median(heading)).max() < 8.0


def test_pinning_holds_planted_feet():
    T = 40
    anchors = np.zeros((T, 2, 3))
    anchors[:, 0, 0] = np.linspace(0, 0.1, T)  # the left foot slides 10 cm while planted
    anchors[:, 1] = (0.3, 0.0, 0.0)
    root = np.tile([0.0, 1.0, 0.0], (T, 1))
    contacts = np.zeros((T, 2), bool)
    contacts[:, 0] = True
    pinned, corr = pin_feet(root, anchors, np.full((T, 2), 0.02), contacts, 30.0)
    foot = anchors[:, 0] + corr
    assert np.ptp(foot[:, 0]) < 0.002  # the planted foot no longer slides
    assert np.allclose(pinned[:, 1], 0.98)  # and touches the floor
