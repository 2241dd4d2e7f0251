"""A differentiable soft rasteriser in plain torch (SoftRas, Liu et al. 2019), CPU and CUDA: what the semantic
supervisors of stage II look at.

Each face spreads over the pixels near it with probability ``D = sigmoid(δ · d² / σ)`` (``d`` the pixel's
distance to the face's 2D outline in pixels, ``δ = +1`` inside and ``−1`` outside). The silhouette is
``1 − Π (1 − D)``, accumulated in log space (``log(1 − D) = −softplus(δ d² / σ)``, no underflow); the colour is
SoftRas's depth-weighted mix ``Σ D_j e^{z_j/γ} C_j + e^{ε/γ} C_bg`` over its normaliser, with ``z`` the
normalised inverse depth interpolated at the pixel. Faces are flat-shaded: the mean colour of their vertices
times ``ambient + (1 − ambient) · max(0, n · view)`` (a headlight).

Why our own: pytorch3d cannot be installed here, and its CPU rasteriser tests every pixel against every face
(DESIGN §4). Here only face–pixel pairs inside each face's bounding box, widened by the blur radius (where D
falls to ``eps``), are ever formed, in chunks, and back faces are culled (a closed mesh's silhouette does not
need them). Pair selection is piecewise constant, so gradients are exact (gradcheck in the tests).

Conventions: world metres, Y up; cameras are :class:`core.render.preview.Camera` (OpenGL: looks down −z);
images are ``(B, 3, H, W)`` in [0, 1], row 0 at the top; the "front" view looks at the character's face
(camera on +Z), "left" from the character's left (+X), "right" from its right (−X).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .preview import Camera, frame_camera

__all__ = ["SoftRasterSettings", "SoftImages", "soft_rasterize", "camera_matrices", "clip_cameras", "VIEW_AZIMUTHS",
           "render_views", "mannequin"]

VIEW_AZIMUTHS: dict[str, float] = {"front": 0.0, "left": 90.0, "right": -90.0}


@dataclass(frozen=True)
class SoftRasterSettings:
    """size: image side, pixels. sigma: SoftRas σ, pixels² (the blur). gamma: SoftRas γ on normalised depth.
    eps: probability below which a face is ignored (sets the pair radius). background: RGB in [0, 1].
    ambient: share of light that ignores the surface's orientation. max_pairs: face–pixel pairs per chunk.
    cull_backfaces: skip faces turned away from the camera."""

    size: int = 224
    sigma: float = 1.0
    gamma: float = 0.01
    eps: float = 1e-3
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.35
    max_pairs: int = 4_000_000
    cull_backfaces: bool = True

    @property
    def radius(self) -> float:
        """Pixels beyond a face's outline where its probability is still above ``eps``."""
        return math.sqrt(self.sigma * math.log(1.0 / self.eps - 1.0))


@dataclass
class SoftImages:
    """rgb: ``(B, 3, H, W)`` shaded images over the background. alpha: ``(B, 1, H, W)`` soft silhouettes."""

    rgb: Tensor
    alpha: Tensor


def camera_matrices(cameras: Sequence[Camera], dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """``(B, 4, 4)`` view and ``(B, 4, 4)`` projection matrices of preview cameras."""
    view = torch.as_tensor(np.stack([c.view_matrix() for c in cameras]), dtype=dtype, device=device)
    proj = torch.as_tensor(np.stack([c.projection_matrix() for c in cameras]), dtype=dtype, device=device)
    return view, proj


def clip_cameras(points: np.ndarray, views: Sequence[str | float] = ("front", "left", "right"),
                 fov_y: float = 30.0, elevation: float = 10.0) -> list[Camera]:
    """One fixed camera per view framing every point of a clip ``(T, N, 3)`` (see ``preview.frame_camera``)."""
    cams = []
    for v in views:
        if isinstance(v, str) and v not in VIEW_AZIMUTHS:
            raise ValueError(f"unknown view {v!r}; expected one of {', '.join(VIEW_AZIMUTHS)} or an azimuth")
        azimuth = VIEW_AZIMUTHS[v] if isinstance(v, str) else float(v)
        cams.append(frame_camera(points, view=azimuth, fov_y=fov_y, elevation=elevation, margin=0.04))
    return cams


def _face_pairs(lo: Tensor, hi: Tensor, W: int, H: int) -> tuple[Tensor, Tensor]:
    """Pixel boxes of faces: ``(N, 2)`` first pixel and ``(N, 2)`` extent (0 when off-screen)."""
    first = torch.ceil(lo - 0.5).long().clamp_min(0)
    last = torch.floor(hi - 0.5).long()
    last = torch.stack([last[:, 0].clamp_max(W - 1), last[:, 1].clamp_max(H - 1)], dim=-1)
    return first, (last - first + 1).clamp_min(0)


def _seg_dist2(p: Tensor, a: Tensor, b: Tensor) -> Tensor:
    d = b - a
    t = (((p - a) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    q = p - a - t[..., None] * d
    return (q * q).sum(-1)


def soft_rasterize(vertices: Tensor, faces: Tensor, colors: Tensor, view: Tensor, proj: Tensor,
                   settings: SoftRasterSettings = SoftRasterSettings()) -> SoftImages:
    """Render ``B`` images of meshes, differentiable in vertices and colours.

    Args:
        vertices: ``(B, V, 3)`` world positions (one mesh pose per image).
        faces: ``(F, 3)`` long, counter-clockwise seen from outside.
        colors: ``(V, 3)`` or ``(B, V, 3)`` vertex colours in [0, 1].
        view, proj: ``(B, 4, 4)`` camera matrices (:func:`camera_matrices`).
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (B, V, 3), got {tuple(vertices.shape)}")
    B, V = vertices.shape[:2]
    H = W = settings.size
    dev, dt = vertices.device, vertices.dtype
    faces = faces.to(dev)
    if colors.ndim == 2:
        colors = colors[None].expand(B, -1, -1)
    hom = torch.cat([vertices, torch.ones_like(vertices[..., :1])], dim=-1)
    cam = hom @ view.to(dt).transpose(-1, -2)  # (B, V, 4) camera space, looking down -z
    clip = cam @ proj.to(dt).transpose(-1, -2)
    w = clip[..., 3]
    px = torch.stack([(clip[..., 0] / w * 0.5 + 0.5) * W, (0.5 - clip[..., 1] / w * 0.5) * H], dim=-1)
    depth = -cam[..., 2]  # distance along the viewing axis, positive in front
    near = depth.amin(1, keepdim=True) - 1e-3  # the image's own depth range (differentiable, like the rest)
    far = depth.amax(1, keepdim=True) + 1e-3
    znorm = (far - depth) / (far - near)  # (B, V): 1 at the nearest vertex, 0 at the farthest

    tri = px[:, faces]  # (B, F, 3, 2)
    a, b, c = tri.unbind(-2)
    area = (b - a)[..., 0] * (c - a)[..., 1] - (b - a)[..., 1] * (c - a)[..., 0]  # < 0: facing the camera
    with torch.no_grad():
        keep = (depth[:, faces] > 0).all(-1) & (area.abs() > 1e-9)
        if settings.cull_backfaces:
            keep &= area < 0
        r = settings.radius
        lo, hi = tri.amin(-2) - r, tri.amax(-2) + r
        bi, fi = keep.nonzero(as_tuple=True)
        first, ext = _face_pairs(lo[bi, fi], hi[bi, fi], W, H)
        counts = ext[:, 0] * ext[:, 1]

    # Flat shading: the face's mean colour under a headlight.
    normal = torch.linalg.cross(vertices[:, faces[:, 1]] - vertices[:, faces[:, 0]],
                                vertices[:, faces[:, 2]] - vertices[:, faces[:, 0]], dim=-1)
    normal_cam = torch.nn.functional.normalize(normal, dim=-1) @ view[:, :3, :3].to(dt).transpose(-1, -2)
    shade = settings.ambient + (1 - settings.ambient) * normal_cam[..., 2].clamp_min(0)
    face_rgb = colors[:, faces].mean(-2) * shade[..., None]  # (B, F, 3)

    # Everything a pair needs from its face, gathered once: 2D corners, area, corner depths, colour.
    zf = znorm[:, faces]  # (B, F, 3)
    packed = torch.cat([tri.flatten(-2), area[..., None], zf, face_rgb], dim=-1)[bi, fi]  # (N, 13)

    n_pix = B * H * W
    bg = torch.tensor(settings.background, dtype=dt, device=dev)
    eps_z = 1e-3  # the background's normalised depth (SoftRas ε)
    chunks = _chunks(counts, settings.max_pairs)

    def pixels(sl: slice) -> tuple[Tensor, Tensor]:
        cnt = counts[sl]
        k = torch.repeat_interleave(torch.arange(sl.start, sl.stop, device=dev), cnt)
        local = torch.arange(k.numel(), device=dev) - (torch.cumsum(cnt, 0) - cnt)[k - sl.start]
        ix = first[k, 0] + local % ext[k, 0]
        iy = first[k, 1] + local // ext[k, 0]
        return k, torch.stack([ix, iy], -1)

    # Pass 1: an upper bound of the nearest depth per pixel (the faces' nearest corners). It only rescales
    # numerator and denominator of the colour mix alike (so it cancels), keeping the exponentials in range.
    zmax = torch.full((n_pix,), eps_z, dtype=dt, device=dev)
    with torch.no_grad():
        face_zmax = packed[:, 7:10].amax(-1)
        for sl in chunks:
            k, ij = pixels(sl)
            zmax = zmax.scatter_reduce(0, bi[k] * H * W + ij[:, 1] * W + ij[:, 0], face_zmax[k], reduce="amax")

    def cross(u: Tensor, v: Tensor) -> Tensor:
        return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

    log_free = torch.zeros(n_pix, dtype=dt, device=dev)
    num = torch.zeros(n_pix, 3, dtype=dt, device=dev)
    den = torch.zeros(n_pix, dtype=dt, device=dev)
    for sl in chunks:
        k, ij = pixels(sl)
        pix = bi[k] * H * W + ij[:, 1] * W + ij[:, 0]
        f = packed[k]
        p = ij.to(dt) + 0.5
        ta, tb, tc, ar = f[:, 0:2], f[:, 2:4], f[:, 4:6], f[:, 6:7]
        bary = torch.stack([cross(tb - p, tc - p), cross(tc - p, ta - p), cross(ta - p, tb - p)], -1) / ar
        inside = (bary > 0).all(-1)
        d2 = torch.minimum(torch.minimum(_seg_dist2(p, ta, tb), _seg_dist2(p, tb, tc)), _seg_dist2(p, tc, ta))
        x = torch.where(inside, d2, -d2) / settings.sigma
        bc = bary.clamp(0, 1)
        z = (bc * f[:, 7:10]).sum(-1) / bc.sum(-1).clamp_min(1e-12)
        log_free = log_free.index_add(0, pix, -torch.nn.functional.softplus(x))
        e = torch.sigmoid(x) * torch.exp((z - zmax[pix]) / settings.gamma)
        num = num.index_add(0, pix, e[:, None] * f[:, 10:13])
        den = den.index_add(0, pix, e)
    e_bg = torch.exp((eps_z - zmax) / settings.gamma)
    rgb = (num + e_bg[:, None] * bg) / (den + e_bg)[:, None]
    alpha = 1 - torch.exp(log_free)
    return SoftImages(rgb.reshape(B, H, W, 3).permute(0, 3, 1, 2), alpha.reshape(B, 1, H, W))


def _chunks(counts: Tensor, max_pairs: int) -> list[slice]:
    """Consecutive face ranges with at most ``max_pairs`` pairs each (a face is never split)."""
    out, start, total = [], 0, 0
    for i, n in enumerate(counts.tolist()):
        if total + n > max_pairs and i > start:
            out.append(slice(start, i))
            start, total = i, 0
        total += n
    if start < len(counts):
        out.append(slice(start, len(counts)))
    return out


def render_views(vertices: Tensor, faces: Tensor, colors: Tensor, cameras: Sequence[Camera],
                 settings: SoftRasterSettings = SoftRasterSettings()) -> Tensor:
    """``(T, C, 3, H, W)`` images of ``T`` poses ``(T, V, 3)`` from each of ``C`` cameras."""
    T = vertices.shape[0]
    view, proj = camera_matrices(cameras, vertices.dtype, vertices.device)
    C = len(cameras)
    verts = vertices[:, None].expand(T, C, -1, -1).reshape(T * C, -1, 3)
    img = soft_rasterize(verts, faces, colors, view.repeat(T, 1, 1), proj.repeat(T, 1, 1), settings)
    return img.rgb.reshape(T, C, 3, settings.size, settings.size)


def mannequin(skeleton, radius: float | None = None, segments: int = 8):
    """A plain grey mannequin for a bare skeleton: a capped tube around every bone, rigidly skinned to it.

    What image supervisors look at for a source that has no mesh (a BVH file), so that source and target are
    both rendered. Returns a :class:`core.character.Character` on ``skeleton``; parts by bone name (trunk
    bones torso, neck and head head, shoulders, arms and hands arm, the rest leg).
    """
    from ..character import PART_NAMES, Character

    rest = skeleton.rest_positions()
    radius = radius or 0.035 * (float(np.ptp(rest[:, 1])) or 1.0)
    ring = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    verts, faces, bone = [], [], []
    for j, p in enumerate(skeleton.parents):
        a, b = rest[max(p, 0)], rest[j]
        length = float(np.linalg.norm(b - a))
        if p < 0 or length < 1e-6:
            continue
        axis = (b - a) / length
        u = np.cross(axis, [1.0, 0, 0] if abs(axis[0]) < 0.9 else [0, 1.0, 0])
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)  # (u, v, axis) right-handed: rings run counter-clockwise seen from +axis
        o = len(verts)
        verts += [end + radius * (np.cos(t) * u + np.sin(t) * v) for end in (a, b) for t in ring]
        verts += [a - radius * axis, b + radius * axis]
        for i in range(segments):
            i2 = (i + 1) % segments
            s0, s1, e0, e1 = o + i, o + i2, o + segments + i, o + segments + i2
            faces += [[s0, s1, e1], [s0, e1, e0], [o + 2 * segments, s1, s0], [o + 2 * segments + 1, e0, e1]]
        bone += [p] * (2 * segments + 2)
    names = skeleton.names

    def part(j: int) -> int:
        n = names[j].rsplit(":", 1)[-1].lower()
        if "head" in n or "neck" in n:
            return PART_NAMES.index("head")
        if any(k in n for k in ("arm", "hand", "shoulder", "clavicle", "collar", "finger", "thumb")):
            return PART_NAMES.index("arm")
        if any(k in n for k in ("spine", "hip", "chest", "pelvis", "abdomen", "torso", "waist")) and "up" not in n:
            return PART_NAMES.index("torso")
        return PART_NAMES.index("leg")

    bone_a = np.asarray(bone, dtype=np.int64)
    idx = np.zeros((len(verts), 4), dtype=np.int64)
    idx[:, 0] = bone_a
    weights = np.zeros((len(verts), 4))
    weights[:, 0] = 1.0
    return Character("mannequin", skeleton, np.asarray(verts), np.asarray(faces, dtype=np.int64), idx, weights,
                     np.array([part(j) for j in bone_a], dtype=np.int64), np.full((len(verts), 3), 0.7))
