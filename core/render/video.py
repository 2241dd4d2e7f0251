"""Writing browser-playable H.264 mp4 files, and probing videos (for tests and checks).

Frames are ``(H, W, 3)`` uint8 RGB arrays. :func:`write_mp4` streams them into the ffmpeg that imageio-ffmpeg
bundles (libx264, ``yuv420p``, ``+faststart``: plays in Chromium/Firefox/Safari and starts before it has fully
downloaded). Odd frame sizes are padded by one edge-replicated row/column, since 4:2:0 chroma needs even sizes.
The file appears atomically: it is written under a temporary name in the target folder and renamed when complete,
so a reader never sees half a video and a failure leaves nothing behind.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..io.files import atomic_file

# Every ffmpeg run on a file a user sent: local files only, and only real video containers. FFmpeg otherwise also
# opens playlists (ffconcat, HLS, SDP) that name other files or addresses, whatever the file is called.
SAFE_INPUT = ["-protocol_whitelist", "file", "-format_whitelist",
              "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpeg,mpegts,flv,asf,ogg"]

__all__ = ["write_mp4", "probe_video", "probe_video_codec", "VideoInfo", "VideoWriteError", "DEFAULT_CRF",
           "browser_playable", "write_browser_preview"]

DEFAULT_CRF = 20  # visually clean for flat-shaded previews, ~0.2-0.5 MB per 10 s at 512x512
DEFAULT_PRESET = "veryfast"  # encoding must not be the slow part of a preview; size cost is small at this crf


class VideoWriteError(RuntimeError):
    """ffmpeg could not write the video (the message carries ffmpeg's own words where there are any)."""


def _even_pad(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if h == height and w == width:
        return frame
    return np.pad(frame, ((0, height - h), (0, width - w), (0, 0)), mode="edge")


def _check_frame(frame: np.ndarray, index: int, shape: tuple[int, int] | None) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index}: expected an (H, W, 3) RGB array, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame {index}: expected dtype uint8, got {frame.dtype}")
    if shape is not None and frame.shape[:2] != shape:
        raise ValueError(f"frame {index}: size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                         f"{shape[1]}x{shape[0]}")
    return frame


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float, crf: int = DEFAULT_CRF,
              preset: str = DEFAULT_PRESET, threads: int | None = None) -> int:
    """Stream RGB frames into an H.264 mp4 (``yuv420p``, ``+faststart``); frames are not held in memory.

    Args:
        frames: ``(H, W, 3)`` uint8 RGB arrays, all the same size (odd sizes are padded to even).
        path: the ``.mp4`` to write; its folder must exist. An existing file is replaced atomically.
        fps: frames per second (fractional rates like 29.97 are kept as a rational).
        crf: x264 constant rate factor (0 lossless .. 51 worst).
        preset: x264 speed preset.
        threads: x264's threads (None: its own choice, about 1.5 per core). One for a video written beside
            other work, so the encoder does not crowd it off the cores.

    Returns:
        The number of frames written.

    Raises:
        ValueError: no frames, or a frame of the wrong shape, dtype or size.
        VideoWriteError: ffmpeg failed (or the file could not be moved into place).
        Anything the ``frames`` iterable itself raises, unchanged. In every error case no file and no temporary
        file is left behind (an existing file at ``path`` stays as it was).
    """
    import imageio_ffmpeg

    path = Path(path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise VideoWriteError(f"cannot write {path}: folder {folder} does not exist")
    writer = None
    process = None
    count = 0
    with atomic_file(path, suffix=".tmp.mp4") as tmp:
        try:
            shape: tuple[int, int] | None = None
            padded = (0, 0)
            for frame in frames:
                frame = _check_frame(frame, count, shape)
                if writer is None:
                    shape = frame.shape[:2]
                    padded = (shape[0] + shape[0] % 2, shape[1] + shape[1] % 2)
                    writer = imageio_ffmpeg.write_frames(
                        str(tmp), (padded[1], padded[0]), pix_fmt_in="rgb24", pix_fmt_out="yuv420p", fps=fps,
                        codec="libx264", quality=None, macro_block_size=1, ffmpeg_log_level="error",
                        output_params=["-crf", str(int(crf)), "-preset", preset, "-movflags", "+faststart",
                                       *(["-threads", str(int(threads))] if threads else []), "-f", "mp4"])
                    try:
                        writer.send(None)  # start ffmpeg
                    except Exception as exc:  # noqa: BLE001 - rewrap with context
                        raise VideoWriteError(f"cannot start ffmpeg to write {path}: {exc}") from exc
                    # write_frames does not check ffmpeg's exit status on close; keep its process to do so ourselves.
                    frame_locals = writer.gi_frame.f_locals if writer.gi_frame is not None else {}
                    process = frame_locals.get("p")
                try:
                    writer.send(np.ascontiguousarray(_even_pad(frame, *padded)))
                except Exception as exc:  # noqa: BLE001
                    raise VideoWriteError(f"ffmpeg failed while writing frame {count} of {path}: {exc}") from exc
                count += 1
            if writer is None:
                raise ValueError(f"no frames to write to {path}")
            try:
                writer.close()  # waits for ffmpeg to finish the file (moov atom moved to the front)
            except Exception as exc:  # noqa: BLE001
                raise VideoWriteError(f"ffmpeg failed finishing {path}: {exc}") from exc
            finally:
                writer = None
            code = getattr(process, "returncode", 0)
            if code:
                raise VideoWriteError(f"ffmpeg failed writing {path} (exit status {code}; its messages are on stderr)")
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise VideoWriteError(f"ffmpeg produced no output for {path}")
        finally:
            if writer is not None:
                try:
                    writer.close()  # stops ffmpeg
                except Exception:  # noqa: BLE001 - already failing; the original error matters
                    pass
    return count


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a file's first video stream."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float | None
    frames: int | None  # number of video frames (packets), None if ffmpeg did not say


_STREAM_RE = re.compile(r"Stream #\d+:\d+[^:]*: Video: (?P<codec>[\w-]+)(?P<rest>.*)")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Codec, pixel format, size, frame rate and frame count of a video's first video stream (bundled ffmpeg).

    One ffmpeg run that copies the stream to nowhere (no decoding), so it is fast even for long videos.

    Raises:
        FileNotFoundError: no such file.
        ValueError: ffmpeg finds no video stream in it.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video at {path}")
    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *SAFE_INPUT, "-i", str(path),
                           "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                          capture_output=True, text=True, errors="replace", timeout=120)
    counts = re.findall(r"frame=\s*(\d+)", proc.stderr)
    frames = int(counts[-1]) if counts and proc.returncode == 0 else None
    for line in proc.stderr.splitlines():
        m = _STREAM_RE.search(line)
        if not m:
            continue
        # Split the rest on top-level commas only ("yuv420p(tv, bt709, progressive)" holds commas itself).
        parts, depth, cur = [], 0, ""
        for ch in m.group("rest"):
            depth += ch == "("
            depth -= ch == ")"
            if ch == "," and depth == 0:
                parts.append(cur.strip())
                cur = ""
            else:
                cur += ch
        parts.append(cur.strip())
        pix_fmt, width, height, fps = "", 0, 0, None
        for part in parts[1:]:
            size = re.match(r"(\d+)x(\d+)", part)
            if size and not width:
                width, height = int(size.group(1)), int(size.group(2))
            elif not pix_fmt and re.match(r"^[a-z0-9_]+(\(.*\))?$", part) and not size:
                pix_fmt = part.split("(")[0]
            rate = re.match(r"([\d.]+) fps", part)
            if rate:
                fps = float(rate.group(1))
        return VideoInfo(m.group("codec"), pix_fmt, width, height, fps, frames)
    raise ValueError(f"no video stream found in {path}: {proc.stderr.strip().splitlines()[-1:] or ['?']}")


def probe_video_codec(path: str | os.PathLike) -> str:
    """The codec name of a video's first video stream, e.g. ``"h264"``."""
    return probe_video(path).codec


# (container, codec) pairs every current browser decodes; pixel formats other than 8-bit 4:2:0 (10-bit, 4:2:2
# from cameras) are refused by Chromium's H.264 decoder, so they count as unplayable too.
_PLAYABLE = {(".mp4", "h264"), (".m4v", "h264"), (".mp4", "av1"), (".webm", "vp8"), (".webm", "vp9"),
             (".webm", "av1")}


def browser_playable(path: str | os.PathLike) -> bool:
    """Whether browsers can play this video as it is (container, codec, 8-bit 4:2:0); False when unreadable."""
    try:
        info = probe_video(path)
    except (ValueError, OSError, subprocess.SubprocessError):
        return False
    return (Path(path).suffix.lower(), info.codec) in _PLAYABLE and info.pix_fmt in ("yuv420p", "yuvj420p")


def write_browser_preview(src: str | os.PathLike, dst: str | os.PathLike, max_side: int = 640,
                          timeout: float = 300.0) -> None:
    """A small H.264 copy of ``src`` that any browser plays (upright, long side at most ``max_side``, sound
    kept as AAC), for showing a user what they uploaded when their file itself does not play in a browser
    (MPEG-4 Part 2, HEVC, 10-bit H.264, AVI, ...).

    Raises:
        VideoWriteError: ffmpeg cannot read or convert ``src`` or ran past
            ``timeout`` seconds; nothing is left at ``dst`` then.
    """
    import imageio_ffmpeg

    dst = Path(dst)
    # Both sides scaled by the same factor to fit max_side, rounded to even sizes (4:2:0); never enlarged.
    scale = (f"scale='2*trunc(min(1,{max_side}/max(iw,ih))*iw/2)':'2*trunc(min(1,{max_side}/max(iw,ih))*ih/2)'")
    with atomic_file(dst, suffix=".tmp.mp4") as tmp:
        argv = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *SAFE_INPUT, "-i", str(src),
                "-map", "0:v:0", "-map", "0:a:0?", "-vf", scale, "-c:v", "libx264", "-preset", "veryfast",
                "-crf", "26", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart",
                "-f", "mp4", str(tmp)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VideoWriteError(f"making a browser preview of {Path(src).name} took over {timeout:g} s") from None
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            # ffmpeg's own words stay out of the message: they can quote bytes of a hostile file (codec tags).
            raise VideoWriteError(f"cannot make a browser preview of {Path(src).name}: ffmpeg could not convert "
                                  f"it (exit status {proc.returncode}); the file may be damaged")
