"""Anatomical joint limits for stage II: one table, its sources, and the pure functions that measure and penalise
a pose against it (issue 18: the optimiser bent wrists backwards and turned heads away to dodge penetration).

Angles are read on the *target* character as a rotation of a child joint relative to a reference joint, away
from the rig's rest pose, split into three components in degrees (the swing–twist decomposition):

* twist: about the child's bone axis (forearm pronation/supination for a hand; turning for the head);
* bend: the bone axis tilting towards ``bend`` (a hand towards its palm = flexion; the head forwards);
* side: the bone axis tilting towards ``side`` (a hand towards its thumb = radial deviation; the head sideways).

Conventions: the rest pose is a T-pose facing +Z with Y up and palms down (Mixamo, the R2ET shapes, our built-in
characters), so a palm faces −Y, a thumb +Z and an elbow crease +Z. A rig that breaks this convention only gets
limits on the wrong axes; the penalty (:func:`limit_excess`) never touches an angle the start (the Copy retarget,
which carries the source's own rotations) already reaches, so the worst case is a loose limit, never a pulled
source motion.

Ranges (degrees, normal active range of motion): American Academy of Orthopaedic Surgeons, "Joint Motion: Method
of Measuring and Recording" (1965), as tabulated by Norkin & White, "Measurement of Joint Motion" (5th ed.,
2016), Appendix A. Wrist flexion 80, extension 70, radial deviation 20, ulnar deviation 30; forearm pronation
and supination 80 each (90 with the hand's own play: 90 used, the rest pose's palm-down forearm is half-pronated
and rigs put the twist on either the forearm or the hand bone, so the twist is read from the rest, symmetric);
elbow flexion 150, extension 0 (read either way, see the table; 15 of side play, which rigs' straight elbows have);
shoulder: not limited yet (see the table); cervical spine, read as head against chest: flexion
45, extension 55, lateral bending 45, rotation 80.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..motion import Motion
from ..skeleton import CANONICAL_JOINTS, map_to_canonical

__all__ = ["JointLimit", "JOINT_LIMITS", "LimitFrames", "limit_angles", "limit_excess", "share_beyond_limits",
           "TWIST_JOINTS", "TwistAxes", "twist_change", "long_bone_twist"]

_DOWN, _FORWARD, _UP = (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)


@dataclass(frozen=True)
class JointLimit:
    """The range of one child joint against a reference joint, degrees (see the module's conventions).

    child, reference: canonical joint names; axis_from, axis_to: canonical joints whose rest positions give the
    child's bone axis. bend, side: world rest directions the bone axis tilts towards for a positive bend / side
    angle. twist, bend_pos, bend_neg, side_pos, side_neg: the largest angles each way (positive numbers).
    """

    child: str
    reference: str
    axis_from: str
    axis_to: str
    bend: tuple[float, float, float]
    side: tuple[float, float, float]
    twist: float
    bend_pos: float
    bend_neg: float
    side_pos: float
    side_neg: float


def _arm_limits(side: str) -> tuple[JointLimit, ...]:
    return (
        # Wrist: flexion towards the palm (−Y), extension 70; radial deviation towards the thumb (+Z) 20, ulnar 30.
        JointLimit(f"{side}Hand", f"{side}ForeArm", f"{side}ForeArm", f"{side}Hand", _DOWN, _FORWARD,
                   90.0, 80.0, 70.0, 20.0, 30.0),
        # Elbow: a hinge, 150 of flexion, 15 of side play; forearm twist 90. Hyperextension (10) is not checked:
        # on Copy starts the flexion's sign is not the same on both arms of every rig (Bandai bow on Brute: left
        # +16..+105, right -109..-28 with the crease taken as +Z), so the hinge allows 150 either way.
        JointLimit(f"{side}ForeArm", f"{side}Arm", f"{side}ForeArm", f"{side}Hand", _FORWARD, _DOWN,
                   90.0, 150.0, 150.0, 15.0, 15.0),
        # Shoulder: none. Read from the T-pose, a hanging arm is a swing near 90-180 degrees, where the twist and
        # the bend wrap (measured on Slim's bow: start twists up to 179, bends to 145): a shoulder cone needs a
        # reference axis pointing down, not done yet.
    )


JOINT_LIMITS: tuple[JointLimit, ...] = (
    *_arm_limits("Left"), *_arm_limits("Right"),
    # Neck and head together against the chest: flexion forwards 45, extension 55, lateral 45 each way, rotation 80.
    JointLimit("Head", "Spine2", "Neck", "Head", _FORWARD, (1.0, 0.0, 0.0), 80.0, 45.0, 55.0, 45.0, 45.0),
)


@dataclass(frozen=True, eq=False)
class LimitFrames:
    """The limits of :data:`JOINT_LIMITS` a rig has, in its joints' rest frames (:meth:`of`).

    child, reference: ``(P,)`` rig joint indices; rest: ``(P, 3, 3)`` the child's rest rotation relative to the
    reference; axes: ``(P, 3, 3)`` rows: bone axis, bend and side directions in the child's rest frame;
    upper, lower: ``(P, 3)`` radians (twist, bend, side), both positive.
    """

    child: Tensor
    reference: Tensor
    rest: Tensor
    axes: Tensor
    upper: Tensor
    lower: Tensor

    @classmethod
    def of(cls, rest_rotations: Tensor, rest_positions: Tensor, mapping: tuple[int, ...]) -> "LimitFrames":
        """From the rig's ``(J, 3, 3)`` world rest rotations, ``(J, 3)`` rest positions and its canonical
        ``mapping`` (:func:`~core.skeleton.map_to_canonical`); limits on joints the rig lacks are dropped."""
        idx = {n: mapping[k] for k, n in enumerate(CANONICAL_JOINTS)}
        rows = [lim for lim in JOINT_LIMITS
                if min(idx[lim.child], idx[lim.reference], idx[lim.axis_from], idx[lim.axis_to]) >= 0]
        dtype, device = rest_rotations.dtype, rest_rotations.device
        child = torch.tensor([idx[r.child] for r in rows], dtype=torch.long, device=device)
        ref = torch.tensor([idx[r.reference] for r in rows], dtype=torch.long, device=device)
        axes_world = []
        for r in rows:
            a = rest_positions[idx[r.axis_to]] - rest_positions[idx[r.axis_from]]
            a = a / a.norm().clamp_min(1e-9)
            bend = torch.tensor(r.bend, dtype=dtype, device=device)
            bend = bend - (bend @ a) * a  # orthogonal to the bone, so the components are clean tilts
            bend = bend / bend.norm().clamp_min(1e-9)
            side = torch.tensor(r.side, dtype=dtype, device=device)
            side = side - (side @ a) * a - (side @ bend) * bend
            side = side / side.norm().clamp_min(1e-9)
            axes_world.append(torch.stack([a, bend, side]))
        W0 = rest_rotations
        axes = (torch.stack(axes_world) @ W0[child]) if rows else W0.new_zeros(0, 3, 3)  # rows · W0 = (W0ᵀ v)ᵀ
        rest = W0[ref].transpose(-1, -2) @ W0[child]
        rad = np.pi / 180
        upper = torch.tensor([[r.twist, r.bend_pos, r.side_pos] for r in rows], dtype=dtype, device=device) * rad
        lower = torch.tensor([[r.twist, r.bend_neg, r.side_neg] for r in rows], dtype=dtype, device=device) * rad
        return cls(child, ref, rest, axes, upper.reshape(-1, 3), lower.reshape(-1, 3))

    def __len__(self) -> int:
        return len(self.child)


def limit_angles(world_rotations: Tensor, frames: LimitFrames) -> Tensor:
    """``(T, P, 3)`` twist, bend and side angles (radians) of each limited joint from ``(T, J, 3, 3)`` world
    rotations.

    D = rest⁻¹ · (reference⁻¹ · child) is the child's rotation away from its rest relative to the reference,
    in the child's rest frame. twist = 2·atan2(2 u·a, 1 + tr D) with u the axial vector of (D − Dᵀ)/2 (the
    quaternion's twist about the bone axis a, without a quaternion); with b = D a the turned bone, bend =
    atan2(b·n, b·a), its angle in the (a, n) plane (a hinge angle: continuous up to 180°, so an elbow's 150° reads
    150°), and side = atan2(b·s, |(b·a, b·n)|), its elevation out of that plane (bounded by 90°, continuous
    however far the bone bends: measured in the (a, s) plane instead, an elbow bent past 90° read ±180° of side
    play). Both are exact for a pure tilt.
    """
    W = world_rotations
    rel = W[:, frames.reference].transpose(-1, -2) @ W[:, frames.child]  # (T, P, 3, 3)
    D = frames.rest.transpose(-1, -2) @ rel
    a, n, s = frames.axes.unbind(-2)  # (P, 3) each
    u = torch.stack([D[..., 2, 1] - D[..., 1, 2], D[..., 0, 2] - D[..., 2, 0], D[..., 1, 0] - D[..., 0, 1]], -1) / 2
    trace = D.diagonal(dim1=-2, dim2=-1).sum(-1)
    twist = 2 * torch.atan2(2 * (u * a).sum(-1), (1 + trace).clamp_min(1e-6))
    b = (D @ a[..., None])[..., 0]  # (T, P, 3)
    along, towards = (b * a).sum(-1), (b * n).sum(-1)
    bend = torch.atan2(towards, along)
    side = torch.atan2((b * s).sum(-1), torch.sqrt(along * along + towards * towards + 1e-12))
    return torch.stack([twist, bend, side], -1)


def limit_excess(angles: Tensor, start: Tensor, upper: Tensor, lower: Tensor) -> Tensor:
    """``(T, P, 3)`` how far (radians, ≥ 0) each angle goes past its limit, where the limit is widened to the
    start's own angle in that frame: the source's excursions pass, only the correction's are held back.

    angles, start: ``(T, P, 3)``; upper, lower: ``(P, 3)`` the positive and negative ranges (positive numbers).
    """
    hi = torch.maximum(upper, start)
    lo = torch.maximum(lower, -start)
    return torch.relu(angles - hi) + torch.relu(-angles - lo)


def share_beyond_limits(motion: Motion, tolerance_deg: float = 5.0) -> float:
    """Share of (frame, limited joint) pairs of ``motion`` past the table's ranges by more than ``tolerance_deg``
    in any component (0 for a rig without limited joints): how often a motion bends a wrist, an elbow or the
    neck further than a person can. The optimiser's penalty allows the start's own excursions, so a result
    should score no higher than its start (issue 18)."""
    skeleton = motion.skeleton
    rest = skeleton.rest_pose(torch.float64)
    frames = LimitFrames.of(rest.rotations, rest.positions, map_to_canonical(skeleton).indices)
    if not len(frames):
        return 0.0
    angles = limit_angles(motion.fk(torch.float64).rotations, frames)
    excess = limit_excess(angles, torch.zeros_like(angles), frames.upper, frames.lower)
    return float((excess.amax(-1) > np.radians(tolerance_deg)).double().mean())


# (child, reference, axis from, axis to): the long bones whose turn about their own axis the correction must not
# change much (issue 18). With the hands held to their forearms, the optimiser turned the forearms (pronation)
# and the upper arms (humeral rotation) instead, by 40-60 degrees on average on Mousey's bow and call, so the
# palms still faced away from the body (the hands' rotation against the chest changed 73-85 degrees on average):
# the flat hand was turned edge-on rather than moved. Turning a bone about its axis moves nothing but what hangs
# off it sideways, so it is never what clearing the body needs most.
TWIST_JOINTS: tuple[tuple[str, str, str, str], ...] = (
    ("LeftForeArm", "LeftArm", "LeftForeArm", "LeftHand"), ("RightForeArm", "RightArm", "RightForeArm", "RightHand"),
    ("LeftArm", "Spine2", "LeftArm", "LeftForeArm"), ("RightArm", "Spine2", "RightArm", "RightForeArm"),
)


@dataclass(frozen=True, eq=False)
class TwistAxes:
    """The :data:`TWIST_JOINTS` a rig has: child, reference ``(P,)`` rig joint indices; axis ``(P, 3)`` the
    child's bone axis in its own frame (unit)."""

    child: Tensor
    reference: Tensor
    axis: Tensor

    @classmethod
    def of(cls, rest_rotations: Tensor, rest_positions: Tensor, mapping: tuple[int, ...]) -> "TwistAxes":
        """From the rig's ``(J, 3, 3)`` world rest rotations, ``(J, 3)`` rest positions and canonical mapping."""
        idx = {n: mapping[k] for k, n in enumerate(CANONICAL_JOINTS)}
        rows = [r for r in TWIST_JOINTS if min(idx[n] for n in r) >= 0]
        child = [idx[r[0]] for r in rows]
        axes = [rest_positions[idx[r[3]]] - rest_positions[idx[r[2]]] for r in rows]
        axis = (torch.stack(axes) if rows else rest_positions.new_zeros(0, 3))
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        axis = (axis[:, None, :] @ rest_rotations[child])[:, 0]  # world rest direction -> the child's frame
        device = rest_rotations.device
        return cls(torch.tensor(child, dtype=torch.long, device=device),
                   torch.tensor([idx[r[1]] for r in rows], dtype=torch.long, device=device), axis)

    def __len__(self) -> int:
        return len(self.child)

    def relative(self, world_rotations: Tensor) -> Tensor:
        """``(T, P, 3, 3)`` each child's rotation in its reference's frame, from ``(T, J, 3, 3)`` world rotations."""
        W = world_rotations
        return W[:, self.reference].transpose(-1, -2) @ W[:, self.child]


def twist_change(relative: Tensor, start: Tensor, axis: Tensor) -> Tensor:
    """``(T, P)`` radians each child has turned about its own bone ``axis (P, 3)`` (child frame) between the
    ``start`` and ``relative`` ``(T, P, 3, 3)`` rotations in its reference's frame (the twist of the swing–twist
    split of the change, the same formula as :func:`limit_angles`)."""
    D = start.transpose(-1, -2) @ relative
    u = torch.stack([D[..., 2, 1] - D[..., 1, 2], D[..., 0, 2] - D[..., 2, 0], D[..., 1, 0] - D[..., 0, 1]], -1) / 2
    trace = D.diagonal(dim1=-2, dim2=-1).sum(-1)
    return 2 * torch.atan2(2 * (u * axis).sum(-1), (1 + trace).clamp_min(1e-6))


def long_bone_twist(reference: Motion, result: Motion) -> np.ndarray:
    """``(T, P)`` degrees each of :data:`TWIST_JOINTS` (forearms, upper arms) turned about its own axis from
    ``reference`` to ``result`` (same skeleton and length): the pronation and humeral rotation a viewer sees as
    the palm facing another way, which the hand-against-forearm angle does not show."""
    skeleton = result.skeleton
    rest = skeleton.rest_pose(torch.float64)
    axes = TwistAxes.of(rest.rotations, rest.positions, map_to_canonical(skeleton).indices)
    a, b = (axes.relative(m.fk(torch.float64).rotations) for m in (reference, result))
    return np.degrees(np.abs(twist_change(b, a, axes.axis).numpy()))
