"""The video with the fitted skeleton drawn over it (H.264 through core.render.video.write_mp4).

The frames are decoded again with the same trim and rotation as the pose pass and drawn at most
:data:`OVERLAY_SIDE` pixels on the long side (the page shows it in a panel of about that size; at the pose
pass's 1280 px, encoding took most of the overlay's 3 s on a 10 s clip), the joints scaled to match. Bones are drawn in the preview renderer's colours (the person's
left blue, right orange, centre grey); frames where nobody was detected get a small "no detection" tag, since
the skeleton there is interpolated. Planted feet get a white ring. Hands found in a frame are drawn as their 21
landmarks and bones (thin lines in the side's colour); a hand not found there is left undrawn (its fingers were
interpolated or relaxed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.render.video import write_mp4
from core.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS

from .video import open_video

__all__ = ["overlay_frames", "write_overlay", "people_picture", "OVERLAY_SIDE"]

OVERLAY_SIDE = 720

_LEFT = (56, 122, 235)
_RIGHT = (242, 128, 51)
_CENTRE = (210, 210, 205)
# MediaPipe's hand bones between the 21 landmarks (wrist, then four per finger from the base).
HAND_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12), (9, 13),
    (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))


def _colour(name: str) -> tuple[int, int, int]:
    return _LEFT if name.startswith("Left") else _RIGHT if name.startswith("Right") else _CENTRE


def overlay_frames(result, path: str | Path, trim=None, max_side: int = OVERLAY_SIDE) -> Iterator[np.ndarray]:
    """RGB frames of the video with ``result``'s skeleton drawn on them (``result``: a PoseResult), the long
    side at most ``max_side`` pixels."""
    import cv2

    meta = result.video
    side = min(max(meta.width, meta.height), max_side)
    reader = open_video(path, trim=trim if trim is not None else (meta.start, meta.end), max_side=side,
                        step=meta.step)
    P = result.joints_2d * (side / max(meta.width, meta.height))
    T = len(P)
    scale = side / 720
    thick = max(2, int(round(3 * scale)))
    feet = [CANONICAL_JOINTS.index(n) for n in ("LeftFoot", "RightFoot")]
    hands = None if getattr(result, "hands", None) is None else (
        result.hands.image[..., :2] * (side / max(meta.width, meta.height)))
    for frame in reader.frames():
        img = np.ascontiguousarray(frame.rgb)
        t = frame.index
        if t >= T:
            break
        pts = P[t]
        for j, p in enumerate(CANONICAL_PARENTS):
            if p < 0 or not (np.isfinite(pts[j]).all() and np.isfinite(pts[p]).all()):
                continue
            a = tuple(int(round(v)) for v in pts[p])
            b = tuple(int(round(v)) for v in pts[j])
            cv2.line(img, a, b, _colour(CANONICAL_JOINTS[j]), thick, cv2.LINE_AA)
        for j in range(len(CANONICAL_JOINTS)):
            if np.isfinite(pts[j]).all():
                cv2.circle(img, tuple(int(round(v)) for v in pts[j]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        for f, j in enumerate(feet):
            if result.contacts[t, f] and np.isfinite(pts[j]).all():
                cv2.circle(img, tuple(int(round(v)) for v in pts[j]), 4 * thick, (255, 255, 255), thick, cv2.LINE_AA)
        if hands is not None and t < len(hands):
            _draw_hands(img, hands[t], max(1, thick // 2))
        if not result.detected[t]:
            cv2.putText(img, "no detection", (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                        (255, 80, 80), max(1, thick // 2), cv2.LINE_AA)
        yield img


def _draw_hands(img: np.ndarray, hands: np.ndarray, thick: int) -> None:
    """Draw ``(2, 21, 2)`` hand landmarks (pixels; a hand with NaN is skipped) on ``img`` in place."""
    import cv2

    for points, colour in zip(hands, (_LEFT, _RIGHT)):
        if not np.isfinite(points).all():
            continue
        pts = [tuple(int(round(v)) for v in p) for p in points]
        for a, b in HAND_BONES:
            cv2.line(img, pts[a], pts[b], colour, thick, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, thick + 1, (255, 255, 255), -1, cv2.LINE_AA)


def write_overlay(result, video_path: str | Path, out_path: str | Path, check: Callable[[], None] | None = None) -> int:
    """Write the overlay video (H.264 mp4, the clip's own frame rate); returns the number of frames.

    ``check()`` is called every few frames: whatever it raises (a cancelled job) stops the video, no file left.
    """
    frames = overlay_frames(result, video_path)
    if check is not None:
        frames = _checked(frames, check)
    # One encoder thread: the overlay is written beside stage II, which a crowd of x264 threads slowed 1.8x.
    return write_mp4(frames, out_path, fps=result.fps, threads=1)


def _checked(frames: Iterator[np.ndarray], check: Callable[[], None], every: int = 8) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if i % every == 0:
            check()
        yield frame


def people_picture(rgb: np.ndarray, boxes: np.ndarray, suggested: int = 0, max_side: int = OVERLAY_SIDE) -> np.ndarray:
    """``rgb`` (``(H, W, 3)`` uint8) at most ``max_side`` pixels on the long side, with ``boxes`` (``(N, 4)``
    pixels ``x0, y0, x1, y1`` in ``rgb``) drawn and numbered 1..N in a label above each box: the picture the user
    picks a person from. The ``suggested`` person (1-based; 0: none) is drawn in the left colour, the others in
    the right one, each label on a dark backing so it reads on any background."""
    import cv2

    scale = min(1.0, max_side / max(rgb.shape[:2]))
    img = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray(img)
    H, W = img.shape[:2]
    thick = max(2, round(max(H, W) / 360))
    font = 0.5 + max(H, W) / 1200
    for k, box in enumerate(np.asarray(boxes, float) * scale, 1):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        colour = _LEFT if k == suggested else _RIGHT
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        label = str(k)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        lx, ly = min(max(x0, 0), W - tw - 8), max(y0 - 6, th + 8)  # above the box, inside the picture
        cv2.rectangle(img, (lx, ly - th - 6), (lx + tw + 8, ly + base - 2), (20, 20, 20), -1)
        cv2.putText(img, label, (lx + 4, ly - 3), cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick, cv2.LINE_AA)
    return img
