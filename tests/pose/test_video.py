"""Video reading: rotation, trimming, downscaling, measured fps, and every bad input's message."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.render.video import write_mp4
from pose.video import VideoError, open_video, pose_step, sniff_format

from .conftest import ffmpeg, gradient_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_mp4(gradient_frames(50, 160, 96), path, fps=25)
    return path


def test_reads_every_frame_with_measured_fps(clip):
    reader = open_video(clip)
    frames = list(reader.frames())
    assert len(frames) == 50 == reader.stats.frames
    assert frames[0].rgb.shape == (96, 160, 3) and frames[0].rgb.dtype == np.uint8
    assert reader.stats.fps(0.0) == pytest.approx(25.0, rel=1e-3)
    assert [f.index for f in frames] == list(range(50))
    assert np.all(np.diff([f.time for f in frames]) > 0)


def test_a_pass_that_skips_frames_counts_them_and_yields_the_rest_unchanged(clip):
    # The pose stage's second half starts by counting its way to the half (seeking by time can land a frame off).
    whole = list(open_video(clip).frames())
    reader = open_video(clip)
    rest = list(reader.frames(skip=20))
    assert [f.index for f in rest] == list(range(20, 50)) and reader.stats.frames == 50
    assert len(reader.stats.times) == 50 and reader.stats.fps(0.0) == pytest.approx(25.0, rel=1e-3)
    assert all(np.array_equal(a.rgb, b.rgb) and a.time == b.time for a, b in zip(whole[20:], rest))


def test_a_fast_clip_is_read_at_about_30_fps_and_every_pass_reads_the_same_frames(clip):
    # A 50 fps clip read every second frame (pose_step): the pose stage, its second half, the overlay and the
    # crops all open it with the same step and must see the same frames under the same numbers.
    rates = (0.0, 24.0, 30.0, 40.0, 50.0, 59.94, 60.0, 120.0, 240.0)
    assert [pose_step(f) for f in rates] == [1, 1, 1, 1, 2, 2, 2, 4, 8]
    whole = list(open_video(clip).frames())
    reader = open_video(clip, step=2)
    read = list(reader.frames())
    assert [f.index for f in read] == list(range(25)) and reader.stats.frames == 25
    assert all(np.array_equal(a.rgb, b.rgb) and a.time == b.time for a, b in zip(whole[::2], read))
    assert reader.stats.fps(0.0) == pytest.approx(12.5, rel=1e-3)
    rest = open_video(clip, step=2)
    assert [f.time for f in rest.frames(skip=10)] == [f.time for f in read[10:]] and rest.stats.frames == 25
    with pytest.raises(ValueError, match="step"):
        open_video(clip, step=0)


def test_the_rate_a_clip_is_read_at_goes_by_its_frames_not_its_header(clip):
    # A header is the file's own claim: a 25 fps clip labelled 120 must not be read every fourth frame.
    from dataclasses import replace

    from pose.video import VideoReader

    reader = open_video(clip)
    assert reader.opening_fps() == pytest.approx(25.0, rel=1e-3)
    lying = VideoReader(replace(reader.meta, header_fps=120.0), reader.max_seconds)
    assert lying.opening_fps() == pytest.approx(25.0, rel=1e-3) and pose_step(lying.opening_fps()) == 1
    assert open_video(clip, trim=(1.0, None)).opening_fps() == pytest.approx(25.0, rel=1e-3)


def test_trim_window(clip):
    reader = open_video(clip, trim=(0.4, 1.2))
    frames = list(reader.frames())
    assert 19 <= len(frames) <= 21
    assert frames[0].time == pytest.approx(0.4, abs=0.041)
    assert frames[-1].time < 1.2 - 1e-6  # half-open: [start, end)
    with pytest.raises(VideoError, match="trim"):
        open_video(clip, trim=(1.0, 0.5))
    with pytest.raises(VideoError, match="past the end"):
        open_video(clip, trim=(30.0, None))


def test_rotation_metadata_is_honoured(clip, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(clip), "-c", "copy", str(rotated))
    upright = tmp_path / "upright.png"
    ffmpeg("-i", str(rotated), "-frames:v", "1", str(upright))  # ffmpeg applies the rotation itself
    import cv2

    reference = cv2.cvtColor(cv2.imread(str(upright)), cv2.COLOR_BGR2RGB)
    reader = open_video(rotated)
    assert reader.meta.rotation in (90, 270)
    assert (reader.meta.width, reader.meta.height) == (96, 160)
    first = next(iter(reader.frames())).rgb
    assert first.shape == reference.shape
    assert np.abs(first.astype(int) - reference).mean() < 3.0


def test_huge_frames_are_downscaled(tmp_path):
    path = tmp_path / "8k.mp4"
    frame = np.full((4320, 7680, 3), 90, np.uint8)
    frame[:864, :1536] = 255  # a block in the top-left corner survives downscaling
    write_mp4([frame, frame], path, fps=10, preset="ultrafast")
    reader = open_video(path)
    assert (reader.meta.source_width, reader.meta.source_height) == (7680, 4320)
    assert (reader.meta.width, reader.meta.height) == (1280, 720)
    frames = list(reader.frames())
    assert len(frames) == 2 and frames[0].rgb.shape == (720, 1280, 3)
    assert frames[0].rgb[:100, :200].min() > 240 and frames[0].rgb[300:, 400:].max() < 110


def test_missing_empty_and_not_a_video(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        open_video(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        open_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video at all\n" * 50)
    with pytest.raises(VideoError, match="not a video"):
        open_video(text)
    png = tmp_path / "picture.mov"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    with pytest.raises(VideoError, match="PNG image"):
        open_video(png)
    assert issubclass(VideoError, InputError)
    assert sniff_format(b"\0\0\0\x18ftypmp42" + b"\0" * 100)[0] == "MP4/MOV"


def test_truncated_videos(clip, tmp_path):
    # Phones write the index (moov) last: cut short, such a file cannot be opened at all.
    moov_last = tmp_path / "moov_last.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", str(moov_last))
    data = moov_last.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated"):
        open_video(cut)
    # Index first (faststart): the part that is there decodes, with a warning.
    data = clip.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    reader = open_video(half)
    frames = list(reader.frames())
    assert 0 < len(frames) < 50
    assert any("truncated" in w for w in reader.stats.warnings)


def test_too_long_is_refused_with_the_limit(clip):
    with pytest.raises(VideoError, match=r"limit is 1 s: trim it"):
        open_video(clip, max_seconds=1.0)
    reader = open_video(clip, trim=(0.0, 0.8), max_seconds=1.0)  # a trim within the limit is fine
    assert len(list(reader.frames())) >= 19


@pytest.mark.parametrize("playlist", ["ffconcat version 1.0\nfile {other}\n",
                                      "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{other}\n#EXT-X-ENDLIST\n"])
def test_a_playlist_named_like_a_video_never_makes_us_read_the_file_it_names(tmp_path, playlist):
    from core.render.video import VideoWriteError, write_browser_preview

    other = tmp_path / "someone_elses.mp4"
    write_mp4(gradient_frames(12, 64, 48), other, 24.0)
    for name in ("clip.mp4", "clip.m3u8"):
        upload = tmp_path / name
        upload.write_text(playlist.format(other=other))
        with pytest.raises(VideoError, match="format not recognised"):
            open_video(upload)
        with pytest.raises(VideoWriteError):  # the page's preview of the upload
            write_browser_preview(upload, tmp_path / "preview.mp4")
        assert not (tmp_path / "preview.mp4").exists()
