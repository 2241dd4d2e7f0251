"""The person's square crops of a video and how its camera saw them: what stage II's vision-language supervisor
compares the character's renders with (issue 17; the paper embeds the original frames for video input).

:func:`person_frames` turns a :class:`~pose.pipeline.PoseResult` into

* :class:`VideoCrops`: the frames cut to a square around the person, decoded again only when the encoder asks
  for them, batch by batch, cropped and resized while decoding, and only the frames the loss looks at
  (``every``): a 10-minute clip never sits in memory, only a batch of model-sized crops does;
* a :class:`~core.render.framing.VideoView`: per frame, the camera's direction through the crop's centre, its
  up, and the crop's field of view, so the character is rendered as the person was filmed.

The crops follow the fitted skeleton as projected into the image (``PoseResult.joints_2d``: every frame, gaps
filled), by the framing rule of :mod:`core.render.framing`, which frames the character alike.
Pixels beyond the frame's edge are white, like the renders' background.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from core.render.framing import CROP_PAD, VideoView, square_crops

from .root import FLIP
from .video import VideoError, open_video

__all__ = ["VideoCrops", "person_frames", "crop_square"]

_WHITE = (255, 255, 255)


def crop_square(rgb: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: the square ``crop = (centre x, centre y, side)`` pixels of ``(H, W, 3)``
    ``rgb``, white beyond its edges, resized (area averaging when shrinking)."""
    import cv2

    H, W = rgb.shape[:2]
    cx, cy, side = (float(v) for v in crop)
    x0, y0 = int(math.floor(cx - side / 2)), int(math.floor(cy - side / 2))
    n = max(1, int(round(side)))
    x1, y1 = x0 + n, y0 + n
    inner = rgb[max(y0, 0):min(y1, H), max(x0, 0):min(x1, W)]
    if inner.size == 0:
        return np.full((size, size, 3), 255, np.uint8)
    padded = cv2.copyMakeBorder(np.ascontiguousarray(inner), max(-y0, 0), max(y1 - H, 0), max(-x0, 0),
                                max(x1 - W, 0), cv2.BORDER_CONSTANT, value=_WHITE)
    interp = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
    return cv2.resize(padded, (size, size), interpolation=interp)


class VideoCrops:
    """Square crops around the person in frames ``frames`` of a video, decoded on demand (see the module
    docstring). ``crops``: ``(T, 3)`` per decoded frame ``(centre x, centre y, side)`` in pixels of frames
    decoded with ``trim``, ``max_side`` and ``step`` (every ``step``-th frame, as the pose stage read them).

    Implements what :meth:`core.semantics.base.SemanticEncoder.embed_source_frames` reads lazily: ``len``,
    :meth:`every`, :meth:`batches` and :attr:`key`.
    """

    def __init__(self, path: str | Path, trim: tuple[float, float | None], max_side: int, crops: np.ndarray,
                 frames: np.ndarray | None = None, step: int = 1) -> None:
        self.path, self.trim, self.max_side, self.step = Path(path), trim, int(max_side), int(step)
        self.crops = np.asarray(crops, dtype=np.float64)
        self.frames = np.arange(len(self.crops)) if frames is None else np.asarray(frames, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.frames)

    def every(self, step: int) -> "VideoCrops":
        """The crops of frames ``0, step, 2·step, …`` of these."""
        return VideoCrops(self.path, self.trim, self.max_side, self.crops, self.frames[::step], self.step)

    @property
    def key(self) -> tuple:
        """What identifies these crops for the encoder's cache: file, trim, frames and where they are cut."""
        digest = hashlib.sha1(self.frames.tobytes() + self.crops[self.frames].round(2).tobytes()).hexdigest()
        return ("video crops", str(self.path.resolve()), self.trim, self.max_side, self.step, digest)

    def batches(self, size: int, batch: int = 16) -> Iterator[np.ndarray]:
        """``(n, size, size, 3)`` uint8 crops, ``batch`` at a time, in order, decoding the video once.

        Raises:
            VideoError: the video decoded to fewer frames than the pose pass found (it changed on disk).
        """
        wanted = iter(self.frames.tolist())
        nxt = next(wanted, None)
        out: list[np.ndarray] = []
        reader = open_video(self.path, trim=self.trim, max_side=self.max_side, step=self.step)
        for frame in reader.frames():
            if nxt is None:
                break
            if frame.index != nxt:
                continue
            out.append(crop_square(frame.rgb, self.crops[nxt], size))
            nxt = next(wanted, None)
            if len(out) == batch:
                yield np.stack(out)
                out = []
        if out:
            yield np.stack(out)
        if nxt is not None:
            raise VideoError(f"{self.path.name} decoded to fewer frames than when its pose was estimated "
                             f"(frame {nxt} is missing): was the file changed? Run the job again")


def person_frames(result, path: str | Path, pad: float = CROP_PAD) -> tuple[VideoCrops, VideoView]:
    """The person's crops in the video at ``path`` and the camera's view of them, from its
    :class:`~pose.pipeline.PoseResult` (``result.video`` must be set: a result of
    :func:`~pose.pipeline.video_to_motion`)."""
    meta = result.video
    if meta is None:
        raise ValueError("the pose result has no video: crops need the file it was estimated from")
    crops = square_crops(result.joints_2d, pad)
    cam = result.camera
    # The ray through each crop's centre and the camera's up (image y is down), from camera axes to the world's.
    rays = np.stack([(crops[:, 0] - cam.cx) / cam.focal, (crops[:, 1] - cam.cy) / cam.focal,
                     np.ones(len(crops))], axis=-1)
    to_world = cam.rotation @ FLIP
    forward = rays @ to_world.T
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    up = np.tile(to_world @ np.array([0.0, -1.0, 0.0]), (len(crops), 1))
    fov = np.degrees(2 * np.arctan(crops[:, 2] / (2 * cam.focal)))
    view = VideoView(forward, up, np.clip(fov, 1e-3, 160.0))
    return VideoCrops(path, (meta.start, meta.end), max(meta.width, meta.height), crops, step=meta.step), view
