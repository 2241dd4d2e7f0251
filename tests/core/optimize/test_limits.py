"""Anatomical limits (core/optimize/limits.py) and the issue-18 terms: angles read on a T-pose rig, the hinge that
holds the correction back but lets the start's own excursions through, gradients, and the rotation metric."""
import math

import numpy as np
import torch

from core.metrics import rotation_change
from core.motion import Motion
from core.optimize import terms
from core.optimize.limits import JOINT_LIMITS, LimitFrames, limit_angles, limit_excess
from core.rotations import quat_to_matrix
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from tests.synthetic import tpose_offsets

J = CANONICAL_JOINTS.index
DEG = math.pi / 180


def _rig():
    sk = canonical_skeleton(tpose_offsets())
    pose = sk.rest_pose(torch.float64)
    return sk, LimitFrames.of(pose.rotations, pose.positions, tuple(range(22)))


def _axis_angle(axis, degrees):
    a = torch.as_tensor(axis, dtype=torch.float64)
    a = a / a.norm()
    h = degrees * DEG / 2
    return quat_to_matrix(torch.cat([torch.tensor([math.cos(h)], dtype=torch.float64), math.sin(h) * a]))


def _world(sk, local: dict[str, torch.Tensor]) -> torch.Tensor:
    """(1, 22, 3, 3) world rotations of the identity-rest canonical rig with some local rotations set."""
    R = torch.eye(3, dtype=torch.float64).repeat(22, 1, 1)
    for name, m in local.items():
        R[J(name)] = m
    out = []
    for j, p in enumerate(sk.parents):
        out.append(R[j] if p < 0 else out[p] @ R[j])
    return torch.stack(out)[None]


def _row(frames, child):
    return [k for k, c in enumerate(frames.child.tolist()) if c == J(child)][0]


def test_every_limit_is_found_on_the_canonical_rig_and_rest_reads_zero():
    sk, frames = _rig()
    assert len(frames) == len(JOINT_LIMITS)
    assert limit_angles(_world(sk, {}), frames).abs().max() < 1e-9


def test_wrist_twist_flexion_and_deviation_are_read_on_their_own_axes():
    sk, frames = _rig()
    k = _row(frames, "LeftHand")
    bone = np.asarray(tpose_offsets()[J("LeftHand")], dtype=np.float64)  # forearm → hand: the hand's bone axis
    # Twist 40° about the bone; flexion 50° = the bone tilting towards the palm (−Y); radial 15° towards +Z.
    twist = limit_angles(_world(sk, {"LeftHand": _axis_angle(bone, 40)}), frames)[0, k]
    assert torch.allclose(twist.abs(), torch.tensor([40 * DEG, 0, 0], dtype=torch.float64), atol=1e-6)
    flex_axis = np.cross(bone, [0, -1, 0])  # rotating the bone about a × n tilts it towards n
    flex = limit_angles(_world(sk, {"LeftHand": _axis_angle(flex_axis, 50)}), frames)[0, k]
    assert torch.allclose(flex, torch.tensor([0, 50 * DEG, 0], dtype=torch.float64), atol=1e-6)
    radial_axis = np.cross(bone, [0, 0, 1])
    radial = limit_angles(_world(sk, {"LeftHand": _axis_angle(radial_axis, 15)}), frames)[0, k]
    assert torch.allclose(radial, torch.tensor([0, 0, 15 * DEG], dtype=torch.float64), atol=1e-6)


def test_the_hinge_pulls_a_twisted_wrist_back_but_keeps_the_sources_own_bend():
    """A correction twisted the wrist 150° (the start had none): the limit term drives it back inside 90°. The
    source's own 85° flexion (past the 80° table value) is in the start: it costs nothing and is kept."""
    sk, frames = _rig()
    k = _row(frames, "LeftHand")
    bone = np.asarray(tpose_offsets()[J("LeftHand")], dtype=np.float64)
    flex_axis = np.cross(bone, [0, -1, 0])
    start_local = _axis_angle(flex_axis, 85)
    start = limit_angles(_world(sk, {"LeftHand": start_local}), frames)
    assert abs(float(start[0, k, 1]) - 85 * DEG) < 1e-6
    assert limit_excess(start, start, frames.upper, frames.lower).abs().max() < 1e-12  # the start passes as is
    # A wall, not a spring: 85° of twist on top of it is inside the range and costs nothing; 100° costs 10°.
    for twist, cost in ((85, 0.0), (100, 10.0)):
        angles = limit_angles(_world(sk, {"LeftHand": start_local @ _axis_angle(bone, twist)}), frames)
        excess = limit_excess(angles, start, frames.upper, frames.lower)[0, k]
        assert torch.allclose(excess / DEG, torch.tensor([cost, 0.0, 0.0], dtype=torch.float64), atol=1e-6)

    # Optimise a rotation vector w on top of the start's wrist from a 150° twist, with the limit term and a weak
    # stay-close to the start (w = 0), as stage II does.
    w = torch.tensor(bone / np.linalg.norm(bone) * 150 * DEG, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)

    def wrist(v):
        angle = v.norm().clamp_min(1e-12)
        K = torch.zeros(3, 3, dtype=torch.float64)
        a = v / angle
        K = torch.stack([torch.stack([K[0, 0], -a[2], a[1]]), torch.stack([a[2], K[0, 0], -a[0]]),
                         torch.stack([-a[1], a[0], K[0, 0]])])
        return start_local @ (torch.eye(3, dtype=torch.float64) + torch.sin(angle) * K
                              + (1 - torch.cos(angle)) * K @ K)

    for _ in range(300):
        loss = terms.joint_limits(limit_excess(limit_angles(_world(sk, {"LeftHand": wrist(w)}), frames), start,
                                               frames.upper, frames.lower)) + 0.02 * (w * w).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = limit_angles(_world(sk, {"LeftHand": wrist(w.detach())}), frames)[0, k]
    assert abs(float(final[0])) < 92 * DEG  # pulled back from 150° to the 90° wall (2° margin)
    # The source's own bend survives: the twist's way back tilts the bone a little (with an 85° swing, turning
    # about other axes also untwists), measured 6° here; 10° allowed.
    assert abs(float(final[1]) - 85 * DEG) < 10 * DEG


def test_limit_angles_and_relations_have_correct_gradients():
    sk, frames = _rig()
    g = torch.Generator().manual_seed(3)
    local = {n: _axis_angle(torch.randn(3, generator=g, dtype=torch.float64), 30.0)
             for n in ("LeftHand", "RightForeArm", "Head", "Neck")}
    W = _world(sk, local).repeat(2, 1, 1, 1)
    W = W @ _axis_angle([0.3, 1.0, 0.2], 5.0)  # both frames, a small extra turn of everything

    def angles(Wx):
        return limit_angles(Wx, frames)

    assert torch.autograd.gradcheck(angles, (W.clone().requires_grad_(True),), eps=1e-6, atol=1e-5)
    d = torch.rand(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    src = torch.rand(4, 5, generator=g, dtype=torch.float64)
    w = torch.rand(4, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: terms.hand_relations(x, src, w), (d,))
    assert terms.hand_relations(src, src, w) == 0


def test_rotation_change_reads_hand_against_forearm_and_head_against_chest():
    sk = canonical_skeleton(tpose_offsets())
    a = Motion.rest(sk, 4)
    b = Motion.rest(sk, 4)
    h = 30 * DEG / 2
    b.rotations[:, J("LeftHand")] = [math.cos(h), math.sin(h), 0, 0]  # left hand turned 30°, right not
    b.rotations[:, J("Neck")] = [math.cos(h / 3), 0, math.sin(h / 3), 0]  # neck 10°: the head turns with it
    c = rotation_change(a, b)
    assert math.isclose(c.hand_mean, 15.0, abs_tol=1e-6)  # 30° on one hand of two
    assert math.isclose(c.hand_p95, 30.0, abs_tol=1e-6)
    assert math.isclose(c.head_mean, 10.0, abs_tol=1e-6)
    # Turning the forearm with the hand is not a wrist change.
    b2 = Motion.rest(sk, 4)
    b2.rotations[:, J("LeftForeArm")] = [math.cos(h), math.sin(h), 0, 0]
    assert rotation_change(a, b2).hand_mean < 1e-6


def test_twist_change_reads_a_long_bone_turning_about_its_own_axis_only():
    from core.optimize.limits import TwistAxes, twist_change

    sk = canonical_skeleton(tpose_offsets())
    pose = sk.rest_pose(torch.float64)
    axes = TwistAxes.of(pose.rotations, pose.positions, tuple(range(22)))
    assert len(axes) == 4
    k = axes.child.tolist().index(J("LeftForeArm"))
    bone = np.asarray(tpose_offsets()[J("LeftHand")], dtype=np.float64)  # forearm → wrist
    # The start already bends the elbow 60° (swing); the result also pronates the forearm 35° about its axis.
    bent = _axis_angle([0, 1, 0], 60)
    start = axes.relative(_world(sk, {"LeftForeArm": bent}))
    turned = axes.relative(_world(sk, {"LeftForeArm": bent @ _axis_angle(bone, 35)}))
    assert abs(float(twist_change(turned, start, axes.axis)[0, k]) - 35 * DEG) < 1e-6
    swung = axes.relative(_world(sk, {"LeftForeArm": bent @ _axis_angle([0, 1, 0], 30)}))  # more bend: no twist
    assert abs(float(twist_change(swung, start, axes.axis)[0, k])) < 1e-6
    # The upper arm's humeral rotation is read against the chest.
    upper = axes.child.tolist().index(J("LeftArm"))
    arm_bone = np.asarray(tpose_offsets()[J("LeftForeArm")], dtype=np.float64)
    rolled = axes.relative(_world(sk, {"LeftArm": _axis_angle(arm_bone, -20)}))
    rest = axes.relative(_world(sk, {}))
    assert abs(float(twist_change(rolled, rest, axes.axis)[0, upper]) + 20 * DEG) < 1e-6
