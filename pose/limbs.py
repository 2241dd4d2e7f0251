"""Legs made consistent with the image: depth from the bones' constant lengths, not from the model's guess.

MediaPipe's world landmarks carry a depth (along the camera's axis) that the model guesses from one image; its 2D
landmarks are accurate to a few pixels. On the pose_accuracy bench the world landmarks alone gave most of the knee
flexion error (12.1 of 13.2 degrees with nothing else in the way): a punch's knees read 17.5 degrees too straight,
a bow's 14.6 too bent, a standing person's 11.8 too bent.

Knowing a bone's length and where its upper end is, its lower end lies on the viewing ray of its 2D landmark at
that distance: two depths, one nearer the camera than the upper end's foot of the ray, one farther
(:func:`depth_on_ray`). MediaPipe's depth picks between them and nothing more; where the 2D bone is as long as
the bone or longer, the bone lies across the view (a standing leg seen full-length comes out straight).
:func:`image_consistent_legs` does this hip -> knee -> ankle per frame, in the camera frame, from the root path
:func:`pose.root.solve_translation` found (that path makes MediaPipe's skeleton project onto the 2D landmarks, so
its scale is theirs). Heel and toe move with the ankle.

Frames: camera axes, x right, y down, z away from the camera (OpenCV, MediaPipe), metres; pixels for the image.
"""
from __future__ import annotations

import numpy as np

from .estimators import LM
from .fit import measure_lengths
from .root import CameraModel

__all__ = ["depth_on_ray", "image_consistent_legs", "LEG_CHAINS", "LEG_LANDMARKS", "SIGN_SCALE", "STRAIGHT_SLACK"]

LEG_CHAINS = tuple((f"{s}_hip", f"{s}_knee", f"{s}_ankle", (f"{s}_heel", f"{s}_foot_index")) for s in ("left", "right"))
LEG_LANDMARKS = [LM[n] for _, knee, ankle, foot in LEG_CHAINS for n in (knee, ankle) + foot]  # what it moves
SIGN_SCALE = 0.1  # metres: MediaPipe's depth this far from the ray's nearest point picks a side (tanh)
STRAIGHT_SLACK = 0.0  # bones this share shorter still count as across the view (0 was best, see the module doc)


def _rays(image: np.ndarray, camera: CameraModel) -> np.ndarray:
    """``(..., 3)`` unit viewing rays of pixels ``(..., 2)``."""
    r = np.concatenate([(image - (camera.cx, camera.cy)) / camera.focal, np.ones(image.shape[:-1] + (1,))], -1)
    return r / np.linalg.norm(r, axis=-1, keepdims=True)


def depth_on_ray(upper: np.ndarray, ray: np.ndarray, length: float | np.ndarray, guess: np.ndarray,
                 sign_scale: float = SIGN_SCALE, slack: float = STRAIGHT_SLACK) -> np.ndarray:
    """Where a bone's lower end lies on its viewing ray, ``(T,)`` distances from the camera along ``ray``.

    Args:
        upper: ``(T, 3)`` the bone's upper end, camera frame. ray: ``(T, 3)`` unit ray of the lower end's pixel.
        length: the bone's length (scalar or ``(T,)``), metres. guess: ``(T, 3)`` the lower end as the model put it.
        sign_scale: the model's depth, relative to the ray point nearest ``upper``, picks the nearer or farther
            solution through ``tanh(offset / sign_scale)`` (a guess right at the middle keeps the bone across the
            view rather than flipping it from frame to frame).
        slack: the bone counts as this share shorter (a 2D bone within it of full length lies across the view).

    Returns:
        ``(T,)`` distance ``d``: the lower end is ``d * ray``.
    """
    b = np.sum(ray * upper, -1)  # ray point nearest the upper end
    half = np.sqrt(np.maximum(b * b - np.sum(upper * upper, -1) + (np.asarray(length) * (1.0 - slack)) ** 2, 0.0))
    return b + np.tanh((np.sum(ray * guess, -1) - b) / sign_scale) * half


def image_consistent_legs(world: np.ndarray, image: np.ndarray, vis: np.ndarray, root: np.ndarray,
                          camera: CameraModel, weights: np.ndarray | None = None, *,
                          sign_scale: float = SIGN_SCALE, slack: float = STRAIGHT_SLACK) -> np.ndarray:
    """Knees, ankles and feet of ``(T, 33, 3)`` hip-centred camera-axis landmarks moved in depth onto the image.

    Args:
        world: ``(T, 33, 3)`` metric landmarks, camera axes, centred on the hips (gaps filled).
        image: ``(T, 33, 2)`` their pixels (gaps filled). vis: ``(T, 33)`` visibility (bone lengths' weights).
        root: ``(T, 3)`` the hips' centre in the camera frame (:func:`pose.root.solve_translation`).
        camera: the pinhole camera the root was solved with.
        weights: ``(T, 2)`` how much of each leg (left, right) to take from the image, 0..1 (None: all of it).

    Returns:
        ``(T, 33, 3)`` the landmarks with knees, ankles, heels and toes moved; the rest as given. Each thigh and shin
        keeps its clip-constant length (:func:`pose.fit.measure_lengths`) and projects onto its 2D landmarks.
    """
    world = np.asarray(world, np.float64)
    if world.ndim != 3 or world.shape[1:] != (33, 3) or image.shape != world.shape[:2] + (2,):
        raise ValueError(f"expected (T, 33, 3) landmarks and (T, 33, 2) pixels, got {world.shape}, {image.shape}")
    if root.shape != (len(world), 3):
        raise ValueError(f"root must be (T, 3), got {root.shape}")
    L = measure_lengths(world, vis)
    cam = world + root[:, None]  # the model's points in the camera frame
    out = world.copy()
    w = np.ones((len(world), 2)) if weights is None else np.clip(weights, 0.0, 1.0)
    for k, (hip, knee, ankle, foot) in enumerate(LEG_CHAINS):
        r_hip = _rays(image[:, LM[hip]], camera)
        H = r_hip * (cam[:, LM[hip], 2] / r_hip[:, 2])[:, None]  # the hip on its ray, at the model's depth
        r_knee = _rays(image[:, LM[knee]], camera)
        K = r_knee * depth_on_ray(H, r_knee, L.thigh, H + cam[:, LM[knee]] - cam[:, LM[hip]], sign_scale,
                                  slack)[:, None]
        r_ankle = _rays(image[:, LM[ankle]], camera)
        A = r_ankle * depth_on_ray(K, r_ankle, L.shin, K + cam[:, LM[ankle]] - cam[:, LM[knee]], sign_scale,
                                   slack)[:, None]
        knee_new = world[:, LM[hip]] + (K - H)
        ankle_new = world[:, LM[hip]] + (A - H)
        wk = w[:, k:k + 1]
        out[:, LM[knee]] = wk * knee_new + (1 - wk) * world[:, LM[knee]]
        out[:, LM[ankle]] = wk * ankle_new + (1 - wk) * world[:, LM[ankle]]
        for f in foot:
            out[:, LM[f]] = world[:, LM[f]] + out[:, LM[ankle]] - world[:, LM[ankle]]
    return out
