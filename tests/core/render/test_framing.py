"""The framing rule shared by the person's crops and the character's renders (core/render/framing.py)."""
from __future__ import annotations

import numpy as np
import pytest

from core.render.framing import CROP_PAD, VideoView, square_crops


def test_square_crops_follow_the_points_and_fill_gaps_from_the_nearest_frame():
    T = 6
    points = np.zeros((T, 4, 2))
    for t in range(T):  # a 40 x 100 px box walking right by 30 px a frame
        points[t] = [[100 + 30 * t, 50], [140 + 30 * t, 50], [100 + 30 * t, 150], [140 + 30 * t, 150]]
    points[3] = np.nan  # nobody found
    points[4, 0] = np.nan  # one point missing: the others still frame it
    crops = square_crops(points)
    assert np.allclose(crops[[0, 1, 2, 5], 0], 120 + 30 * np.array([0, 1, 2, 5]))
    assert np.allclose(crops[:, 1], 100) and np.allclose(crops[:, 2], (1 + 2 * CROP_PAD) * 100)
    assert np.allclose(crops[3], crops[2]) or np.allclose(crops[3], crops[4])
    with pytest.raises(ValueError, match="no finite"):
        square_crops(np.full((3, 4, 2), np.nan))
    with pytest.raises(ValueError, match=r"\(T, N, 2\)"):
        square_crops(np.zeros((3, 4, 3)))


def test_video_view_cameras_look_along_the_video_and_frame_the_figure():
    rng = np.random.default_rng(0)
    T = 3
    body = rng.normal(size=(T, 200, 3)) * [0.2, 0.5, 0.15] + [0, 0.9, 0]  # a figure-sized cloud, 1.8 m-ish tall
    body[1] += [1.0, 0.0, -2.0]  # it walks; the cameras follow
    forward = np.array([[0, -0.2, -1.0], [0.3, -0.1, -1.0], [-0.5, 0.0, -1.0]])
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    view = VideoView(forward, np.tile([0, 1.0, 0], (T, 1)), np.array([20.0, 30.0, 45.0]), margin=0.05)
    for t, cam in enumerate(view.cameras(body)):
        assert np.allclose(cam.forward, forward[t]) and cam.fov_y == view.fov[t]
        px, depth = cam.project(body[t], (224, 224))
        assert (depth > 0).all() and (px >= 0).all() and (px <= 224).all()  # all of it in view
        span = (px.max(0) - px.min(0)).max() / 224
        assert 0.8 < span < 0.95, span  # the longer side fills the square but for the margins
        centre = 0.5 * (px.max(0) + px.min(0))
        assert np.abs(centre - 112).max() < 0.06 * 224  # centred
    assert len(view.every(2)) == 2
    with pytest.raises(ValueError, match="field of view"):
        VideoView(forward, forward, np.array([0.0, 10, 10]))


def test_a_camera_looking_straight_down_still_frames_the_figure():
    body = np.random.default_rng(1).normal(size=(1, 100, 3)) * [0.3, 0.9, 0.2]
    view = VideoView(np.array([[0, -1.0, 0]]), np.array([[0, 1.0, 0]]), np.array([40.0]))
    cam = view.cameras(body)[0]
    px, depth = cam.project(body[0], (100, 100))
    assert np.isfinite(cam.view_matrix()).all() and (depth > 0).all() and (px >= 0).all() and (px <= 100).all()
