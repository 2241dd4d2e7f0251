"""Legs made consistent with the image: their depth from the bones' constant lengths and the 2D landmarks.

MediaPipe's world landmarks carry a depth (along the camera's axis) that the model guesses from one image; its 2D
landmarks are accurate to a few pixels. On the pose_accuracy bench the world landmarks alone gave most of the knee
flexion error (12.1 of 13.2 degrees with nothing else in the way): a punch's knees read 17.5 degrees too straight,
a bow's 14.6 too bent, a standing person's 11.8 too bent.

Knowing a bone's length and where its upper end is, its lower end lies on the viewing ray of its 2D landmark at
that distance: two depths, one nearer the camera than the ray's point nearest the upper end, one farther
(:func:`depth_on_ray`); where the 2D bone is as long as the bone or longer, that nearest point (the bone across the
view). MediaPipe's depth picks the side, softly: ``tanh(offset / SIGN_SCALE)`` of the way, so a guess near the
middle leaves the bone partly across the view instead of flipping it from frame to frame.
:func:`image_consistent_legs` does this hip -> knee -> ankle per frame, in the camera frame, from the root path
:func:`pose.root.solve_translation` found (that path makes MediaPipe's skeleton project onto the 2D landmarks, so
its scale is theirs). Heel and toe move with the ankle.

What the bench showed (cached MediaPipe replay; tuning cases / six more cameras / fifteen runs):

* The magnitudes from the image beat MediaPipe's: the size of a thigh's or shin's angle out of the image plane was
  off 0.6-22 degrees (mean 8.5 over 40 bones x clips) against MediaPipe's 2.5-38 (9.9). The side is the weak part:
  MediaPipe had it right in 70 % of the frames (0-100 % per bone and clip; thighs seen from the front about 60 %,
  a dance from a low camera 0 %).
  With a hard choice (SIGN_SCALE 0.01-0.03) the knee error stayed where it was (13.2 / 12.9-13.1); 0.1 gave
  11.9 / 12.7 / 11.8, 0.2 13.3 / 12.4, 0.4 15.4 / 12.9. Flattening MediaPipe's legs without the image made it
  worse (0.8 of their depth: 14.4 tuning), so the gain is the image's.
* The lengths are MediaPipe's, and its 2D and 3D skeletons disagree by a few per cent per bone (a shin seen
  full-length in 2D while the truth's was 30 degrees out of the image plane on a punch; 2D/3D ratios 0.88-1.29 per
  clip). Near full length the depth is steep in that ratio (3 % short reads as 14 degrees out of the plane), and a
  bone below or above the camera's height has a mirror image bent by twice its ray's dip, so a straight standing
  leg is not always read straight. Rescaling the lengths to the image (a high percentile of the 2D length, or
  MediaPipe's own projected length), counting bones a few per cent short as straight, and a hinge prior for the
  shin's side (knees bend backwards) were all worse or no better on the tuning cases.
* The same for the arms cut the elbow error (runs 31.7 -> 22.4 degrees, tuning 18.1 -> 14.9, six more cameras
  17.4 -> 15.0) but not the arms' place: a punch seen from 60 degrees had its hands 10 -> 24 cm off (MPJPE 103 ->
  122 mm; six more cameras 106 -> 110), and per bone the image's out-of-plane angles were no better than
  MediaPipe's (the upper arm's there off 26 degrees against 18, MediaPipe's side right). So it is not done.

Frames: camera axes, x right, y down, z away from the camera (OpenCV, MediaPipe), metres; pixels for the image.
"""
from __future__ import annotations

import numpy as np

from .estimators import LM
from .fit import measure_lengths
from .root import CameraModel

__all__ = ["depth_on_ray", "image_consistent_legs", "LEG_CHAINS", "LEG_LANDMARKS", "SIGN_SCALE", "VISIBLE"]

LEG_CHAINS = tuple((f"{s}_hip", f"{s}_knee", f"{s}_ankle", (f"{s}_heel", f"{s}_foot_index")) for s in ("left", "right"))
LEG_LANDMARKS = [LM[n] for _, knee, ankle, foot in LEG_CHAINS for n in (knee, ankle) + foot]  # what it moves
SIGN_SCALE = 0.1  # metres: MediaPipe's depth this far from the ray's nearest point picks a side (tanh)
# A leg is taken from the image in full where its knee and ankle are at least this visible, not at all below the
# first (their 2D landmarks are then guesses too). On the rendered bench nearly all are visible (knee error
# unchanged, valgus over six more cameras 9.51 -> 9.25 degrees); it matters on real clips with occluded legs.
VISIBLE = (0.3, 0.6)


def _rays(image: np.ndarray, camera: CameraModel) -> np.ndarray:
    """``(..., 3)`` unit viewing rays of pixels ``(..., 2)``."""
    r = np.concatenate([(image - (camera.cx, camera.cy)) / camera.focal, np.ones(image.shape[:-1] + (1,))], -1)
    return r / np.linalg.norm(r, axis=-1, keepdims=True)


def depth_on_ray(upper: np.ndarray, ray: np.ndarray, length: float | np.ndarray, guess: np.ndarray,
                 sign_scale: float = SIGN_SCALE) -> np.ndarray:
    """Where a bone's lower end lies on its viewing ray, ``(T,)`` distances from the camera along ``ray``.

    Args:
        upper: ``(T, 3)`` the bone's upper end, camera frame. ray: ``(T, 3)`` unit ray of the lower end's pixel.
        length: the bone's length (scalar or ``(T,)``), metres. guess: ``(T, 3)`` the lower end as the model put it.
        sign_scale: the model's depth, relative to the ray point nearest ``upper``, picks the nearer or farther
            solution through ``tanh(offset / sign_scale)`` (a guess right at the middle keeps the bone across the
            view rather than flipping it from frame to frame).

    Returns:
        ``(T,)`` distance ``d``: the lower end is ``d * ray``.
    """
    b = np.sum(ray * upper, -1)  # ray point nearest the upper end
    half = np.sqrt(np.maximum(b * b - np.sum(upper * upper, -1) + np.asarray(length) ** 2, 0.0))
    return b + np.tanh((np.sum(ray * guess, -1) - b) / sign_scale) * half


def image_consistent_legs(world: np.ndarray, image: np.ndarray, vis: np.ndarray, root: np.ndarray,
                          camera: CameraModel, weights: np.ndarray | None = None, *,
                          sign_scale: float = SIGN_SCALE) -> np.ndarray:
    """Knees, ankles and feet of ``(T, 33, 3)`` hip-centred camera-axis landmarks moved in depth onto the image.

    Args:
        world: ``(T, 33, 3)`` metric landmarks, camera axes, centred on the hips (gaps filled).
        image: ``(T, 33, 2)`` their pixels (gaps filled). vis: ``(T, 33)`` visibility (bone lengths' weights).
        root: ``(T, 3)`` the hips' centre in the camera frame (:func:`pose.root.solve_translation`).
        camera: the pinhole camera the root was solved with.
        weights: ``(T, 2)`` how much of each leg (left, right) to take from the image, 0..1 (None: from the knee's
            and ankle's visibility, see :data:`VISIBLE`).

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
    if weights is None:
        seen = np.stack([np.minimum(vis[:, LM[knee]], vis[:, LM[ankle]]) for _, knee, ankle, _ in LEG_CHAINS], 1)
        weights = (seen - VISIBLE[0]) / (VISIBLE[1] - VISIBLE[0])
    w = np.clip(weights, 0.0, 1.0)
    for k, (hip, knee, ankle, foot) in enumerate(LEG_CHAINS):
        r_hip = _rays(image[:, LM[hip]], camera)
        H = r_hip * (cam[:, LM[hip], 2] / r_hip[:, 2])[:, None]  # the hip on its ray, at the model's depth
        r_knee = _rays(image[:, LM[knee]], camera)
        K = r_knee * depth_on_ray(H, r_knee, L.thigh, H + cam[:, LM[knee]] - cam[:, LM[hip]], sign_scale)[:, None]
        r_ankle = _rays(image[:, LM[ankle]], camera)
        A = r_ankle * depth_on_ray(K, r_ankle, L.shin, K + cam[:, LM[ankle]] - cam[:, LM[knee]], sign_scale)[:, None]
        knee_new = world[:, LM[hip]] + (K - H)
        ankle_new = world[:, LM[hip]] + (A - H)
        wk = w[:, k:k + 1]
        out[:, LM[knee]] = wk * knee_new + (1 - wk) * world[:, LM[knee]]
        out[:, LM[ankle]] = wk * ankle_new + (1 - wk) * world[:, LM[ankle]]
        for f in foot:
            out[:, LM[f]] = world[:, LM[f]] + out[:, LM[ankle]] - world[:, LM[ankle]]
    return out
