"""Framing a figure the way a video framed its person: the crop of a video frame around the person, and the
camera that renders a character in their place, so stage II compares like with like (issue 17).

Both show the whole figure in a square with a little room around it:

* the person (:func:`square_crops`): a square centred on the box of their 22 canonical joints as seen in the
  image, its side the box's longer side times ``1 + 2 · CROP_PAD``: the pad covers what lies beyond the joints
  (the top of the head, 0.13 of the stature above the Head joint; fingers beyond the wrists; the soles);
* the character (:meth:`VideoView.cameras`): its mesh is at hand, so the square frames the mesh's box with
  ``RENDER_MARGIN``, looking the way the video's camera looked at the person (its direction through the crop's
  centre, its up) with the crop's own field of view, so the character is seen from the same side, as
  foreshortened and as placed as the person in the crop.

Conventions: pixels x right, y down, centres at .5; world metres, Y up; cameras are
:class:`core.render.preview.Camera` (OpenGL, looking down −z).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .preview import Camera

__all__ = ["CROP_PAD", "RENDER_MARGIN", "square_crops", "VideoView"]

# A standing person's joints span about 0.85 of the stature, the head's top is 0.13 above the Head joint: with the
# square centred on the joints, 0.2 leaves about 0.05 of the side above the head (0.15 cut it at the crop's edge).
CROP_PAD = 0.2
RENDER_MARGIN = 0.05


def square_crops(points: np.ndarray, pad: float = CROP_PAD) -> np.ndarray:
    """``(T, 3)`` square crops ``(centre x, centre y, side)`` in pixels around ``(T, N, 2)`` image points (NaNs are
    ignored; a frame without a finite point takes the nearest frame's crop).

    Raises:
        ValueError: wrong shape, a negative pad, or no finite point in any frame.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"points must be (T, N, 2) pixels, got {p.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    ok = np.isfinite(p).all(-1)
    seen = ok.any(1)
    if not seen.any():
        raise ValueError("no finite image point in any frame: nothing to crop around")
    lo = np.where(ok[..., None], p, np.inf).min(axis=1)  # (T, 2); inf in frames without a point
    hi = np.where(ok[..., None], p, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):  # the unseen frames' inf - inf, replaced below
        centre = 0.5 * (lo + hi)
        side = (1 + 2 * pad) * np.maximum((hi - lo).max(-1), 1.0)
    out = np.concatenate([centre, side[:, None]], axis=1)
    if not seen.all():  # nearest seen frame
        idx = np.flatnonzero(seen)
        nearest = idx[np.abs(np.arange(len(p))[:, None] - idx[None]).argmin(1)]
        out = out[nearest]
    return out


@dataclass(frozen=True)
class VideoView:
    """How a video's camera saw its person in each frame's crop.

    forward: ``(T, 3)`` unit world direction from the camera through the crop's centre.
    up: ``(T, 3)`` the camera's up direction in the world (not necessarily ⟂ forward; it is made so).
    fov: ``(T,)`` the crop's field of view across its side, degrees.
    margin: room around the character's mesh in its render, a share of the box's longer side on each side.
    """

    forward: np.ndarray
    up: np.ndarray
    fov: np.ndarray
    margin: float = RENDER_MARGIN

    def __post_init__(self) -> None:
        T = len(self.forward)
        if np.shape(self.forward) != (T, 3) or np.shape(self.up) != (T, 3) or np.shape(self.fov) != (T,):
            raise ValueError(f"VideoView needs forward (T, 3), up (T, 3), fov (T,); got {np.shape(self.forward)}, "
                             f"{np.shape(self.up)}, {np.shape(self.fov)}")
        if not (np.isfinite(self.fov).all() and (self.fov > 0).all() and (self.fov < 170).all()):
            raise ValueError("every field of view must be within (0, 170) degrees")

    def __len__(self) -> int:
        return len(self.forward)

    def every(self, step: int) -> "VideoView":
        """The view on frames ``0, step, 2·step, …``."""
        return VideoView(self.forward[::step], self.up[::step], self.fov[::step], self.margin)

    def cameras(self, points: np.ndarray) -> list[Camera]:
        """One camera per frame that frames ``(T, N, 3)`` points of a figure's surface (world metres; e.g. a
        few hundred mesh vertices) with :attr:`margin`, looking along :attr:`forward` with the crop's field of
        view (see the module docstring)."""
        X = np.asarray(points, dtype=np.float64)
        if X.ndim != 3 or X.shape[0] != len(self) or X.shape[-1] != 3:
            raise ValueError(f"points must be ({len(self)}, N, 3), got {X.shape}")
        cams = []
        for t in range(len(self)):
            f = self.forward[t] / np.linalg.norm(self.forward[t])
            r = np.cross(f, self.up[t])
            if np.linalg.norm(r) < 1e-6:  # looking straight along "up" (a camera filming from overhead)
                r = np.cross(f, [0.0, 0.0, 1.0]) if abs(f[2]) < 0.9 else np.cross(f, [1.0, 0.0, 0.0])
            r /= np.linalg.norm(r)
            u = np.cross(r, f)
            p = X[t][np.isfinite(X[t]).all(-1)]
            x, y, z = p @ r, p @ u, p @ f
            # The box as seen from afar (across the view), then the distance at which its longer side takes
            # 1 / (1 + 2 margin) of the field of view; the box's near face is what must fit, so it sets the distance.
            extent = max(float(np.ptp(x)), float(np.ptp(y)), 1e-3)
            half = math.tan(math.radians(self.fov[t]) / 2)
            distance = extent * (1 + 2 * self.margin) / (2 * half) + float(z.mean() - z.min())
            target = r * 0.5 * (x.min() + x.max()) + u * 0.5 * (y.min() + y.max()) + f * float(z.mean())
            cams.append(Camera(eye=target - f * distance, target=target, up=u, fov_y=float(self.fov[t]),
                               near=max(1e-3, 0.1 * distance), far=10 * distance + 10 * extent,
                               extent=extent))
        return cams
