"""Reading a user's video robustly: any container OpenCV reads, rotation honoured, huge frames downscaled.

Frames come out as ``(H, W, 3)`` uint8 RGB arrays, upright (the container's display rotation applied), with the
long side at most ``max_side`` pixels. Headers lie (phones write variable frame rates, truncated files keep their
announced length), so the frame count and the frame rate are measured while decoding: the real fps is the number
of decoded frame intervals over the time their timestamps span.

Decoding runs on a background thread (OpenCV releases the GIL while it decodes), one or two frames ahead of the
consumer, so decoding overlaps with pose estimation on a 2-core machine.

Every way a file can be unusable raises :class:`VideoError` (an :class:`~core.errors.InputError`) with a message
saying what is wrong and what to do: a missing or empty file, something that is not a video, a truncated video
that cannot be opened, a clip longer than :data:`MAX_SECONDS`.
"""
from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from core.errors import InputError
from core.io.uploads import UnsafeInputError, check_input_file
from core.limits import MAX_CLIP_SECONDS

__all__ = ["VideoError", "VideoMeta", "Frame", "VideoReader", "open_video", "pose_step", "POSE_FPS", "MAX_SECONDS",
           "MAX_SIDE", "sniff_format"]

MAX_SECONDS = MAX_CLIP_SECONDS  # pose, retargeting and export times grow with length
MAX_SIDE = 1280  # long side after downscaling: MediaPipe works on 256-px crops, more pixels only cost decode time


class VideoError(InputError):
    """The video cannot be used (the message says why and what to do)."""


# ----------------------------------------------------------------------------------------------------------

# Only files that start like one of these containers reach the decoder. FFmpeg (inside OpenCV) also reads
# *playlists* (an "ffconcat" script, an HLS ``#EXTM3U`` list, an SDP session) whatever the file is called, and
# follows the paths and addresses in them: a text file uploaded as clip.mp4 made the server decode another file on
# its disk. Old QuickTime files may begin with an atom other than ftyp.
_SIGNATURES: list[tuple[int, bytes, str]] = [
    (4, b"ftyp", "MP4/MOV"), (4, b"moov", "MOV"), (4, b"mdat", "MOV"), (4, b"wide", "MOV"), (4, b"free", "MOV"),
    (4, b"skip", "MOV"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (8, b"AVI ", "AVI"),
    (0, b"FLV", "FLV"), (0, b"OggS", "Ogg"), (0, b"\x00\x00\x01\xba", "MPEG-PS"), (0, b"\x30\x26\xb2\x75", "ASF/WMV"),
]
_NOT_VIDEO: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG", "a PNG image"), (0, b"\xff\xd8\xff", "a JPEG image"), (0, b"GIF8", "a GIF image"),
    (0, b"%PDF", "a PDF document"), (0, b"PK\x03\x04", "a ZIP archive"), (8, b"WAVE", "a WAV audio file"),
    (0, b"ID3", "an MP3 audio file"), (0, b"BVH", "not a video but a BVH motion file"),
    (0, b"HIERARCHY", "not a video but a BVH motion file"), (0, b"Kaydara FBX", "not a video but an FBX file"),
    (0, b"glTF", "not a video but a GLB model"),
]


def sniff_format(head: bytes) -> tuple[str | None, str | None]:
    """(video container name, None) or (None, what else the file is) from its first bytes; (None, None) if unknown."""
    if len(head) >= 376 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG-TS", None
    for off, magic, name in _SIGNATURES:
        if head[off:off + len(magic)] == magic:
            return name, None
    for off, magic, what in _NOT_VIDEO:
        if head[off:off + len(magic)] == magic:
            return None, what
    return None, None


@dataclass(frozen=True)
class VideoMeta:
    """What is known about a video before decoding it (sizes after rotation and downscaling).

    width, height: size of the frames :meth:`VideoReader.frames` yields, pixels.
    source_width, source_height: the decoded stream's own size, upright (rotation applied).
    scale: width / source_width (1 when not downscaled).
    rotation: clockwise degrees applied to make the frames upright (0, 90, 180 or 270).
    header_fps, header_frames: what the container claims (may be 0 or wrong).
    start, end: the trim window [start, end) in seconds (end None = to the end).
    step: every ``step``-th frame of the window is read (the others are decoded, which H.264 needs, and dropped):
        a 60 fps clip read at 30 (see :func:`pose_step`).
    """

    path: Path
    width: int
    height: int
    source_width: int
    source_height: int
    scale: float
    rotation: int
    header_fps: float
    header_frames: int
    start: float
    end: float | None
    container: str | None
    step: int = 1

    @property
    def read_fps(self) -> float:
        """The header's rate of the frames read (every ``step``-th; 30 when the header has none)."""
        return (self.header_fps or 30.0) / self.step

    @property
    def read_frames(self) -> int:
        """How many of the frames the header announces are read (every ``step``-th, the first included)."""
        return -(-self.header_frames // self.step)

    @property
    def header_seconds(self) -> float:
        return self.header_frames / self.header_fps if self.header_fps > 0 and self.header_frames > 0 else 0.0


@dataclass
class Frame:
    """One decoded frame: ``index`` counts from the trim start, ``time`` is seconds from the video's start."""

    index: int
    time: float
    rgb: np.ndarray  # (H, W, 3) uint8


@dataclass
class DecodeStats:
    """Filled while :meth:`VideoReader.frames` runs: what decoding actually found."""

    frames: int = 0
    times: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    finished: bool = False

    def fps(self, fallback: float) -> float:
        """Frames per second measured from the decoded timestamps (``fallback`` when they are unusable)."""
        t = np.asarray(self.times, dtype=np.float64)
        if len(t) >= 2 and np.all(np.diff(t) > 0) and t[-1] > t[0]:
            return float((len(t) - 1) / (t[-1] - t[0]))
        return fallback

    def variable_rate(self) -> bool:
        """Whether frame intervals vary by more than 25 % around their median (a variable-frame-rate phone clip)."""
        d = np.diff(np.asarray(self.times, dtype=np.float64))
        if len(d) < 3 or not np.all(d > 0):
            return False
        med = float(np.median(d))
        return bool(np.mean(np.abs(d - med) > 0.25 * med) > 0.1)


def _rotation_code(degrees: int):
    import cv2

    return {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}.get(degrees)


class VideoReader:
    """A video opened for one or more decoding passes (see :func:`open_video`)."""

    def __init__(self, meta: VideoMeta, max_seconds: float) -> None:
        self.meta = meta
        self.max_seconds = max_seconds
        self.stats = DecodeStats()

    def _capture(self):
        import cv2

        cap = cv2.VideoCapture(str(self.meta.path))
        if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # we rotate ourselves, the same way on every build
        return cap

    def opening_fps(self, frames: int = 16) -> float:
        """Frames per second of the trim window's first ``frames`` frames, from their timestamps (decoded, not
        converted: a few tens of milliseconds), or the header's rate (30 when it has none) where they are unusable.

        What :func:`pose_step` goes by, with the header's rate (the lower of the two): the header is the file's own
        claim, and a 30 fps clip labelled 120 would otherwise have the pose stage skip three real frames in four.
        """
        import cv2

        m = self.meta
        cap = self._capture()
        times: list[float] = []
        try:
            if m.start > 0:
                cap.set(cv2.CAP_PROP_POS_MSEC, m.start * 1000.0)
            for _ in range(4 * frames):  # a seek may land a few frames early
                if len(times) >= frames or not cap.grab():
                    break
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if math.isfinite(t) and t >= m.start - 1e-6:
                    times.append(t)
        finally:
            cap.release()
        steps = np.diff(times)
        if len(steps) >= 2 and np.all(steps > 0):
            return float(1.0 / np.median(steps))
        return m.header_fps or 30.0

    def frames(self, prefetch: int = 2, skip: int = 0) -> Iterator[Frame]:
        """Decode the trim window, upright and downscaled, on a background thread ``prefetch`` frames ahead.

        Fills :attr:`stats` (decoded count, timestamps, warnings) as it goes. ``skip``: the first frames are
        decoded (they count, and their timestamps are kept) but not converted or yielded: a second pass that
        starts half-way through (seeking by time can land a frame off; counting cannot).

        Raises:
            VideoError: the decoded video runs past :data:`MAX_SECONDS` (its header said less), or nothing decodes.
        """
        import cv2

        m = self.meta
        self.stats = stats = DecodeStats()
        q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        stop = threading.Event()
        rot = _rotation_code(m.rotation)
        size = (m.width, m.height)
        resize = (m.width, m.height) != (m.source_width, m.source_height)
        fallback_dt = 1.0 / m.header_fps if m.header_fps > 0 else 1.0 / 30.0

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            cap = self._capture()
            try:
                if m.start > 0:
                    cap.set(cv2.CAP_PROP_POS_MSEC, m.start * 1000.0)
                raw_index = -1
                seen = 0  # frames within the trim window so far
                kept = 0  # of those, frames read (every m.step-th)
                last_t = -math.inf
                while not stop.is_set():
                    if not cap.grab():  # decoded; converted only if kept (retrieve below)
                        break
                    raw_index += 1
                    t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    if not (t > last_t) or not math.isfinite(t):  # no usable timestamps: count frames instead
                        t = (last_t + fallback_dt) if math.isfinite(last_t) else m.start + raw_index * fallback_dt
                    last_t = t
                    if t < m.start - 1e-6:
                        continue  # the seek landed on an earlier keyframe
                    if m.end is not None and t >= m.end - 1e-6:  # [start, end): 3 s at 30 fps is 90 frames
                        break
                    if t - m.start > self.max_seconds:
                        put(VideoError(_too_long_message(t - m.start, self.max_seconds, m.end is not None)))
                        return
                    seen += 1
                    if (seen - 1) % m.step:
                        continue  # between the frames read (see VideoMeta.step)
                    if kept < skip:
                        kept += 1
                        if not put((t, None)):
                            return
                        continue
                    kept += 1
                    ok, bgr = cap.retrieve()
                    if not ok or bgr is None:
                        break
                    if rot is not None:
                        bgr = cv2.rotate(bgr, rot)
                    if resize:
                        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                    if not put((t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))):
                        return
                put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                put(exc)
            finally:
                cap.release()

        thread = threading.Thread(target=work, name="video-decode", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                t, rgb = item
                stats.times.append(t)
                if rgb is not None:  # not a skipped frame
                    yield Frame(stats.frames, t, rgb)
                stats.frames += 1
        finally:
            stop.set()
            thread.join(timeout=5.0)
        stats.finished = True
        if stats.frames == 0:
            where = f" between {m.start:g} s and {m.end:g} s" if m.end is not None else (
                f" after {m.start:g} s" if m.start > 0 else "")
            raise VideoError(f"no frame of {m.path.name} could be decoded{where}: "
                             + ("check the trim times" if m.start > 0 or m.end is not None else
                                "the file is probably truncated or damaged"))
        expected = m.read_frames
        if m.start == 0 and m.end is None and expected > 0 and stats.frames < 0.9 * expected - 2:
            about = "about " if m.step > 1 else ""
            stats.warnings.append(
                f"only {about}{stats.frames * m.step} of the {m.header_frames} frames the file announces could be "
                f"decoded: the video is probably truncated (an incomplete copy or download); the decodable part was "
                f"used")


POSE_FPS = 30.0  # the pose stage reads a faster clip at about this rate (see pose_step)


def pose_step(fps: float) -> int:
    """Every how many frames the pose stage reads a clip of ``fps`` frames per second: the nearest whole ratio to
    :data:`POSE_FPS` (60 fps: every second frame; 50: every second, 25 fps; 120: every fourth; 30 or less, or an
    unknown rate: every frame).

    Why: the pose models' cost is per frame read, and a person's motion needs no more than 30 a second (the
    correction of stage II has 4 knots a second, the loss looks at 10); the motion is written at the clip's own
    rate again (:meth:`core.motion.Motion.resample`). A 10 s 60 fps clip: see bench app's 60 fps rows.
    """
    return max(1, int(round(fps / POSE_FPS))) if fps > 0 else 1


def _too_long_message(seconds: float, limit: float, trimmed: bool) -> str:
    what = "the trimmed part is" if trimmed else "the video is"
    return (f"{what} {_duration(seconds)} long; the limit is {_duration(limit)}: trim it first "
            f"(e.g. `--start 0 --end {min(limit, 60):g}` on the command line, or the trim fields in the app)")


def _duration(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} hours"
    if s >= 120:
        return f"{s / 60:.1f} minutes"
    return f"{s:.0f} s"


def open_video(path: str | Path, *, trim: tuple[float | None, float | None] | None = None,
               max_side: int = MAX_SIDE, max_seconds: float = MAX_SECONDS, step: int = 1) -> VideoReader:
    """Open a video for decoding, checking up front everything that can be checked without decoding it all.

    Args:
        path: any container OpenCV's FFmpeg backend reads (mp4, mov, mkv, webm, avi, ...).
        trim: ``(start, end)`` in seconds from the video's start, end excluded; either may be None (from the start
            / to the end).
        max_side: frames whose long side exceeds this are downscaled to it (an 8K clip becomes 1280 px wide).
        max_seconds: longest clip (after trimming) accepted.
        step: read every ``step``-th frame (see :class:`VideoMeta`).

    Raises:
        VideoError: missing, empty, not a video, undecodable (truncated), longer than ``max_seconds``, bad trim.
    """
    import cv2

    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise VideoError(f"no such file: {p}")
    if p.is_dir():
        raise VideoError(f"{p} is a folder, not a video file")
    if p.is_file() and not p.is_symlink() and p.stat().st_size == 0:
        raise VideoError(f"{p.name} is empty (0 bytes): the upload or copy did not complete")
    try:
        check_input_file(p, what="video")
    except UnsafeInputError as exc:
        raise VideoError(str(exc)) from None
    with open(p, "rb") as fh:
        head = fh.read(512)
    container, other = sniff_format(head)
    if other is not None:
        raise VideoError(f"{p.name} is {other}, not a video")
    if container is None:
        raise VideoError(f"{p.name} is not a video that can be read (format not recognised); use an ordinary "
                         f"phone video (mp4, mov, mkv, webm, avi)")

    start, end = (trim or (None, None))
    start = float(start or 0.0)
    end = None if end is None else float(end)
    if start < 0 or (end is not None and end <= start):
        raise VideoError(f"bad trim window: start {start:g} s, end {end:g} s (need 0 <= start < end)"
                         if end is not None else f"bad trim start {start:g} s (need >= 0)")

    cap = cv2.VideoCapture(str(p))
    try:
        if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            if container is not None:
                raise VideoError(f"{p.name} looks like a {container} video but cannot be decoded: the file is "
                                 f"probably truncated (an incomplete copy or download) or damaged; copy or export "
                                 f"it again")
            raise VideoError(f"{p.name} is not a video that can be read (format not recognised); use an ordinary "
                             f"phone video (mp4, mov, mkv, webm, avi)")
        h, w = first.shape[:2]
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360 if hasattr(
            cv2, "CAP_PROP_ORIENTATION_META") else 0
        if rotation not in (0, 90, 180, 270):
            rotation = 0
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if not (math.isfinite(fps) and 0 < fps < 1000):
        fps = 0.0
    frames = max(frames, 0)
    if rotation in (90, 270):
        w, h = h, w
    scale = min(1.0, max_side / max(w, h))
    out_w, out_h = (w, h) if scale >= 1.0 else (max(2, int(round(w * scale))), max(2, int(round(h * scale))))
    if not (isinstance(step, int) and step >= 1):
        raise ValueError(f"step must be a positive whole number, got {step!r}")
    meta = VideoMeta(p, out_w, out_h, w, h, out_w / w, rotation, fps, frames, start, end, container, step)

    header_s = meta.header_seconds
    if header_s > 0:
        if start >= header_s:
            raise VideoError(f"trim start {start:g} s is past the end of the video ({header_s:.1f} s)")
        span = (min(end, header_s) if end is not None else header_s) - start
        if span > max_seconds:
            raise VideoError(_too_long_message(span, max_seconds, trim is not None and any(
                x is not None for x in trim)))
    return VideoReader(meta, max_seconds)
