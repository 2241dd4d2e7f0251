"""From the optimised variables to a posed clip: the spline-smooth 6D correction, the rig, the skinned samples.

The variables are the controls of a cubic B-spline in time (knots every ``knot_seconds``); the free joints' 6D
angles are the start's plus the spline: ``x = x⁰ + B c`` with ``B (T, K)`` from :func:`spline_basis`. The
rest of the skeleton keeps the start's rotations and root path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..character import Character
from ..geometry.mesh import farthest_points
from ..geometry.penetration import PenetrationModel
from ..kinematics import Pose, forward_kinematics, linear_blend_skinning, skinning_transforms
from ..motion import Motion, _canonical_tracks
from ..rotations import quat_to_matrix, rot6d_to_matrix
from ..semantics.skeletal import hand_vertex_samples
from ..skeleton import map_fingers
from .terms import soft_min

__all__ = ["spline_basis", "Posed", "Rig", "HandSamples", "LimbSamples"]


def spline_basis(frames: int, spacing: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(T, K)`` uniform cubic B-spline basis with knots every ``spacing`` frames (rows sum to 1).

    A correction ``B @ c`` is twice continuously differentiable in time whatever the control values ``c``,
    so the optimiser cannot add frame-to-frame jitter.
    """
    spacing = max(float(spacing), 1.0)
    K = int(math.ceil((frames - 1) / spacing)) + 3
    u = torch.arange(frames, dtype=torch.float64)[:, None] / spacing - (torch.arange(K, dtype=torch.float64) - 1)
    a = u.abs()
    b = torch.where(a < 1, 2 / 3 - a ** 2 + a ** 3 / 2, torch.where(a < 2, (2 - a) ** 3 / 6, torch.zeros_like(a)))
    return b.to(dtype)


@dataclass
class Posed:
    """The clip posed by one value of the 6D angles.

    positions: ``(T, 22, 3)`` canonical joint positions, metres.
    body_gap: ``(T, 2)`` each hand's (soft) distance to the body mesh, metres, negative inside; None when the
        character has no hand or no body vertices (the skeletal proxy's capsules stand in).
    transforms: ``(T, J, 3, 4)`` skinning transforms of the character's joints.
    rotations: ``(T, J, 3, 3)`` world rotations of the character's joints (for the joint limits).
    """

    positions: Tensor
    body_gap: Tensor | None
    transforms: Tensor
    rotations: Tensor | None = None


@dataclass(frozen=True, eq=False)
class HandSamples:
    """An even spread of each hand's vertices, to measure how far the hands are from the body mesh.

    rest: ``(H, 3)`` rest positions, the left hand's first; weights: ``(H, J)`` dense skin weights;
    num_left: how many are the left hand's. tau: the soft minimum's width over a hand's vertices, metres.
    """

    rest: Tensor
    weights: Tensor
    num_left: int
    tau: float

    @classmethod
    def of(cls, character: Character, dense: Tensor, per_hand: int = 16) -> "HandSamples | None":
        """Up to ``per_hand`` vertices a hand, with the character's ``(V, J)`` dense weights; None when a hand
        leads no vertex."""
        hands = hand_vertex_samples(character, per_hand)
        if not all(len(h) for h in hands):
            return None
        index = torch.as_tensor(np.concatenate(hands), device=dense.device)
        rest = torch.as_tensor(character.rest_vertices[index.cpu().numpy()], dtype=dense.dtype, device=dense.device)
        # A soft minimum over a hand's vertices: the hard one would pass gradient to a single vertex per step.
        return cls(rest, dense[index], len(hands[0]), 0.005 * character.height)

    def body_gap(self, model: PenetrationModel, transforms: Tensor) -> Tensor:
        """``(T, 2)`` soft distance of each hand to the posed body, from ``(T, J, 3, 4)`` skinning transforms."""
        d = model.body_sdf(linear_blend_skinning(self.rest, self.weights, transforms), transforms,
                           exact_grad=False)  # (T, H)
        n = self.num_left
        return torch.stack([soft_min(d[:, :n], self.tau), soft_min(d[:, n:], self.tau)], dim=-1)


FINGER_SAMPLES = 160  # the penetration loss's samples on the fingers of a rig with finger bones (16 a finger)


@dataclass(frozen=True, eq=False)
class LimbSamples:
    """The limb vertices the penetration loss looks at: an even spread (neighbours move together).

    rest: ``(L, 3)`` rest positions; weights: ``(L, J)`` dense skin weights (to skin every frame at once);
    top_joints, top_weights: ``(L, 4)`` the top-4 bones and weights (to skin sparse (frame, vertex) pairs).
    """

    rest: Tensor
    weights: Tensor
    top_joints: Tensor
    top_weights: Tensor

    @classmethod
    def of(cls, character: Character, model: PenetrationModel, dense: Tensor, count: int,
           finger_count: int = FINGER_SAMPLES) -> "LimbSamples":
        """At most ``count`` of ``model``'s limb vertices, with the character's ``(V, J)`` dense weights; on a rig
        with finger bones, at most ``count`` spread over the arms and ``finger_count`` more over the fingers (the
        vertices mostly weighted to finger bones). One even spread over arms and fingers together leaves a finger
        two to five samples, and a fingertip could sink into the body between them unseen."""
        limb = model.limb_index.cpu().numpy()
        fingers = sorted(map_fingers(character.skeleton).values())
        on_finger = np.zeros(len(limb), bool)
        if fingers:
            on_finger = dense[torch.as_tensor(limb, device=dense.device)][:, fingers].sum(1).cpu().numpy() > 0.5
        arm, finger = limb[~on_finger], limb[on_finger] if finger_count > 0 else limb[:0]
        limb = np.sort(np.concatenate([arm[farthest_points(character.rest_vertices[arm], count)],
                                       finger[farthest_points(character.rest_vertices[finger], finger_count)]]))
        device = dense.device
        return cls(torch.as_tensor(character.rest_vertices[limb], dtype=dense.dtype, device=device),
                   dense[torch.as_tensor(limb, device=device)],
                   torch.as_tensor(character.skin_indices[limb], device=device),
                   torch.as_tensor(character.skin_weights[limb], dtype=dense.dtype, device=device))

    def __len__(self) -> int:
        return len(self.rest)


@dataclass(frozen=True, eq=False)
class Rig:
    """The character's skeleton and the start's rotations as tensors on the optimiser's device.

    parents: ``J`` parent indices. offsets: ``(J, 3)``; rest_rotations: ``(J, 4)`` bone orientations;
    rest_pose: the skeleton's rest :class:`~core.kinematics.Pose`. start: ``(T, J, 3, 3)`` the start's local
    rotations; root: ``(T, 3)`` its root path. free: ``(F,)`` indices of the joints the optimiser moves.
    mapping: the rig's joint index of each canonical joint (-1 where synthesised).
    """

    parents: tuple[int, ...]
    offsets: Tensor
    rest_rotations: Tensor
    rest_pose: Pose
    start: Tensor
    root: Tensor
    free: Tensor
    mapping: tuple[int, ...]

    @classmethod
    def of(cls, motion: Motion, mapping: tuple[int, ...], free: list[int], dtype: torch.dtype,
           device: torch.device) -> "Rig":
        """``motion``'s skeleton and rotations; ``mapping`` from :func:`~core.skeleton.map_to_canonical`,
        ``free`` the joints the optimiser moves."""
        sk = motion.skeleton
        rest = sk.rest_pose(dtype)
        return cls(sk.parents, torch.as_tensor(sk.offsets, dtype=dtype, device=device),
                   torch.as_tensor(sk.rest_rotations, dtype=dtype, device=device),
                   Pose(rest.positions.to(device), rest.rotations.to(device)),
                   quat_to_matrix(torch.as_tensor(motion.rotations, dtype=dtype, device=device)),
                   torch.as_tensor(motion.root_positions, dtype=dtype, device=device),
                   torch.as_tensor(free, device=device), mapping)

    def local_rotations(self, x: Tensor) -> Tensor:
        """``(T, J, 3, 3)`` the start's local rotations with the free joints' replaced by 6D angles ``x (T, F, 6)``."""
        R = self.start.clone()
        R[:, self.free] = rot6d_to_matrix(x)
        return R

    def pose(self, x: Tensor) -> Pose:
        """World transforms of every joint for the free joints' 6D angles ``x (T, F, 6)``."""
        return forward_kinematics(self.parents, self.offsets, self.local_rotations(x), self.root,
                                  self.rest_rotations)

    def posed(self, x: Tensor, model: PenetrationModel | None = None, hands: HandSamples | None = None) -> Posed:
        """The clip at 6D angles ``x (T, F, 6)``; hand–body gaps when both ``model`` and ``hands`` are given."""
        pose = self.pose(x)
        transforms = skinning_transforms(pose, self.rest_pose)
        body_gap = hands.body_gap(model, transforms) if model is not None and hands is not None else None
        return Posed(_canonical_tracks(pose.positions, self.mapping), body_gap, transforms, pose.rotations)
