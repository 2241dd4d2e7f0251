import numpy as np
import torch

from core.motion import FOOT_JOINTS, Motion
from core.retarget.copy import copy_retarget, foot_clearance
from core.rotations import quat_conjugate, quat_multiply
from core.skeleton import CANONICAL_JOINTS, canonical_main_child, canonical_skeleton

from ...synthetic import random_motion, reoriented_rig, tpose_offsets

FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


def _bone_directions(positions: np.ndarray) -> np.ndarray:
    bones = [(k, c) for k in range(22) if (c := canonical_main_child(k)) is not None]
    v = np.stack([positions[:, c] - positions[:, k] for k, c in bones], 1)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _walkish(skeleton, frames=40, seed=0) -> Motion:
    """A random motion whose lowest foot touches the floor at the start (like real clips)."""
    m = random_motion(skeleton, frames=frames, seed=seed, scale=0.3)
    low = m.positions()[:, FEET, 1].min()
    root = m.root_positions - [0, low - foot_clearance(skeleton), 0]
    return Motion(skeleton, m.rotations, root, m.fps)


def test_copy_onto_own_skeleton_returns_the_motion():
    sk = canonical_skeleton(tpose_offsets())
    m = _walkish(sk)
    out = copy_retarget(m, sk)
    assert out.skeleton is sk
    d = out.positions() - m.positions()
    assert np.abs(d - d.reshape(-1, 3).mean(0)).max() < 1e-6  # at most a constant floor offset
    assert abs(d[..., 1].mean()) < 0.02


def test_copy_keeps_bone_directions_and_scales_root_by_leg_length():
    src = canonical_skeleton(tpose_offsets(1.8))
    tgt = canonical_skeleton(tpose_offsets(1.2, arm=1.4, leg=0.7))
    m = _walkish(src, seed=2)
    out = copy_retarget(m, tgt)
    cos = (_bone_directions(out.positions()) * _bone_directions(m.positions())).sum(-1)
    assert cos.min() > 1 - 1e-6
    ankle = CANONICAL_JOINTS.index("LeftFoot")
    legs = lambda s: s.rest_positions()[0, 1] - s.rest_positions()[ankle, 1]  # hips above ankles, legs straight
    ratio = legs(tgt) / legs(src)
    travel = lambda mm: mm.root_positions[-1, [0, 2]] - mm.root_positions[0, [0, 2]]
    assert np.allclose(travel(out), travel(m) * ratio, atol=1e-6)


def test_copy_keeps_feet_on_the_ground():
    src = canonical_skeleton(tpose_offsets(1.8))
    tgt = canonical_skeleton(tpose_offsets(1.3, leg=0.6))
    m = _walkish(src, seed=3)
    out = copy_retarget(m, tgt)
    src_low = m.positions()[:, FEET, 1].min(1) - foot_clearance(src)
    out_low = out.positions()[:, FEET, 1].min(1) - foot_clearance(tgt)
    ratio = out.root_positions[:, 1].mean() / m.root_positions[:, 1].mean()
    contact = src_low < 0.01
    assert contact.any()
    assert np.abs(out_low[contact]).max() < 0.01 * ratio + 1e-6  # no floating, no sinking
    assert out_low.min() > -0.005


def test_copy_from_joint_orient_rig_matches_copy_from_tpose_rig():
    sk = canonical_skeleton(tpose_offsets(1.75))
    m = _walkish(sk, seed=4)
    rig, world = reoriented_rig(sk, seed=7)
    w = torch.as_tensor(world)[None].expand(m.num_frames, -1, -1)
    q = quat_multiply(quat_multiply(quat_conjugate(w), torch.as_tensor(m.rotations)), w)
    m2 = Motion(rig, q.numpy(), m.root_positions, m.fps)
    tgt = canonical_skeleton(tpose_offsets(1.5, arm=1.2))
    a, b = copy_retarget(m, tgt), copy_retarget(m2, tgt)
    assert np.abs(a.positions() - b.positions()).max() < 1e-6


def test_copy_onto_full_rig_target():
    src = canonical_skeleton(tpose_offsets(1.7))
    rig, _ = reoriented_rig(canonical_skeleton(tpose_offsets(1.9, leg=1.1)), seed=9)
    out = copy_retarget(_walkish(src, seed=5), rig)
    assert out.skeleton is rig
    cos = (_bone_directions(out.positions()) * _bone_directions(_walkish(src, seed=5).positions())).sum(-1)
    assert cos.min() > 1 - 1e-6
