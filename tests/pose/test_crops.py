"""The person's crops of a video and the camera's view of them (pose/crops.py), for stage II's VLM (issue 17)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.render.framing import square_crops
from core.render.video import write_mp4
from pose.crops import VideoCrops, crop_square, person_frames
from pose.root import CameraModel
from pose.video import open_video


def _walking_box_video(path, frames: int = 12, size=(240, 160)):
    """A green "person" (a 30 x 80 px bar with a red head) walking right on grey, partly out of the frame at first
    (the crops' padding is white); returns its joints' pixels."""
    W, H = size
    images, joints = [], []
    for t in range(frames):
        img = np.full((H, W, 3), 90, np.uint8)
        x0 = 20 + 15 * t
        img[40:120, x0:x0 + 30] = (0, 255, 0)
        img[40:55, x0:x0 + 30] = (255, 0, 0)
        images.append(img)
        joints.append([[x0 + 15, 55], [x0, 80], [x0 + 30, 80], [x0 + 15, 115]])  # neck, hands, feet-ish
    write_mp4(images, path, fps=10, crf=10)
    return np.asarray(joints, float)


def test_crops_follow_the_persons_box(tmp_path):
    path = tmp_path / "walk.mp4"
    joints = _walking_box_video(path)
    meta = open_video(path).meta
    crops = VideoCrops(path, (0.0, None), max(meta.width, meta.height), square_crops(joints))
    images = np.concatenate(list(crops.batches(64, batch=5)))
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    for img in images:
        green = (img[..., 1] > 180) & (img[..., 0] < 90)
        ys, xs = np.nonzero(green)
        assert abs(xs.mean() - 31.5) < 4 and abs(ys.mean() - 31.5) < 8  # the person stays in the middle
    red = (images[..., 0] > 180) & (images[..., 1] < 90)
    assert all(np.nonzero(r)[0].mean() < 32 for r in red)  # head up: not flipped
    every = crops.every(4)
    assert len(every) == 3 and np.array_equal(np.concatenate(list(every.batches(64))), images[::4])
    assert every.key != crops.key


def test_crop_square_pads_beyond_the_frame_with_white():
    rgb = np.zeros((50, 80, 3), np.uint8)
    out = crop_square(rgb, np.array([5.0, 5.0, 40.0]), 20)
    assert out.shape == (20, 20, 3)
    assert (out[:5, :5] == 255).all() and (out[-5:, -5:] == 0).all()


def test_person_frames_turn_the_pose_camera_into_the_videos_view(tmp_path):
    path = tmp_path / "walk.mp4"
    joints = _walking_box_video(path, frames=4)
    meta = open_video(path).meta
    camera = CameraModel.from_fov(meta.width, meta.height, 60.0)
    joints2d = np.repeat(joints[:, :1], 22, axis=1)
    joints2d[:, 1:4] = joints[:, 1:]
    result = SimpleNamespace(video=meta, joints_2d=joints2d, camera=camera)
    crops, view = person_frames(result, path)
    assert np.allclose(crops.crops, square_crops(joints2d)) and len(view) == 4
    # Camera axes to world: x right, y up, the camera looking along -Z; a person right of centre is seen turned.
    centre_x = crops.crops[:, 0]
    assert np.all(np.diff(view.forward[:, 0]) > 0) and np.all(view.forward[:, 2] < 0)
    assert np.allclose(np.sign(view.forward[:, 0]), np.sign(centre_x - camera.cx))
    assert np.allclose(view.up, [0, 1, 0])
    expected = np.degrees(2 * np.arctan(crops.crops[:, 2] / (2 * camera.focal)))
    assert np.allclose(view.fov, expected)
    with pytest.raises(ValueError, match="no video"):
        person_frames(SimpleNamespace(video=None), path)
