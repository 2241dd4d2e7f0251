"""The pose benchmark's metrics on poses whose answers are known by construction."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.motion import Motion
from core.pose_accuracy import (added_skate, best_lag, contact_slide, joint_angles, mpjpe, pa_mpjpe, planted,
                                 procrustes, sole_heights, wrist_sides, wrongly_crossed)
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from tests.synthetic import random_motion, tpose_offsets

J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}


def _fk(motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    pose = motion.fk()
    return pose.positions.numpy(), pose.rotations.numpy()


def test_mpjpe_is_the_mean_joint_distance_and_pa_mpjpe_ignores_a_similarity_transform():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(5, 22, 3))
    assert mpjpe(truth + [0.03, 0.0, 0.04], truth) == pytest.approx(0.05)
    R = Rotation.from_rotvec(rng.normal(size=(5, 3))).as_matrix()
    moved = 1.7 * np.einsum("tij,tkj->tki", R, truth) + rng.normal(size=(5, 1, 3))
    assert mpjpe(moved, truth) > 0.5
    assert pa_mpjpe(moved, truth) < 1e-9
    np.testing.assert_allclose(procrustes(moved, truth), truth, atol=1e-9)
    noisy = truth + rng.normal(scale=0.01, size=truth.shape)
    assert pa_mpjpe(noisy, truth) <= mpjpe(noisy, truth)  # the alignment never makes it worse
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        mpjpe(truth[:, :21], truth)


def test_a_standing_t_pose_has_straight_limbs_and_a_level_head():
    sk = canonical_skeleton(tpose_offsets(1.7))
    P, R = _fk(Motion.rest(sk, 2))
    a = joint_angles(P, R)
    for name in ("head_pitch", "knee_flexion", "knee_valgus", "elbow"):
        np.testing.assert_allclose(a[name], 0.0, atol=1e-6, err_msg=name)
    assert a["neck"].shape == (2,) and (a["neck"] < 1.0).all()


def _about_x(degrees: float) -> np.ndarray:
    return Rotation.from_euler("x", degrees, degrees=True).as_quat()[[3, 0, 1, 2]]  # (w, x, y, z)


def test_known_head_tilt_knee_bend_and_knock_knee_are_measured():
    sk = canonical_skeleton(tpose_offsets(1.7))
    m = Motion.rest(sk, 1)
    q = m.rotations.copy()
    q[0, J["Head"]] = _about_x(-25.0)  # about +X, negative: the face turns up (+Z forward, Y up)
    q[0, J["LeftLeg"]] = _about_x(40.0)  # the shin swings back: a bent knee
    # The right leg (on the -X side) knock-kneed: the thigh turned about +Z by 12° sends the knee towards +X, the
    # middle; the shin turned back by 24° brings the ankle out again.
    q[0, J["RightUpLeg"]] = Rotation.from_euler("z", 12, degrees=True).as_quat()[[3, 0, 1, 2]]
    q[0, J["RightLeg"]] = Rotation.from_euler("z", -24, degrees=True).as_quat()[[3, 0, 1, 2]]
    P, R = _fk(Motion(sk, q, m.root_positions, 30.0))
    a = joint_angles(P, R)
    assert a["head_pitch"][0] == pytest.approx(25.0, abs=0.5)
    assert a["knee_flexion"][0, 0] == pytest.approx(40.0, abs=0.5)
    assert a["knee_flexion"][0, 1] == pytest.approx(24.0, abs=0.5)
    assert a["knee_valgus"][0, 1] == pytest.approx(24.0, abs=1.0)  # knee in: positive
    assert abs(a["knee_valgus"][0, 0]) < 1.0  # a bend straight forward is no valgus
    q[0, J["RightUpLeg"]] = Rotation.from_euler("z", -12, degrees=True).as_quat()[[3, 0, 1, 2]]  # knee out:
    q[0, J["RightLeg"]] = Rotation.from_euler("z", 24, degrees=True).as_quat()[[3, 0, 1, 2]]  # bow-legged
    P, R = _fk(Motion(sk, q, m.root_positions, 30.0))
    assert joint_angles(P, R)["knee_valgus"][0, 1] == pytest.approx(-24.0, abs=1.0)


def test_best_lag_finds_a_delay():
    sk = canonical_skeleton(tpose_offsets(1.7))
    P = random_motion(sk, frames=60, scale=0.5, seed=3).positions()
    late = np.concatenate([P[:1].repeat(3, axis=0), P[:-3]])  # the same motion 3 frames late
    assert best_lag(late, P) == 3 and best_lag(P, P) == 0


def test_planted_feet_and_their_slide_apart_from_tremble():
    T, fps = 60, 30.0
    t = np.arange(T) / fps
    foot = np.zeros((T, 1, 3))
    foot[:, 0, 1] = np.where(t < 1.0, 0.0, 0.3 * (t - 1.0))  # planted for 1 s, then lifts
    foot[:, 0, 0] = np.where(t < 1.0, 0.0, 1.0 * (t - 1.0))  # ...and moves on
    contacts = planted(foot, fps)
    assert contacts[:29, 0].all() and not contacts[35:, 0].any()
    rng = np.random.default_rng(0)
    trembling = foot[:30] + rng.normal(scale=0.005, size=(30, 1, 3)) * [1, 0, 1]
    assert contact_slide(trembling, contacts[:30], fps) < 0.02  # ~1 cm over a second: not a slide
    sliding = foot[:30].copy()
    sliding[:, 0, 2] = 0.1 * t[:30]  # 10 cm/s along the floor
    assert contact_slide(sliding, contacts[:30], fps) == pytest.approx(0.1, rel=1e-6)
    assert np.isnan(contact_slide(foot, np.zeros((T, 1), bool), fps))


def test_added_skate_scores_the_truth_zero_and_counts_only_the_extra_speed():
    T, fps = 30, 30.0
    t = np.arange(T) / fps
    truth = np.zeros((T, 1, 3))
    truth[:, 0, 0] = 0.05 * t  # the truth's own foot slides 5 cm/s while planted
    contacts = np.ones((T, 1), bool)
    assert added_skate(truth, truth, contacts, fps) == pytest.approx(0.0, abs=1e-12)
    still = np.zeros_like(truth)  # holding still where the truth slid adds nothing
    assert added_skate(still, truth, contacts, fps) == pytest.approx(0.0, abs=1e-12)
    faster = truth.copy()
    faster[:, 0, 2] = 0.12 * t  # 13 cm/s in all, 8 cm/s more than the truth
    assert added_skate(faster, truth, contacts, fps) == pytest.approx(0.13 - 0.05, rel=1e-6)
    lifted = faster.copy()
    lifted[:, 0, 1] = 1.0  # height does not count: the speed is along the floor
    assert added_skate(lifted, truth, contacts, fps) == pytest.approx(0.08, rel=1e-6)
    half = contacts.copy()
    half[15:] = False
    faster[15:, 0, 0] += 5.0 * t[15:, None].ravel()  # a swing after the contact is not counted
    assert added_skate(faster, truth, half, fps) == pytest.approx(0.08, rel=1e-6)
    assert np.isnan(added_skate(truth, truth, np.zeros((T, 1), bool), fps))


def test_planted_follows_a_drifting_floor():
    # A retargeted clip's floor can drift: a walk whose stances rise 6 cm over 3 s is still planted in each.
    fps, T = 30.0, 90
    t = np.arange(T)
    foot = np.zeros((T, 1, 3))
    stance = (t // 15) % 2 == 0  # half a second on the floor, half a second swinging
    foot[:, 0, 1] = 0.02 * t / fps + np.where(stance, 0.0, 0.15)
    foot[:, 0, 2] = np.cumsum(np.where(stance, 0.0, 2.0 / fps))
    contacts = planted(foot, fps)[:, 0]
    inner = stance & (np.convolve(stance, np.ones(5), "same") == 5)  # away from lift-off and touch-down
    assert contacts[inner].all()
    assert not contacts[~stance].any()


def test_wrists_past_the_midline_count_only_where_the_truth_keeps_them_on_their_own_side():
    sk = canonical_skeleton(tpose_offsets(1.7))
    P = np.repeat(_fk(Motion.rest(sk, frames=1, fps=30.0))[0], 4, axis=0)  # (4, 22, 3), a T-pose
    sides = wrist_sides(P)
    assert (sides > 0.5).all()  # arms out: each wrist well on its own side
    crossed = P.copy()
    mid = 0.5 * (P[:, CANONICAL_JOINTS.index("LeftUpLeg")] + P[:, CANONICAL_JOINTS.index("RightUpLeg")])
    width = P[0, CANONICAL_JOINTS.index("LeftUpLeg")] - P[0, CANONICAL_JOINTS.index("RightUpLeg")]
    width /= np.linalg.norm(width)
    crossed[2:, CANONICAL_JOINTS.index("LeftHand")] = mid[2:] - 0.1 * width  # left hand 10 cm over the right half
    assert wrist_sides(crossed)[2:, 0] == pytest.approx(-0.1)
    assert wrongly_crossed(crossed, P) == pytest.approx(0.5)  # 2 of 4 frames
    assert wrongly_crossed(crossed, crossed) == 0.0  # the truth crossed them too: a punch across the body
    turned = crossed @ Rotation.from_euler("y", 70, degrees=True).as_matrix().T + 3.0
    assert wrongly_crossed(turned, P) == pytest.approx(0.5)  # each body in its own frame
    slight = P.copy()
    slight[:, CANONICAL_JOINTS.index("LeftHand")] = mid - 0.01 * width  # 1 cm past: within the margin
    assert wrongly_crossed(slight, P) == 0.0


def test_a_foot_flat_on_the_floor_has_its_sole_at_zero_wherever_its_rig_puts_the_joints():
    # A rig with the toe joint at the ball of the foot, 3 cm above its sole (the mesh's lowest point at -0.03),
    # and one with the toe joint on the floor: both standing flat read 0; a foot lifted 5 cm reads 5 cm.
    sk = canonical_skeleton(tpose_offsets())
    rest = sk.rest_positions()
    standing = Motion.rest(sk, frames=3).fk().positions.numpy()
    lowest = min(rest[J[n], 1] for n in ("LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase"))
    for floor in (lowest, lowest - 0.03):
        placed = standing - [0.0, floor, 0.0]  # the rest pose's ground on Y = 0
        placed[1, [J["LeftFoot"], J["LeftToeBase"]], 1] += 0.05
        soles = sole_heights(placed, rest, floor)
        assert np.allclose(soles[[0, 2]], 0.0) and np.allclose(soles[1], [0.05, 0.0])
    joints_only = sole_heights(standing - [0.0, lowest - 0.03, 0.0], rest)  # the joints' own heights: 3 cm up
    assert np.allclose(joints_only, 0.03)
