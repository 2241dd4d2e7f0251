import numpy as np
import pytest
import torch

from core.motion import Motion, from_canonical, to_canonical
from core.rotations import quat_conjugate, quat_multiply
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton

from ..synthetic import random_motion, reoriented_rig, tpose_offsets


def _floor_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions b minus a after removing the constant vertical shift to_canonical applies."""
    d = b - a
    return d - d.reshape(-1, 3).mean(0)


def test_motion_checks_shapes():
    sk = canonical_skeleton(tpose_offsets())
    with pytest.raises(ValueError, match="rotations"):
        Motion(sk, np.zeros((5, 21, 4)), np.zeros((5, 3)), 30)
    with pytest.raises(ValueError, match="fps"):
        Motion(sk, np.zeros((5, 22, 4)), np.zeros((5, 3)), 0)


def test_to_canonical_of_tpose_rig_keeps_positions_and_rotations():
    sk = canonical_skeleton(tpose_offsets())
    m = random_motion(sk, frames=15)
    c = to_canonical(m)
    assert c.skeleton.names == CANONICAL_JOINTS
    assert np.abs(_floor_shift(m.positions(), c.positions())).max() < 1e-9
    # The canonical T-pose points feet straight forward, so only the feet (angled down in this rig's rest)
    # carry a constant pitch; every other joint keeps its rotation.
    dots = np.abs((c.rotations * m.rotations).sum(-1))
    feet = [CANONICAL_JOINTS.index(n) for n in ("LeftFoot", "RightFoot", "LeftToeBase", "RightToeBase")]
    assert np.delete(dots, feet, axis=1).min() > 1 - 1e-9


def test_to_canonical_ignores_rest_orientations():
    """A joint-orient rig (every bone with its own rest frame) canonicalises to the same motion."""
    sk = canonical_skeleton(tpose_offsets())
    m = random_motion(sk, frames=12, seed=3)
    rig, world = reoriented_rig(sk)
    w = torch.as_tensor(world)[None].expand(m.num_frames, -1, -1)
    q = torch.as_tensor(m.rotations)
    rotations = quat_multiply(quat_multiply(quat_conjugate(w), q), w)  # L' = world⁻¹ · L · world
    m2 = Motion(rig, rotations.numpy(), m.root_positions, m.fps)
    assert np.abs(m2.positions() - m.positions()).max() < 1e-9
    a, b = to_canonical(m), to_canonical(m2)
    assert np.abs(a.positions() - b.positions()).max() < 1e-9
    assert np.abs(np.abs((a.rotations * b.rotations).sum(-1)) - 1).max() < 1e-9


def test_to_canonical_of_apose_rig_gives_tpose_skeleton():
    offsets = tpose_offsets()
    # Arms hanging 45 degrees down in the rest pose.
    for side, sign in (("Left", 1), ("Right", -1)):
        for name in ("ForeArm", "Hand"):
            k = CANONICAL_JOINTS.index(side + name)
            length = np.linalg.norm(offsets[k])
            offsets[k] = length * np.array([sign * 0.7071, -0.7071, 0])
    apose = canonical_skeleton(offsets)
    m = random_motion(apose, frames=10, seed=4)
    c = to_canonical(m)
    arm = c.skeleton.offsets[CANONICAL_JOINTS.index("LeftForeArm")]
    assert arm[0] > 0 and abs(arm[1]) < 1e-9  # along +X now
    assert np.abs(_floor_shift(m.positions(), c.positions())).max() < 1e-9


def test_canonical_round_trip_through_full_rig():
    sk = canonical_skeleton(tpose_offsets())
    rig, _ = reoriented_rig(sk, seed=5)
    c = to_canonical(random_motion(sk, frames=8, seed=6))
    back = to_canonical(from_canonical(c, rig))
    assert np.abs(back.positions() - c.positions()).max() < 1e-6


def test_resample_and_slice():
    sk = canonical_skeleton(tpose_offsets())
    m = random_motion(sk, frames=31, fps=30)
    r = m.resample(60)
    assert r.num_frames == 61 and r.fps == 60
    assert np.abs(r.positions()[::2] - m.positions()).max() < 1e-9
    assert m.slice(5, 10).num_frames == 5


def test_place_root_starts_over_the_origin_or_stays_in_place():
    from core.motion import place_root
    from core.skeleton import canonical_skeleton

    from ..synthetic import tpose_offsets

    sk = canonical_skeleton(tpose_offsets(1.7))
    T = 90
    t = np.arange(T) / 30.0
    walk = np.stack([3.0 + 1.4 * t, 0.9 + 0.03 * np.sin(12 * t), -2.0 + 0.04 * np.sin(6 * t)], axis=1)
    m = Motion(sk, np.tile([1.0, 0, 0, 0], (T, 22, 1)), walk, 30.0)
    origin = place_root(m, "origin")
    assert np.allclose(origin.root_positions[0], [0.0, walk[0, 1], 0.0])
    assert np.allclose(np.diff(origin.root_positions, axis=0), np.diff(walk, axis=0))  # the path itself is kept
    still = place_root(m, "in_place")
    assert np.abs(still.root_positions[:, 0]).max() < 0.15  # 4.2 m of travel gone; the sway stays
    assert np.ptp(still.root_positions[:, 2]) > 0.03 and np.allclose(still.root_positions[:, 1], walk[:, 1])
    assert np.array_equal(place_root(m, "world").root_positions, walk)
    with pytest.raises(ValueError, match="root placement"):
        place_root(m, "moon")


def test_every_keeps_every_nth_frame_at_the_matching_rate():
    sk = canonical_skeleton(tpose_offsets())
    rot = np.tile([1.0, 0, 0, 0], (10, sk.num_joints, 1))
    root = np.arange(30.0).reshape(10, 3)
    m = Motion(sk, rot, root, 60.0).every(4)
    assert m.num_frames == 3 and m.fps == 15.0 and np.array_equal(m.root_positions, root[[0, 4, 8]])
