"""Batched, differentiable forward kinematics and linear blend skinning (pure tensor functions).

Conventions (DESIGN §2): metres, Y up, column vectors, quaternions (w, x, y, z). A joint's local transform is
``[R_rest_j @ L_j | offset_j]`` in its parent's frame, where ``offset_j`` is the rest translation from the
parent, ``R_rest_j`` the bone orientation a file format carries (identity for BVH) and ``L_j`` the animated
rotation relative to rest. The root's translation is the motion's root position instead of its offset.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from .rotations import quat_to_matrix

__all__ = ["Pose", "forward_kinematics", "skinning_transforms", "linear_blend_skinning", "dense_skin_weights"]


@dataclass
class Pose:
    """World transforms of every joint.

    positions: ``(..., J, 3)`` joint positions in metres.
    rotations: ``(..., J, 3, 3)`` joint world rotation matrices (including rest orientations).
    """

    positions: Tensor
    rotations: Tensor


def forward_kinematics(parents: list[int] | tuple[int, ...], offsets: Tensor, local_rotations: Tensor,
                       root_positions: Tensor, rest_rotations: Tensor | None = None) -> Pose:
    """World joint positions and rotations.

    Args:
        parents: ``J`` parent indices, topologically ordered, ``parents[0] == -1``.
        offsets: ``(J, 3)`` rest translations from each joint's parent, in the parent's frame.
        local_rotations: ``(..., J, 4)`` quaternions or ``(..., J, 3, 3)`` matrices, relative to rest.
        root_positions: ``(..., 3)`` world position of joint 0 (broadcast over the batch).
        rest_rotations: optional ``(J, 4)`` bone rest orientations (identity when ``None``).

    Returns:
        :class:`Pose` with ``(..., J, 3)`` positions and ``(..., J, 3, 3)`` rotations.
    """
    J = len(parents)
    if offsets.shape != (J, 3):
        raise ValueError(f"offsets must be ({J}, 3), got {tuple(offsets.shape)}")
    local = quat_to_matrix(local_rotations) if local_rotations.shape[-1] == 4 else local_rotations
    if local.shape[-3:] != (J, 3, 3):
        raise ValueError(f"local_rotations must be (..., {J}, 4) or (..., {J}, 3, 3), got {tuple(local_rotations.shape)}")
    if rest_rotations is not None:
        local = quat_to_matrix(rest_rotations).to(local) @ local
    offsets = offsets.to(local)
    root_positions = root_positions.to(local).expand(local.shape[:-3] + (3,))
    # One batched product per depth of the tree, not one per joint: a 65-bone Mixamo rig is 12 levels deep, and
    # stage II runs this (and its backward) every step.
    rots, pos = [local[..., :1, :, :]], [root_positions[..., None, :]]
    for joints, parent_slots in _depth_levels(tuple(parents))[1:]:
        parent_rot = rots[-1][..., parent_slots, :, :]
        rots.append(parent_rot @ local[..., joints, :, :])
        pos.append(pos[-1][..., parent_slots, :] + (parent_rot @ offsets[joints, :, None])[..., 0])
    order = _depth_order(tuple(parents))
    return Pose(positions=torch.cat(pos, dim=-2)[..., order, :], rotations=torch.cat(rots, dim=-3)[..., order, :, :])


@functools.lru_cache(maxsize=64)
def _depth_levels(parents: tuple[int, ...]) -> list[tuple[list[int], list[int]]]:
    """The joints grouped by depth (the root alone first), each level with its joints' parents' positions in
    the level above."""
    if not parents or parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j):
        raise ValueError("parents must be topologically ordered with the root first")
    depth = [0] * len(parents)
    for j, p in enumerate(parents[1:], 1):
        depth[j] = depth[p] + 1
    levels: list[list[int]] = [[] for _ in range(max(depth) + 1)]
    for j, d in enumerate(depth):
        levels[d].append(j)
    slot = {j: i for level in levels for i, j in enumerate(level)}
    return [(level, [slot[parents[j]] for j in level] if d else []) for d, level in enumerate(levels)]


@functools.lru_cache(maxsize=64)
def _depth_order(parents: tuple[int, ...]) -> list[int]:
    """Where each joint sits once the levels of :func:`_depth_levels` are concatenated."""
    flat = [j for level, _ in _depth_levels(parents) for j in level]
    where = [0] * len(flat)
    for i, j in enumerate(flat):
        where[j] = i
    return where


def skinning_transforms(pose: Pose, rest_pose: Pose) -> Tensor:
    """Per-joint 3x4 transforms ``(..., J, 3, 4)`` taking rest-pose world points to posed world points."""
    rel = pose.rotations @ rest_pose.rotations.transpose(-1, -2)
    trans = pose.positions - (rel @ rest_pose.positions[..., None])[..., 0]
    return torch.cat([rel, trans[..., None]], dim=-1)


def dense_skin_weights(indices: Tensor, weights: Tensor, num_joints: int) -> Tensor:
    """Scatter top-k skin weights ``(V, K)`` with joint ``indices (V, K)`` into a dense ``(V, J)`` matrix."""
    dense = torch.zeros(indices.shape[0], num_joints, dtype=weights.dtype, device=weights.device)
    return dense.scatter_add_(1, indices.long(), weights)


def linear_blend_skinning(rest_vertices: Tensor, weights: Tensor, transforms: Tensor, *,
                          per_vertex: bool = False) -> Tensor:
    """Posed vertices ``(..., V, 3)``: each rest vertex moved by the skin-weighted blend of its bones' transforms.

    Two layouts of the same sum ``v' = (Σ_j w_j T_j) v``:

    * shared bones (default): ``weights (V, J)`` dense skin weights (rows sum to 1, see
      :func:`dense_skin_weights`) and ``transforms (..., J, 3, 4)`` from :func:`skinning_transforms`, one set
      per pose; every vertex blends the same J transforms.
    * ``per_vertex=True``: ``weights (..., V, K)`` and ``transforms (..., V, K, 3, 4)``: each vertex blends its
      own K transforms, gathered by the caller (e.g. its top-k bones in the frame that vertex belongs to), for
      sparse sets of (frame, vertex) pairs where gathering every bone of every frame would cost V × J × 12.

    Args:
        rest_vertices: ``(V, 3)`` or ``(..., V, 3)`` vertices in the rest pose.
    """
    if rest_vertices.shape[-1] != 3 or transforms.shape[-2:] != (3, 4):
        raise ValueError(f"rest_vertices must be (..., V, 3) and transforms (..., 3, 4), got "
                         f"{tuple(rest_vertices.shape)} and {tuple(transforms.shape)}")
    if per_vertex:
        if weights.shape != transforms.shape[:-2]:
            raise ValueError(f"per-vertex weights must be (..., V, K) matching transforms (..., V, K, 3, 4), got "
                             f"{tuple(weights.shape)} and {tuple(transforms.shape)}")
        # An elementwise product and sum: as a matmul, torch would run V tiny (1, K) x (K, 12) products.
        blended = (weights[..., None] * transforms.flatten(-2)).sum(-2).unflatten(-1, (3, 4))  # (..., V, 3, 4)
        return (blended[..., :3] * rest_vertices[..., None, :]).sum(-1) + blended[..., 3]
    if weights.dim() != 2 or weights.shape[1] != transforms.shape[-3]:
        raise ValueError(f"weights must be (V, J) with J = transforms' {transforms.shape[-3]} joints, got "
                         f"{tuple(weights.shape)}")
    # Blending the 12 matrix entries first (one matmul) is far cheaper than transforming per joint.
    blended = torch.matmul(weights.to(transforms), transforms.flatten(-2))  # (..., V, 12)
    blended = blended.unflatten(-1, (3, 4))
    v = rest_vertices.to(transforms)
    return (blended[..., :3] @ v[..., None])[..., 0] + blended[..., 3]
