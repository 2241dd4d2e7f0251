"""Signed distance grids of closed meshes: building one (once, at character load) and sampling it
trilinearly (every optimiser iteration, differentiable in the query points).

Conventions: a grid covers the box ``origin + cell * (i, j, k)`` for ``0 <= i < nx`` etc., metres; values are
stored ``(nz, ny, nx)`` (z slowest) so that ``torch.nn.functional.grid_sample``'s ``(x, y, z)`` coordinates
index them directly. Negative inside, positive outside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .mesh import ray_inside

__all__ = ["SDFGrid", "point_triangle_distance", "mesh_distance", "build_sdf_grid", "grid_points",
           "sample_grid", "to_grid_coords"]


@dataclass(frozen=True)
class SDFGrid:
    """A signed distance field sampled on a regular grid.

    values: ``(nz, ny, nx)`` signed distances, metres (negative inside).
    origin: ``(3,)`` position of grid point ``(0, 0, 0)``.
    cell: grid spacing, metres.
    """

    values: Tensor
    origin: Tensor
    cell: float

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        nz, ny, nx = self.values.shape
        return nx, ny, nz


def point_triangle_distance(points: Tensor, tri: Tensor) -> Tensor:
    """``(N,)`` Euclidean distance from ``points (N, 3)`` to triangles ``tri (N, 3, 3)`` (pairwise).

    Projects onto the triangle's plane; inside the triangle that is the answer, otherwise the nearest of the
    three edges (each a clamped segment projection).
    """
    a, b, c = tri.unbind(-2)
    n = torch.linalg.cross(b - a, c - a, dim=-1)
    nn = (n * n).sum(-1).clamp_min(1e-30)
    ap = points - a
    # Barycentrics of the projection (signed areas against the normal).
    wb = (torch.linalg.cross(ap, c - a, dim=-1) * n).sum(-1) / nn
    wc = (torch.linalg.cross(b - a, ap, dim=-1) * n).sum(-1) / nn
    inside = (wb >= 0) & (wc >= 0) & (wb + wc <= 1)
    plane = (ap * n).sum(-1).abs() / nn.sqrt()

    def segment(p0: Tensor, p1: Tensor) -> Tensor:
        d = p1 - p0
        t = (((points - p0) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-30)).clamp(0, 1)
        return (points - p0 - t[..., None] * d).norm(dim=-1)

    edges = torch.minimum(torch.minimum(segment(a, b), segment(b, c)), segment(c, a))
    return torch.where(inside, plane, edges)


def mesh_distance(points: Tensor, vertices: Tensor, faces: np.ndarray, exact_within: float = float("inf"),
                  chunk: int = 32768) -> tuple[Tensor, Tensor]:
    """Unsigned distance ``(P,)`` from points to a mesh, and the index ``(P,)`` of each point's nearest vertex.

    The nearest vertex comes from a k-d tree (vertices no face uses are ignored); for points
    within ``exact_within`` of it, the distance is then made exact against the triangles around that vertex
    (where the nearest surface point lies on any reasonably shaped mesh). Farther points keep the vertex
    distance, which overestimates by at most half an edge.
    """
    faces = np.asarray(faces)
    f = torch.as_tensor(faces, device=points.device)
    used = torch.as_tensor(np.unique(faces), device=points.device)
    # Nearest vertex by a k-d tree (scipy), then the exact distance to the triangles around it.
    from scipy.spatial import cKDTree

    tree = cKDTree(vertices[used].detach().cpu().numpy())
    _, i = tree.query(points.detach().cpu().numpy())
    nearest = used[torch.as_tensor(i, device=points.device)]
    dist = (points - vertices[nearest]).norm(dim=-1)

    # Faces around each vertex, as a CSR list: ring_faces[ring_start[v] : ring_start[v] + valence[v]].
    order = torch.argsort(f.reshape(-1), stable=True)
    ring_faces = order // 3
    valence = torch.bincount(f.reshape(-1), minlength=vertices.shape[0])
    ring_start = torch.cumsum(valence, 0) - valence
    near = torch.nonzero(dist < exact_within)[:, 0]
    for s in range(0, near.numel(), chunk):
        q = near[s:s + chunk]
        n = valence[nearest[q]]
        pair_q = torch.repeat_interleave(torch.arange(q.numel(), device=points.device), n)
        offset = torch.arange(pair_q.numel(), device=points.device) - (torch.cumsum(n, 0) - n)[pair_q]
        face = ring_faces[ring_start[nearest[q]][pair_q] + offset]
        d = point_triangle_distance(points[q][pair_q], vertices[f[face]])
        exact = torch.full((q.numel(),), float("inf"), dtype=d.dtype, device=d.device)
        dist[q] = exact.scatter_reduce(0, pair_q, d, reduce="amin")
    return dist, nearest


def grid_points(origin: Tensor, cell: float, shape_xyz: tuple[int, int, int]) -> Tensor:
    """``(nz, ny, nx, 3)`` world positions of a grid's points."""
    nx, ny, nz = shape_xyz
    ax = [origin[i] + cell * torch.arange(n, dtype=origin.dtype, device=origin.device) for i, n in enumerate((nx, ny, nz))]
    z, y, x = torch.meshgrid(ax[2], ax[1], ax[0], indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def build_sdf_grid(vertices: Tensor, faces: np.ndarray, cell: float, margin: float,
                   box: tuple[Tensor, Tensor] | None = None) -> tuple[SDFGrid, Tensor]:
    """Signed distance grid of a closed mesh.

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)`` of a closed, outward-oriented mesh (see ``mesh.cap_holes``).
        cell: grid spacing, metres.
        margin: how far beyond the box the grid reaches, metres.
        box: ``(lo, hi)`` region to cover (default: the mesh's bounding box).

    Returns:
        The grid, and ``(nz, ny, nx)`` the nearest mesh vertex of every grid point (for carrying per-vertex
        data, such as skin weights, into the grid).
    """
    lo, hi = box if box is not None else (vertices.amin(0), vertices.amax(0))
    origin = lo - margin
    shape = tuple(int(n) for n in torch.ceil((hi + margin - origin) / cell).long().tolist())
    shape_xyz = (shape[0] + 1, shape[1] + 1, shape[2] + 1)
    pts = grid_points(origin, cell, shape_xyz)
    flat = pts.reshape(-1, 3)
    f = torch.as_tensor(np.asarray(faces), device=vertices.device)
    longest_edge = float((vertices[f] - vertices[f.roll(1, dims=1)]).norm(dim=-1).max())
    # Exact wherever the nearest surface point can be within two cells (the one-ring search covers it).
    dist, nearest = mesh_distance(flat, vertices, faces, exact_within=2 * cell + longest_edge)
    inside = ray_inside(flat, vertices, f)
    values = torch.where(inside, -dist, dist).reshape(pts.shape[:3])
    return SDFGrid(values, origin, float(cell)), nearest.reshape(pts.shape[:3])


def to_grid_coords(points: Tensor, grid: SDFGrid) -> Tensor:
    """``(..., 3)`` points in ``grid_sample``'s normalised ``[-1, 1]`` coordinates (``align_corners=True``)."""
    size = torch.tensor(grid.shape_xyz, dtype=points.dtype, device=points.device) - 1
    return (points - grid.origin.to(points)) / (grid.cell * size) * 2 - 1


def sample_grid(values: Tensor, coords: Tensor) -> Tensor:
    """Trilinear samples of grids at normalised coordinates, differentiable in ``coords``.

    Args:
        values: ``(B, C, nz, ny, nx)`` B grids of C channels.
        coords: ``(B, N, 3)`` normalised ``(x, y, z)`` in ``[-1, 1]`` (see :func:`to_grid_coords`); outside
            that box the border values continue.

    Returns:
        ``(B, C, N)``.
    """
    out = torch.nn.functional.grid_sample(values, coords[:, None, None].to(values.dtype), mode="bilinear",
                                          padding_mode="border", align_corners=True)
    return out[:, :, 0, 0]
