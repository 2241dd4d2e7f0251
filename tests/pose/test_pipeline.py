"""The whole pose stage with MediaPipe, on clips the tests render themselves and on the shared videos.

MediaPipe detects the preview renderer's characters (a rendered humanoid on a checkered floor), so the detection
test needs no shared data. Each MediaPipe run here is kept to a few dozen frames.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.render.video import probe_video_codec, write_mp4
from core.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS, FINGER_JOINTS, HANDS_PARENTS
from pose.clean import NobodyError
from pose.estimators import EstimatorUnavailable, make_estimator
from pose.pipeline import video_to_motion

pytest.importorskip("mediapipe")


def check_motion(result) -> None:
    m = result.motion
    hands = result.hands is not None
    assert m.skeleton.names == (CANONICAL_JOINTS + FINGER_JOINTS if hands else CANONICAL_JOINTS)
    assert np.allclose(np.linalg.norm(m.rotations, axis=-1), 1.0)
    assert ((m.rotations[1:] * m.rotations[:-1]).sum(-1) >= 0).all()  # sign-continuous
    X = m.positions()
    parents = HANDS_PARENTS if hands else CANONICAL_PARENTS
    bones = np.linalg.norm(X[:, 1:] - X[:, list(parents[1:])], axis=-1)
    assert bones.std(axis=0).max() < 1e-9 and result.bone_length_variation < 1e-9
    rest = m.skeleton.rest_positions()
    assert abs(rest[[17, 21], 1].min()) < 1e-9  # T-pose toes on the floor (y = 0)
    assert rest[5, 1] > rest[0, 1] and rest[7, 0] > 0  # head above hips, left arm towards +X


def test_rendered_person_is_detected_and_fitted(rendered_person):
    result = video_to_motion(rendered_person)
    assert result.num_frames == 30
    assert result.detection_rate >= 0.9
    assert result.fit_error < 0.025
    assert result.reprojection_error_unpinned < 25  # pixels, in a 360-px frame
    check_motion(result)
    assert not result.tracking.several_people
    assert 1.3 < result.fit.lengths.height < 2.2


def test_empty_floor_has_nobody(tmp_path):
    y, x = np.mgrid[0:240, 0:320]
    floor = (((x // 40 + y // 40) % 2) * 90 + 120).astype(np.uint8)
    frames = [np.repeat(np.roll(floor, i, axis=1)[..., None], 3, axis=2) for i in range(12)]
    path = tmp_path / "floor.mp4"
    write_mp4(frames, path, fps=12)
    with pytest.raises(NobodyError, match="no person was found"):
        video_to_motion(path)


def test_optional_backend_says_what_it_needs():
    with pytest.raises(EstimatorUnavailable, match="pip install rtmlib onnxruntime"):
        make_estimator("rtmlib")
    with pytest.raises(EstimatorUnavailable, match="unknown pose backend"):
        make_estimator("heavy")


def test_cli_writes_bvh_and_overlay(rendered_person, tmp_path, capsys):
    from app import main

    out = tmp_path / "out"
    assert main(["pose", str(rendered_person), "--out", str(out), "--quiet", "--end", "1.0"]) == 0  # hands on
    printed = capsys.readouterr().out
    assert "frames had a person" in printed and "fit error" in printed and "frames/s" in printed
    motion = read_bvh(out / "motion.bvh")
    assert motion.num_frames >= 19 and set(motion.skeleton.names) == set(CANONICAL_JOINTS + FINGER_JOINTS)
    assert probe_video_codec(out / "source_overlay.mp4") == "h264"
    assert main(["pose", str(rendered_person), "--out", str(tmp_path / "body"), "--quiet", "--end", "0.5",
                 "--no-video", "--no-hands"]) == 0
    assert read_bvh(tmp_path / "body" / "motion.bvh").skeleton.names == CANONICAL_JOINTS
    assert main(["pose", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()  # nothing half-written


def test_shared_video(shared_data):
    path = shared_data / "videos" / "mmpose_body3d_demo.mp4"
    if not path.exists():
        pytest.skip(f"{path} absent")
    result = video_to_motion(path, trim=(0.0, 1.0))
    assert result.detection_rate >= 0.95
    assert result.fit_error <= 0.02
    assert result.jitter_after < result.jitter_before
    check_motion(result)


def test_a_long_clip_is_estimated_in_two_halves_joined_at_the_seam():
    """Issue 14: the second half estimated at the same time by its own estimator (the pose stage used 1.1 of the
    2 cores); one person in view, so the halves are joined: every frame once, the landmarks as one pass gives
    them (MediaPipe's tracking differs a little from a fresh start), the decode statistics of the whole clip."""
    from jobs import SAMPLE_VIDEO
    from pose.camera_motion import CameraMotion
    from pose.pipeline import DEFAULT_FOV, _chained, _estimate
    from pose.video import open_video

    made = []

    def second():
        made.append(make_estimator("mediapipe"))
        return made[-1]

    out = {}
    for split in (False, True):
        reader = open_video(SAMPLE_VIDEO)
        est = make_estimator("mediapipe")
        try:
            poses, report, camera = _estimate(reader, est, lambda f, w: None, None, DEFAULT_FOV,
                                              second=second if split else None)
        finally:
            est.close()
        assert len(poses) == reader.stats.frames == len(camera.rotations) and reader.stats.finished
        assert not report.several_people
        out[split] = np.array([p.image for p in poses])
    assert len(made) == 1  # the second half had its own estimator
    diff = np.linalg.norm(out[True] - out[False], axis=-1)
    assert np.median(diff) < 2.0 and np.mean(diff > 20) < 0.02, (np.median(diff), np.mean(diff > 20))
    # the camera of the rest is chained onto the first part's last frame
    turn = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    a = CameraMotion(np.stack([np.eye(3), turn]), np.array([1.0, 2.0]), np.array([False, True]))
    b = CameraMotion(np.stack([np.eye(3), turn]), np.array([1.0, 1.5]), np.array([False, True]))
    c = _chained(a, b)
    np.testing.assert_allclose(c.rotations[2], turn @ turn)
    np.testing.assert_allclose(c.zoom, [1.0, 2.0, 3.0])
    assert c.measured.tolist() == [False, True, True]
