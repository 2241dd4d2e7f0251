"""Rotation conversions in torch: quaternions, matrices, 6D.

Conventions (see DESIGN §2):
- quaternions are ``(w, x, y, z)``, unit length, scalar first;
- matrices act on column vectors: ``v' = R @ v``;
- the 6D representation (Zhou et al. 2019) is the first two *columns* of the matrix, stacked as
  ``(r00, r10, r20, r01, r11, r21)``.

Every function takes arbitrary leading batch dimensions and is differentiable.

Why our own few lines: roma uses (x, y, z, w) quaternions, which would put a convention flip at every call,
and pytorch3d.transforms needs an install-time environment variable. Euler angles (only needed by file
formats) go through scipy in ``core.io``.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "quat_multiply", "quat_conjugate", "quat_normalize", "quat_rotate", "quat_to_matrix", "matrix_to_quat",
    "rot6d_to_matrix", "matrix_to_rot6d", "quat_to_rot6d", "rot6d_to_quat", "quat_identity",
    "quat_between", "quat_slerp", "quat_make_continuous",
]


def _check_last(x: Tensor, size: int, name: str) -> None:
    if x.shape[-1] != size:
        raise ValueError(f"{name} must have last dimension {size}, got shape {tuple(x.shape)}")


def quat_identity(*shape: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Identity quaternions of shape ``(*shape, 4)``."""
    q = torch.zeros(*shape, 4, dtype=dtype, device=device)
    q[..., 0] = 1.0
    return q


def quat_normalize(q: Tensor, eps: float = 1e-12) -> Tensor:
    """Unit quaternions ``(..., 4)``."""
    _check_last(q, 4, "q")
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quat_conjugate(q: Tensor) -> Tensor:
    """Conjugate (the inverse of a unit quaternion) ``(..., 4)``."""
    _check_last(q, 4, "q")
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a * b`` ``(..., 4)``: rotating by ``b`` first, then ``a``."""
    _check_last(a, 4, "a")
    _check_last(b, 4, "b")
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)``."""
    _check_last(q, 4, "q")
    _check_last(v, 3, "v")
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(xyz, v, dim=-1)
    return v + w * t + torch.cross(xyz, t, dim=-1)


def quat_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` from quaternions ``(..., 4)`` (normalised first)."""
    _check_last(q, 4, "q")
    w, x, y, z = quat_normalize(q).unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = torch.stack([
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    ], dim=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: Tensor) -> Tensor:
    """Unit quaternions ``(..., 4)`` with ``w >= 0`` from rotation matrices ``(..., 3, 3)``.

    Picks, per matrix, the best-conditioned of the four classic formulas so gradients stay finite
    for every rotation (including 180-degree turns).
    """
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"m must have shape (..., 3, 3), got {tuple(m.shape)}")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * (w^2, x^2, y^2, z^2); the largest decides which formula is numerically safe.
    sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    r = torch.sqrt(sq.clamp_min(1e-12))
    candidates = torch.stack([
        torch.stack([r[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1) / (2 * r[..., 0:1]),
        torch.stack([m21 - m12, r[..., 1] ** 2, m10 + m01, m02 + m20], -1) / (2 * r[..., 1:2]),
        torch.stack([m02 - m20, m10 + m01, r[..., 2] ** 2, m21 + m12], -1) / (2 * r[..., 2:3]),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, r[..., 3] ** 2], -1) / (2 * r[..., 3:4]),
    ], dim=-2)  # (..., 4 candidates, 4)
    best = sq.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


def rot6d_to_matrix(d6: Tensor) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` from 6D ``(..., 6)`` by Gram-Schmidt on the two columns."""
    _check_last(d6, 6, "d6")
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(m: Tensor) -> Tensor:
    """6D ``(..., 6)`` from rotation matrices ``(..., 3, 3)``: the first two columns."""
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"m must have shape (..., 3, 3), got {tuple(m.shape)}")
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def quat_to_rot6d(q: Tensor) -> Tensor:
    """6D ``(..., 6)`` from quaternions ``(..., 4)``."""
    return matrix_to_rot6d(quat_to_matrix(q))


def rot6d_to_quat(d6: Tensor) -> Tensor:
    """Quaternions ``(..., 4)`` from 6D ``(..., 6)``."""
    return matrix_to_quat(rot6d_to_matrix(d6))


def quat_between(u: Tensor, v: Tensor, eps: float = 1e-9) -> Tensor:
    """Shortest-arc unit quaternions ``(..., 4)`` rotating direction ``u (..., 3)`` onto ``v (..., 3)``.

    Opposite vectors get a 180-degree turn about an axis perpendicular to ``u``.
    """
    _check_last(u, 3, "u")
    _check_last(v, 3, "v")
    u = torch.nn.functional.normalize(u, dim=-1)
    v = torch.nn.functional.normalize(v, dim=-1)
    w = 1.0 + (u * v).sum(-1, keepdim=True)
    axis = torch.cross(u, v, dim=-1)
    # For opposite vectors, any axis perpendicular to u works; pick the one least aligned with u.
    helper = torch.where(u[..., :1].abs() < 0.9, u.new_tensor([1.0, 0.0, 0.0]), u.new_tensor([0.0, 1.0, 0.0]))
    perp = torch.nn.functional.normalize(torch.cross(u, helper.expand_as(u), dim=-1), dim=-1)
    opposite = w < eps
    q = torch.where(opposite, torch.cat([torch.zeros_like(w), perp], -1), torch.cat([w, axis], -1))
    return quat_normalize(q)


def quat_slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Spherical interpolation between unit quaternions ``a`` and ``b`` ``(..., 4)`` at ``t`` in [0, 1]."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() == a.dim() - 1:
        t = t[..., None]
    dot = (a * b).sum(-1, keepdim=True)
    b = torch.where(dot < 0, -b, b)  # take the short way round
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin = torch.sin(theta)
    near = sin < 1e-6  # nearly equal: linear interpolation is exact enough and stable
    wa = torch.where(near, 1 - t, torch.sin((1 - t) * theta) / sin.clamp_min(1e-12))
    wb = torch.where(near, t, torch.sin(t * theta) / sin.clamp_min(1e-12))
    return quat_normalize(wa * a + wb * b)


def quat_make_continuous(q: Tensor, dim: int = 0) -> Tensor:
    """Flip signs along time axis ``dim`` so consecutive quaternions have a non-negative dot product."""
    q = q.movedim(dim, 0)
    if q.shape[0] < 2:
        return q.movedim(0, dim)
    dots = (q[1:] * q[:-1]).sum(-1, keepdim=True)
    flips = torch.cumprod(torch.where(dots < 0, -1.0, 1.0).to(q.dtype), dim=0)
    out = torch.cat([q[:1], q[1:] * flips], dim=0)
    return out.movedim(0, dim)
