"""Cleaning: gaps, refusing empty clips, zero-lag filtering, foot contacts."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from pose.clean import (NobodyError, body_up, check_detections, fill_gaps, foot_contacts, gaps, jitter, level_up,
                        smooth)


def test_fill_gaps_interpolates_and_holds_edges():
    x = np.arange(10, dtype=float)[:, None] * 2.0
    valid = np.ones(10, bool)
    valid[[0, 4, 5, 9]] = False
    out = fill_gaps(np.where(valid[:, None], x, np.nan), valid)
    assert np.allclose(out[1:9, 0], x[1:9, 0])
    assert out[0, 0] == x[1, 0] and out[9, 0] == x[8, 0]
    assert gaps(valid) == [(0, 1), (4, 6), (9, 10)]


def test_refuses_clips_where_most_frames_have_nobody():
    with pytest.raises(NobodyError, match="no person was found in any of the 20 frames"):
        check_detections(np.zeros(20, bool), 30.0)
    few = np.zeros(20, bool)
    few[:6] = True
    with pytest.raises(InputError, match="only 6 of 20 frames"):
        check_detections(few, 30.0)
    check_detections(np.r_[np.ones(12, bool), np.zeros(8, bool)], 30.0)  # 60 %: accepted


def test_filter_reduces_jitter_without_lag():
    fps = 30.0
    t = np.arange(120) / fps
    clean = 0.2 * np.sin(2 * np.pi * 1.5 * t)[:, None, None] * np.ones((1, 3, 3))
    noisy = clean + np.random.default_rng(0).normal(0, 0.01, clean.shape)
    out = smooth(noisy, fps, 0.5)
    assert jitter(out - clean, fps) < 0.2 * jitter(noisy - clean, fps)  # the noise's share of the jitter
    err = np.abs(out - clean)[10:-10]
    assert err.mean() < 0.006 and err.max() < 0.03  # closer to the truth than the noise (1 cm) is
    # No lag: the best alignment with the true signal is at shift 0 (a causal filter would be late).
    sig, ref = out[:, 0, 0], clean[:, 0, 0]
    shifts = range(-4, 5)
    best = min(shifts, key=lambda s: np.mean((np.roll(sig, -s) - ref)[10:-10] ** 2))
    assert best == 0
    assert np.allclose(smooth(noisy, fps, 0.0), noisy)  # strength 0 = off
    assert jitter(smooth(noisy, fps, 1.0), fps) < jitter(out, fps) < jitter(smooth(noisy, fps, 0.25), fps)


def test_foot_contacts_need_low_and_still():
    T = 60
    h = np.zeros((T, 2))
    v = np.zeros((T, 2))
    h[20:40, 0] = 0.2  # left foot lifted
    v[:, 1] = 1.0  # right foot sliding fast all along
    c = foot_contacts(h, v, 30.0)
    assert c[:18, 0].all() and not c[22:38, 0].any() and c[42:, 0].all()
    assert not c[:, 1].any()
    flicker = np.zeros((T, 2))
    flicker[30, 0] = 0.2  # one frame up: ignored
    assert foot_contacts(flicker, np.zeros((T, 2)), 30.0)[:, 0].all()


def test_a_running_foot_lands_a_frame_before_its_smoothed_speed_drops():
    # A run: each foot lands from a fast swing while the other is in the air; the smoothed speed is still high in
    # the landing frame (rendered runs: the first frame of most stances was missed and skated at running speed).
    T = 40
    h = np.full((T, 2), 0.2)
    v = np.full((T, 2), 3.0)
    h[10:16, 0], v[11:16, 0] = 0.0, 0.1  # left stance 10-15; frame 10 down but still "fast"
    h[22:28, 1], v[23:28, 1] = 0.0, 0.1  # right stance 22-27, the same
    c = foot_contacts(h, v, 30.0)
    assert np.array_equal(np.flatnonzero(c[:, 0]), np.arange(10, 16))
    assert np.array_equal(np.flatnonzero(c[:, 1]), np.arange(22, 28))
    # A walk: the other foot is still planted when one lands, and the contact starts where the foot is slow.
    h[:, 1], v[:, 1] = 0.0, 0.0
    assert np.array_equal(np.flatnonzero(foot_contacts(h, v, 30.0)[:, 0]), np.arange(11, 16))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_level_up_takes_the_walking_lean_out_of_the_body_axis():
    rng = np.random.default_rng(0)
    T, fps = 120, 30.0
    up = np.array([0.0, np.cos(np.radians(5)), np.sin(np.radians(5))])  # the camera pitched by 5 degrees
    ahead = np.array([0.3, 0.0, -1.0])  # walking away from the camera and a little to the right, along the floor
    ahead = ahead - (ahead @ up) * up
    ahead /= np.linalg.norm(ahead)
    lean = np.radians(8)  # people lean forward when they walk
    axis = np.cos(lean) * up + np.sin(lean) * ahead + rng.normal(scale=0.03, size=(T, 3))
    path = np.array([0.0, 0.0, -4.0]) + 1.2 * np.arange(T)[:, None] / fps * ahead
    path += 0.02 * np.sin(np.arange(T) / fps * 2 * np.pi * 2)[:, None] * up  # the hips bob
    path += rng.normal(scale=0.01, size=(T, 3))
    assert _angle(body_up(axis), up) > 6.0
    assert _angle(level_up(axis, path, fps), up) < 2.0
    # Standing still (or a crouch: the hips go down, not along): the body's axis alone.
    still = np.array([0.0, 0.0, -4.0]) + rng.normal(scale=0.01, size=(T, 3))
    assert _angle(level_up(axis, still, fps), body_up(axis)) < 0.5
    crouch = still - 0.6 * np.linspace(0, 1, T)[:, None] * up
    assert _angle(level_up(axis, crouch, fps), body_up(axis)) < 0.5


def _standing_landmarks(T: int) -> np.ndarray:
    """``(T, 33, 3)`` landmarks of a person standing with arms hanging (the fit's body model; Y up, facing +Z)."""
    from scipy.spatial.transform import Rotation

    from core.motion import Motion
    from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
    from pose.fit import BodyLengths, landmarks_from_pose, person_offsets

    L = BodyLengths()
    q = np.tile([1.0, 0, 0, 0], (T, 22, 1))
    for side, s in (("Left", 1.0), ("Right", -1.0)):  # arms down from the T-pose
        q[:, CANONICAL_JOINTS.index(f"{side}Arm")] = Rotation.from_rotvec([0, 0, -s * 1.4]).as_quat()[[3, 0, 1, 2]]
    sk = canonical_skeleton(person_offsets(L))
    pose = Motion(sk, q, np.tile(sk.offsets[0], (T, 1)), 30.0).fk()
    return landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), L)


def test_a_wrist_seen_inside_the_trunk_past_its_midline_goes_back_to_its_own_side():
    from pose.clean import hands_out_of_trunk
    from pose.estimators import LM

    T = 60
    P = _standing_landmarks(T)
    hips = 0.5 * (P[:, LM["left_hip"]] + P[:, LM["right_hip"]])
    half_hips = 0.5 * np.linalg.norm(P[0, LM["left_hip"]] - P[0, LM["right_hip"]])
    assert (P[:, LM["left_wrist"], 0] - hips[:, 0] > half_hips).all()  # the model's arms hang beside the hips
    assert np.array_equal(hands_out_of_trunk(P, 30.0), P)  # nothing inside: nothing moves

    seen = P.copy()
    left = [LM[f"left_{n}"] for n in ("wrist", "index", "pinky", "thumb")]
    # Frames 20-39: the left hand seen 8 cm over the right half, 5 cm in front of the hips (inside the trunk).
    seen[20:40, left] += (hips[20:40, None] + [-0.08, 0.0, 0.05] - seen[20:40, LM["left_wrist"]][:, None])
    out = hands_out_of_trunk(seen, 30.0)
    wrist = out[:, LM["left_wrist"]] - hips
    assert (wrist[25:35, 0] > half_hips + 0.04).all()  # back on its own side, a margin beyond the hip
    assert np.allclose(out[25:35, left] - seen[25:35, left], (out - seen)[25:35, LM["left_wrist"]][:, None])
    elbow_move = (out - seen)[25:35, LM["left_elbow"], 0]
    assert np.allclose(elbow_move, 0.5 * (out - seen)[25:35, LM["left_wrist"], 0])  # the elbow half as far
    assert np.array_equal(out[:5], seen[:5]) and np.array_equal(out[-5:], seen[-5:])  # far from it: untouched
    assert np.abs(np.diff((out - seen)[:, LM["left_wrist"], 0])).max() < 0.05  # the move eases in and out
    right = [k for k in range(33) if k not in left + [LM["left_elbow"]]]
    assert np.array_equal(out[:, right], seen[:, right])

    across = seen.copy()  # the same hand 30 cm in front of the body: a forearm held across the belly, as seen
    across[20:40, left] += [0.0, 0.0, 0.25]
    assert np.array_equal(hands_out_of_trunk(across, 30.0), across)


def test_smoothing_with_the_end_value_held_is_steadier_at_the_last_frame():
    x = np.random.default_rng(0).normal(0.0, 1.0, (40, 500))  # 500 noisy tracks
    fitted, held = smooth(x, 30.0, 0.6), smooth(x, 30.0, 0.6, mode="nearest")
    assert held[-1].std() < 0.85 * fitted[-1].std()  # measured 0.66 against 0.85
    assert np.allclose(held[10:-10], fitted[10:-10])  # the same inside the clip
