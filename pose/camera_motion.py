"""Whether the camera moved: its turn (pan, tilt) and zoom from how the background moves between frames.

The root path (:mod:`pose.root`) is solved in the camera's frame; a camera that turns to follow someone makes
them look still while they walk, and a zoom makes them look closer. So the background's motion is measured:
per frame pair, corners are found outside the followed person's box (grown by half its size) on a small grey
copy of the frame (:data:`SIDE` pixels wide), followed with pyramidal Lucas-Kanade, and a similarity transform
(shift, turn, scale) is fitted to them with RANSAC, whose inliers are the background. Through the assumed focal
length they become viewing rays: a turning camera keeps the angles between them, a zoom scales them (the zoom is
the ratio of their spreads), and the turn is the rotation that best maps one frame's rays onto the other's
(Kabsch). This is exact for a turning camera whatever the depth of the scene, where a shift of the image is not
(points off the centre move along curves, which a similarity fit reads as a zoom). Chained over the clip, they
give each frame's camera orientation relative to the first (:attr:`CameraMotion.rotations`) and its zoom, which :func:`pose.pipeline.motion_from_landmarks` uses to put
every frame in the first frame's camera.

Limits: a far background gives the turn exactly; a near one (a wall a metre behind the person) also moves when
the camera is carried sideways, which reads as a turn. A background with no texture (a white wall) gives no
corners: those frame pairs count as "camera still", and :attr:`CameraMotion.measured` says how many were measured.
Cost: about 2-4 ms per frame at 320 px on this CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CameraMotion", "CameraMotionTracker", "SIDE"]

SIDE = 320  # width of the grey copy the background is tracked on, pixels
MIN_POINTS = 12  # fewer tracked background corners: the pair is not measured


@dataclass
class CameraMotion:
    """The camera's motion over a clip.

    rotations: ``(T, 3, 3)`` each frame's camera orientation in the first frame's camera axes (x right, y down,
        z ahead): a point ``p`` in frame ``t``'s camera frame is ``rotations[t] @ p`` in the first frame's.
    zoom: ``(T,)`` focal length relative to the first frame. measured: ``(T,)`` frames whose motion from the
        previous one was measured (not: too few background corners, or the first frame).
    """

    rotations: np.ndarray
    zoom: np.ndarray
    measured: np.ndarray

    @property
    def pan_degrees(self) -> float:
        """Range of the camera's heading over the clip (left-right turn), degrees."""
        ahead = self.rotations[:, :, 2]
        heading = np.degrees(np.unwrap(np.arctan2(ahead[:, 0], ahead[:, 2])))
        return float(np.ptp(heading)) if len(heading) else 0.0

    @property
    def tilt_degrees(self) -> float:
        """Range of the camera's up-down angle, degrees."""
        ahead = self.rotations[:, :, 2]
        return float(np.ptp(np.degrees(np.arcsin(np.clip(ahead[:, 1], -1, 1))))) if len(ahead) else 0.0

    @property
    def zoom_ratio(self) -> float:
        """Largest over smallest focal length over the clip (1: no zoom)."""
        return float(self.zoom.max() / self.zoom.min()) if len(self.zoom) else 1.0

    def moved(self, degrees: float = 3.0, zoom: float = 1.05) -> bool:
        return self.pan_degrees > degrees or self.tilt_degrees > degrees or self.zoom_ratio > zoom

    def describe(self) -> str:
        parts = []
        if self.pan_degrees > 3.0:
            parts.append(f"panned {self.pan_degrees:.0f}°")
        if self.tilt_degrees > 3.0:
            parts.append(f"tilted {self.tilt_degrees:.0f}°")
        if self.zoom_ratio > 1.05:
            parts.append(f"zoomed {self.zoom_ratio:.2f}x")
        return " and ".join(parts)

    @staticmethod
    def still(frames: int) -> "CameraMotion":
        return CameraMotion(np.tile(np.eye(3), (frames, 1, 1)), np.ones(frames), np.zeros(frames, bool))


def _spread(rays: np.ndarray) -> float:
    """Mean angle between unit rays ``(N, 3)`` and their mean direction: a turn keeps it, a zoom scales it."""
    mean = rays.mean(axis=0)
    return float(np.arccos(np.clip(rays @ (mean / np.linalg.norm(mean)), -1, 1)).mean())


def _rotation(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The rotation ``R`` that best maps unit rays ``after (N, 3)`` onto ``before (N, 3)`` (``R @ a ≈ b``, Kabsch):
    a direction seen in the later frame's camera, in the earlier frame's camera axes."""
    U, _, Vt = np.linalg.svd(before.T @ after)
    d = np.sign(np.linalg.det(U @ Vt))
    return U @ np.diag([1.0, 1.0, d]) @ Vt


class CameraMotionTracker:
    """Measures the camera's motion frame by frame (see the module docstring).

    Args:
        width, height: the frames' size, pixels. focal: the assumed focal length at that size, pixels.
    """

    def __init__(self, width: int, height: int, focal: float) -> None:
        self.scale = min(1.0, SIDE / max(width, 1))
        self.size = (max(int(round(width * self.scale)), 16), max(int(round(height * self.scale)), 16))
        self.focal = focal
        self._prev: np.ndarray | None = None
        self._prev_mask: np.ndarray | None = None
        self._rot = [np.eye(3)]
        self._zoom = [1.0]
        self._measured = [False]

    def _mask(self, box: np.ndarray | None) -> np.ndarray:
        mask = np.full(self.size[::-1], 255, np.uint8)
        if box is not None and np.isfinite(box).all():
            x0, y0, x1, y1 = np.asarray(box, float) * self.scale
            gx, gy = 0.5 * (x1 - x0), 0.5 * (y1 - y0)  # grown by half its size: limbs and shadow stay out
            mask[max(int(y0 - gy), 0):max(int(y1 + gy), 0), max(int(x0 - gx), 0):max(int(x1 + gx), 0)] = 0
        return mask

    def _rays(self, points: np.ndarray, focal: float) -> np.ndarray:
        """``(N, 3)`` unit viewing rays (camera axes) of ``(N, 1, 2)`` points of the small grey copy."""
        xy = points.reshape(-1, 2) / self.scale - (0.5 * self.size[0] / self.scale, 0.5 * self.size[1] / self.scale)
        rays = np.concatenate([xy / focal, np.ones((len(xy), 1))], axis=1)
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def step(self, rgb: np.ndarray, person_box: np.ndarray | None) -> None:
        """Add the next frame (``(H, W, 3)`` RGB) and where the followed person is in it (pixels), if known."""
        import cv2

        grey = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), self.size, interpolation=cv2.INTER_AREA)
        mask = self._mask(person_box)
        if self._prev is None:
            self._prev, self._prev_mask = grey, mask
            return
        turn = np.eye(3)
        zoom = 1.0
        ok = False
        pts = cv2.goodFeaturesToTrack(self._prev, maxCorners=150, qualityLevel=0.01, minDistance=6,
                                      mask=self._prev_mask & mask)
        if pts is not None and len(pts) >= MIN_POINTS:
            nxt, status, _ = cv2.calcOpticalFlowPyrLK(self._prev, grey, pts, None, winSize=(15, 15), maxLevel=2)
            good = status[:, 0] == 1
            if good.sum() >= MIN_POINTS:
                M, inliers = cv2.estimateAffinePartial2D(pts[good], nxt[good], method=cv2.RANSAC,
                                                         ransacReprojThreshold=1.0)
                if M is not None and inliers is not None and inliers.sum() >= MIN_POINTS:
                    keep = inliers[:, 0] == 1
                    f = self.focal * self._zoom[-1]
                    before, after = self._rays(pts[good][keep], f), self._rays(nxt[good][keep], f)
                    zoom = _spread(after) / max(_spread(before), 1e-9)
                    turn = _rotation(before, self._rays(nxt[good][keep], f * zoom))
                    ok = True
        self._rot.append(self._rot[-1] @ turn)
        self._zoom.append(self._zoom[-1] * zoom)
        self._measured.append(ok)
        self._prev, self._prev_mask = grey, mask

    def result(self, frames: int | None = None) -> CameraMotion:
        """The motion of the frames seen so far (padded with the last to ``frames``, if given)."""
        n = len(self._rot) if self._prev is not None else 0
        rot, zoom, measured = list(self._rot[:n]), list(self._zoom[:n]), list(self._measured[:n])
        while frames is not None and len(rot) < frames:
            rot.append(rot[-1] if rot else np.eye(3))
            zoom.append(zoom[-1] if zoom else 1.0)
            measured.append(False)
        return CameraMotion(np.array(rot).reshape(-1, 3, 3), np.array(zoom), np.array(measured, bool))
