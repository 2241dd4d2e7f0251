"""Browser previews of uploads: which videos browsers play as they are, and the H.264 copy of the others."""
from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from core.render.video import VideoWriteError, browser_playable, probe_video, write_browser_preview, write_mp4


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 1 s H.264 clip (what the repo writes) and its conversions into codecs browsers do not play."""
    folder = tmp_path_factory.mktemp("clips")
    frames = [np.full((360, 480, 3), (i * 8) % 255, np.uint8) for i in range(30)]
    h264 = folder / "h264.mp4"
    write_mp4(frames, h264, fps=30)
    out = {"h264": h264}
    for name, args in {"mpeg4.mp4": ["-c:v", "mpeg4"], "h264_422.mp4": ["-c:v", "libx264", "-pix_fmt",
                                                                          "yuv422p"],
                       "mjpeg.avi": ["-c:v", "mjpeg"]}.items():
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(h264), *args, str(folder / name)],
                       check=True)
        out[name] = folder / name
    return out


def test_only_what_browsers_decode_counts_as_playable(clips, tmp_path):
    assert browser_playable(clips["h264"])
    for name in ("mpeg4.mp4", "h264_422.mp4", "mjpeg.avi"):
        assert not browser_playable(clips[name]), name
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 1000)
    assert not browser_playable(junk)


def test_preview_is_small_upright_h264_of_the_same_length(clips, tmp_path):
    out = tmp_path / "preview.mp4"
    write_browser_preview(clips["mpeg4.mp4"], out, max_side=320)
    info = probe_video(out)
    assert (info.codec, info.pix_fmt, info.width, info.height, info.frames) == ("h264", "yuv420p", 320, 240, 30)
    assert browser_playable(out)


def test_a_file_ffmpeg_cannot_read_gets_a_message_without_its_bytes_and_no_file(tmp_path):
    bad = tmp_path / "evil.mp4"
    bad.write_bytes(b"SECRET-PAYLOAD" * 100)
    out = tmp_path / "preview.mp4"
    with pytest.raises(VideoWriteError, match="cannot make a browser preview of evil.mp4") as caught:
        write_browser_preview(bad, out)
    assert "SECRET" not in str(caught.value)
    assert list(tmp_path.iterdir()) == [bad]  # no preview, no temporary file
