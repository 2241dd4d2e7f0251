"""The global root path: where the person is in the world, not just how they are posed.

MediaPipe's world landmarks are centred on the hips, so the path must be recovered. Per frame, the hip centre's
position in the camera frame is the translation ``t`` that makes the metric landmarks project onto the 2D ones
through a pinhole camera with an assumed field of view (:func:`solve_translation`, linear least squares:
``f (X + tx) = (u - cx)(Z + tz)`` and the same for y, weighted by visibility). The depth ``tz`` comes from the
person's size in the image, so it is the noisiest part; it is smoothed over a longer window than the rest.

Feet then pin the path (:func:`pin_feet`): while a foot is planted, the root moves so that foot stays on its spot
on the floor (the median of where it was seen during that contact) at floor height. Between contacts the
correction is interpolated, so the path stays continuous. The pose stage uses only its vertical part (feet on the
floor, neither floating nor sinking) and holds planted feet with the legs (:mod:`pose.feet`): MediaPipe's strides
are short in depth while this path travels at the person's speed, so holding the feet by the root alone would
either slow the walk or, averaged over both feet, leave them sliding (110 cm/s on a rendered walk towards the
camera).

Frames: the camera frame has x right, y down, z away from the camera (OpenCV, MediaPipe). The world frame
(DESIGN §2) has Y up and the floor at y = 0; :class:`CameraModel` maps between them, with the camera on the +Z
side looking towards -Z, so a person facing the camera faces +Z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

__all__ = ["CameraModel", "solve_translation", "smooth_path", "pin_feet", "DEFAULT_FOV"]

DEFAULT_FOV = 65.0  # degrees across the long side: a phone's main camera (26 mm equivalent) filming video

FLIP = np.diag([1.0, -1.0, -1.0])  # camera axes (x right, y down, z forward) -> (x right, y up, z towards camera)


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera and its placement in the world.

    focal: pixels. cx, cy: principal point, pixels. width, height: image size.
    rotation: ``(3, 3)`` world-from-flipped-camera rotation (levels the floor). floor: the floor's height along
    ``up`` in the flipped camera frame, subtracted so the world floor is y = 0.
    """

    focal: float
    cx: float
    cy: float
    width: int
    height: int
    rotation: np.ndarray
    floor: float = 0.0

    @staticmethod
    def from_fov(width: int, height: int, fov_deg: float = DEFAULT_FOV) -> "CameraModel":
        if not 10.0 <= fov_deg <= 160.0:
            raise ValueError(f"field of view must be within 10..160 degrees, got {fov_deg}")
        f = 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2)
        return CameraModel(f, width / 2, height / 2, width, height, np.eye(3))

    def to_world(self, cam: np.ndarray) -> np.ndarray:
        """``(..., 3)`` camera-frame points to world points (Y up, floor at 0)."""
        p = np.asarray(cam, dtype=np.float64) @ (self.rotation @ FLIP).T
        p[..., 1] -= self.floor
        return p

    def to_camera(self, world: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_world`."""
        p = np.asarray(world, dtype=np.float64).copy()
        p[..., 1] += self.floor
        return p @ (self.rotation @ FLIP)

    def project(self, world: np.ndarray) -> np.ndarray:
        """``(..., 2)`` pixel coordinates of ``(..., 3)`` world points (NaN behind the camera)."""
        c = self.to_camera(world)
        z = np.where(c[..., 2] > 1e-6, c[..., 2], np.nan)
        return np.stack([self.focal * c[..., 0] / z + self.cx, self.focal * c[..., 1] / z + self.cy], axis=-1)


def solve_translation(world: np.ndarray, image: np.ndarray, weights: np.ndarray, camera: CameraModel,
                      min_depth: float = 0.5) -> np.ndarray:
    """Camera-frame position of the landmarks' origin (the hip centre) per frame, ``(T, 3)`` metres.

    Args:
        world: ``(T, N, 3)`` metric landmarks in camera axes, centred on the hips.
        image: ``(T, N, 2)`` their pixel positions.
        weights: ``(T, N)`` confidence of each landmark (e.g. visibility).
    """
    X = np.asarray(world, dtype=np.float64)
    u = (np.asarray(image, dtype=np.float64) - (camera.cx, camera.cy)) / camera.focal
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-3, None)
    T, N = X.shape[:2]
    # Rows: tx - u tz = u Z - X ; ty - v tz = v Z - Y (divided by f).
    A = np.zeros((T, N, 2, 3))
    A[..., 0, 0] = 1.0
    A[..., 1, 1] = 1.0
    A[..., 0, 2] = -u[..., 0]
    A[..., 1, 2] = -u[..., 1]
    b = np.stack([u[..., 0] * X[..., 2] - X[..., 0], u[..., 1] * X[..., 2] - X[..., 1]], axis=-1)
    A = A.reshape(T, 2 * N, 3)
    b = b.reshape(T, 2 * N)
    W = np.repeat(w, 2, axis=1)
    AtA = np.einsum("tni,tn,tnj->tij", A, W, A)
    Atb = np.einsum("tni,tn,tn->ti", A, W, b)
    t = np.linalg.solve(AtA + 1e-9 * np.eye(3), Atb[..., None])[..., 0]
    t[:, 2] = np.maximum(t[:, 2], min_depth)
    return t


def _savgol(x: np.ndarray, window: int, order: int = 2) -> np.ndarray:
    n = len(x)
    window = min(window, n - (1 - n % 2))
    if window <= order + 1:
        return x.copy()
    return savgol_filter(x, window, order, axis=0, mode="interp")


def smooth_path(t: np.ndarray, fps: float, seconds: float = 0.3, depth_seconds: float = 1.0) -> np.ndarray:
    """Smooth a ``(T, 3)`` camera-frame path: image-plane parts over ``seconds``, depth over ``depth_seconds``.

    Only the depth is smoothed hard: x/y follow the image, which MediaPipe tracks to a few pixels.
    """
    def odd(s: float) -> int:
        n = max(3, int(round(s * fps)))
        return n + (n + 1) % 2

    out = t.copy()
    out[:, :2] = _savgol(t[:, :2], odd(seconds))
    # The image position of the hips is exact-ish; the depth is not. Smoothing depth alone would move the person
    # sideways (x = u * z), so smooth z and rescale x, y along the viewing ray.
    z = _savgol(t[:, 2], odd(depth_seconds))
    z = np.maximum(z, 0.5)
    ratio = z / np.maximum(out[:, 2], 1e-6)
    out[:, 0] *= ratio
    out[:, 1] *= ratio
    out[:, 2] = z
    return out


def _segments(flags: np.ndarray) -> list[tuple[int, int]]:
    v = np.concatenate([[0], flags.astype(np.int8), [0]])
    d = np.diff(v)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def pin_feet(root: np.ndarray, anchors: np.ndarray, sole_heights: np.ndarray, contacts: np.ndarray,
             fps: float, blend_seconds: float = 0.15, horizontal: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Move a world root path so planted feet stay put on the floor.

    Args:
        root: ``(T, 3)`` world root positions (Y up, floor y = 0).
        anchors: ``(T, 2, 3)`` a reference point on each foot (world), e.g. midway between ankle and toe.
        sole_heights: ``(T, 2)`` each foot's lowest point above the floor (0 = touching it).
        contacts: ``(T, 2)`` planted flags.
        blend_seconds: the correction is smoothed over this window so contact changes do not pop.
        horizontal: also move the root along the floor to hold the feet (False: only up and down, for a caller
            that holds the feet with the legs, :mod:`pose.feet`).

    Returns:
        The pinned ``(T, 3)`` root and the ``(T, 3)`` correction that was added.
    """
    T = len(root)
    contacts = np.asarray(contacts, bool)
    corr_sum = np.zeros((T, 3))
    count = np.zeros(T)
    for f in range(contacts.shape[1]):
        for s, e in _segments(contacts[:, f]):
            spot = np.median(anchors[s:e, f], axis=0)
            d = np.zeros((e - s, 3))
            if horizontal:
                d[:, 0] = spot[0] - anchors[s:e, f, 0]
                d[:, 2] = spot[2] - anchors[s:e, f, 2]
            d[:, 1] = -sole_heights[s:e, f]
            corr_sum[s:e] += d
            count[s:e] += 1
    have = count > 0
    corr = np.zeros((T, 3))
    if have.any():
        corr[have] = corr_sum[have] / count[have, None]
        t = np.arange(T)
        for c in range(3):
            corr[:, c] = np.interp(t, t[have], corr[have, c])
    else:
        # No contact anywhere (a jump, or feet never seen planted): at least never sink below the floor.
        corr[:, 1] = np.maximum(0.0, -sole_heights.min(axis=1))
    n = max(5, int(round(blend_seconds * fps)))
    if T > n:
        corr = _savgol(corr, n + (n + 1) % 2, 1)
    return root + corr, corr
