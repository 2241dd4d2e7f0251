"""Skeleton fit: the IK inverts its own body model, bone lengths are rigid, twists are sensible."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from pose.fit import BodyLengths, fit_skeleton, landmarks_from_pose, level_head, measure_lengths, person_offsets
from tests.synthetic import random_motion

J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}
LENGTHS = BodyLengths(hip_width=0.21, shoulder_width=0.36, torso=0.52, upper_arm=0.29, forearm=0.25, thigh=0.45,
                      shin=0.41, ankle_height=0.075, foot_length=0.14, neck_head=0.15)


def model_motion(frames: int = 50, seed: int = 3) -> Motion:
    """A random motion the body model reproduces exactly: the spine twists evenly (a bend is only inferred from
    the hips-shoulders distance, at a cost), the shoulder girdles stay at rest."""
    sk = canonical_skeleton(person_offsets(LENGTHS))
    m = random_motion(sk, frames=frames, scale=0.6, seed=seed)
    q = m.rotations.copy()
    twist = Rotation.from_quat(q[:, J["Spine"]][:, [1, 2, 3, 0]]).as_rotvec() * [0, 1, 0]
    third = Rotation.from_rotvec(twist / 3).as_quat()
    for name in ("Spine", "Spine1", "Spine2"):
        q[:, J[name]] = third[:, [3, 0, 1, 2]]
    for name in ("LeftShoulder", "RightShoulder"):
        q[:, J[name]] = (1, 0, 0, 0)
    return Motion(sk, q, m.root_positions, 30.0)


def test_ik_reproduces_a_known_motion_within_a_millimetre():
    motion = model_motion()
    pose = motion.fk()
    X = pose.positions.numpy()
    P = landmarks_from_pose(X, pose.rotations.numpy(), LENGTHS)
    fit = fit_skeleton(P)
    assert np.abs(fit.offsets - motion.skeleton.offsets).max() < 1e-3  # bone lengths measured back
    assert np.linalg.norm(fit.positions - X, axis=-1).max() < 1e-3
    # The rotations really produce those positions on the fitted skeleton.
    again = Motion(canonical_skeleton(fit.offsets), fit.rotations, fit.positions[:, 0], 30.0).positions()
    assert np.abs(again - fit.positions).max() < 1e-9
    assert fit.mean_error < 1e-3
    # Leaves carry orientation: the head and hands turn like the source's.
    for name in ("Head", "LeftHand", "RightFoot"):
        R_fit = fit.world_rotations[:, J[name]]
        R_src = pose.rotations.numpy()[:, J[name]]
        angle = np.linalg.norm(Rotation.from_matrix(np.swapaxes(R_fit, 1, 2) @ R_src).as_rotvec(), axis=-1)
        assert angle.max() < np.radians(1.0), name


def test_quaternions_are_unit_and_sign_continuous():
    fit = fit_skeleton(landmarks_from_pose(*(t.numpy() for t in model_motion(80, seed=5).fk().__dict__.values()),
                                           LENGTHS))
    q = fit.rotations
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0)
    assert ((q[1:] * q[:-1]).sum(-1) >= 0).all()


def test_bone_lengths_are_constant_even_when_landmarks_stretch():
    pose = model_motion().fk()
    P = landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), LENGTHS)
    P = P + np.random.default_rng(0).normal(0, 0.01, P.shape)  # 1 cm landmark noise: lengths vary per frame
    fit = fit_skeleton(P)
    X = fit.positions
    from core.skeleton import CANONICAL_PARENTS

    bones = np.linalg.norm(X[:, 1:] - X[:, list(CANONICAL_PARENTS[1:])], axis=-1)
    assert bones.std(axis=0).max() < 1e-9
    assert fit.mean_error < 0.02
    assert abs(measure_lengths(P).thigh - LENGTHS.thigh) < 0.01


def test_forearm_takes_half_the_hand_twist():
    """A hand turned 120 degrees about the forearm: the forearm carries half, the wrist the rest."""
    sk = canonical_skeleton(person_offsets(LENGTHS))
    T = 2
    q = np.tile([1.0, 0, 0, 0], (T, 22, 1))
    twist = Rotation.from_rotvec([np.radians(120), 0, 0]).as_quat()[[3, 0, 1, 2]]
    q[1, J["LeftHand"]] = twist
    pose = Motion(sk, q, np.tile(sk.offsets[0], (T, 1)), 30.0).fk()
    fit = fit_skeleton(landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), LENGTHS), lengths=LENGTHS)
    local = fit.rotations[1]

    def angle_about_x(qq: np.ndarray) -> float:
        return float(np.degrees(Rotation.from_quat(qq[[1, 2, 3, 0]]).as_rotvec()[0]))

    assert angle_about_x(local[J["LeftForeArm"]]) == pytest.approx(60.0, abs=1.0)
    assert angle_about_x(local[J["LeftHand"]]) == pytest.approx(60.0, abs=1.0)


def test_straight_arm_does_not_pop():
    """Bending the elbow slowly from slightly over-straight (landmark noise) to 60 degrees: no twist pop."""
    sk = canonical_skeleton(person_offsets(LENGTHS))
    T = 61
    q = np.tile([1.0, 0, 0, 0], (T, 22, 1))
    bend = np.radians(np.linspace(-10, 60, T))  # about the elbow's hinge axis (flexion brings the hand forward)
    q[:, J["LeftForeArm"]] = Rotation.from_rotvec(np.outer(bend, [0, -1, 0])).as_quat()[:, [3, 0, 1, 2]]
    pose = Motion(sk, q, np.tile(sk.offsets[0], (T, 1)), 30.0).fk()
    fit = fit_skeleton(landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), LENGTHS), lengths=LENGTHS)
    W = fit.world_rotations[:, J["LeftArm"]]
    step = np.linalg.norm(Rotation.from_matrix(np.swapaxes(W[1:], 1, 2) @ W[:-1]).as_rotvec(), axis=-1)
    assert np.degrees(step).max() < 5.0


def _elevation(R: np.ndarray) -> np.ndarray:
    forward = R @ np.array([0.0, 0.0, 1.0])
    return np.degrees(np.arcsin(forward[:, 1] / np.linalg.norm(forward, axis=-1)))


def test_level_head_keeps_a_share_of_the_pitch_and_the_heading_and_roll():
    # Heads turned 40 degrees, pitched -30 (looking down) or +20, rolled 10: half the pitch is kept.
    R = Rotation.from_euler("YXZ", [[40, 30, 10], [-70, -20, -10]], degrees=True).as_matrix()
    out = level_head(R, 0.5)
    assert np.allclose(_elevation(R), [-30.0, 20.0], atol=1e-6)  # Y-up, +Z forward: +X pitch looks down
    assert np.allclose(_elevation(out), [-15.0, 10.0], atol=1e-6)
    heading = lambda M: np.degrees(np.arctan2((M @ [0, 0, 1.0])[:, 0], (M @ [0, 0, 1.0])[:, 2]))
    assert np.allclose(heading(out), heading(R), atol=1e-6)
    roll = lambda M: Rotation.from_matrix(M).as_euler("YXZ", degrees=True)[:, 2]
    assert np.allclose(roll(out), roll(R), atol=1e-6)
    assert np.allclose(level_head(R, 1.0), R)
    assert np.allclose(_elevation(level_head(R, 0.0)), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="kept"):
        level_head(R, 1.5)


def test_fit_keeps_the_asked_share_of_the_head_pitch():
    motion = model_motion(40, seed=7)
    pose = motion.fk()
    P = landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), LENGTHS)
    full, half = fit_skeleton(P), fit_skeleton(P, head_pitch_kept=0.5)
    seen = _elevation(full.world_rotations[:, J["Head"]])
    assert np.abs(seen).max() > 10.0  # the random motion nods
    assert np.allclose(_elevation(half.world_rotations[:, J["Head"]]), 0.5 * seen, atol=1e-4)
    assert np.allclose(half.positions, full.positions)  # the head is a leaf: nothing else moves


def test_level_head_smooths_a_flickering_pitch_but_keeps_a_steady_look_down():
    rng = np.random.default_rng(4)
    T = 90
    pitch = np.radians(40.0) + np.radians(15.0) * rng.standard_normal(T)  # looking 40 degrees down, read noisily
    yaw = np.linspace(-0.5, 0.5, T)
    R = Rotation.from_euler("YX", np.stack([yaw, pitch], axis=1)).as_matrix()
    out = level_head(R, 1.0, sigma=5.0)
    assert np.std(_elevation(out)) < 0.3 * np.std(_elevation(R))
    assert abs(np.mean(_elevation(out)) - np.mean(_elevation(R))) < 1.0  # the look down stays
    assert abs(np.mean(_elevation(level_head(R, 0.75, sigma=5.0))) - 0.75 * np.mean(_elevation(R))) < 1.0
    with pytest.raises(ValueError, match="sigma"):
        level_head(R, 1.0, sigma=-1.0)
