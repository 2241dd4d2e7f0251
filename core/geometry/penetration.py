"""Limb-into-body penetration: which vertices are limb and body, and the fast signed distance stage II needs.

Which vertices: the *limb* is the character's arm and hand vertices (``Character.limb_mask``); the *body* they
must stay out of is the torso and the head (``PART_NAMES`` "torso", "head"). Legs are neither: hands resting on
thighs are fine, and the legs' own crossings are another problem. Arm vertices that are inside the body already
in the character's own rest pose are not limb vertices here (:func:`rest_overlap`): modellers let parts overlap
where they join (X Bot's shoulder pieces, a robot's joint spheres, a sleeve tucked into a jacket), and those
vertices are hidden by design. Counted, they were 0.09-1.7 % of all vertices of every imported character tried
(Soldier, RobotExpressive, Samba dancer, X Bot), a floor no pose can remove: Pen% then read 1.9 → 1.8 % on X Bot
whatever stage II did, and the loss spent its steps pushing shoulder pieces out of the chest.

The loss (paper Eq. 11, :func:`core.optimize.terms.penetration`) is ``Σ_t Σ_v ReLU(−Φ_body(v_t))`` over limb
vertices ``v``, where ``Φ_body`` is the signed distance to the posed body. It must run every iteration on whole
clips, so Φ (:class:`PenetrationModel`) comes from one signed distance grid of the *rest* body, built once per
character, plus a grid of the body's skin weights (those of the nearest body vertex): a posed point is carried back into the rest pose by inverting linear blend skinning
(a few fixed-point rounds, see :meth:`PenetrationModel.body_sdf`) and the SDF is sampled trilinearly there. On
the posed body surface this is within a few millimetres of the exact distance; deeper inside it is the rest
depth, which is what a correction needs.

The metric (paper Eq. 13, :func:`core.metrics.penetration_percent`) counts limb vertices inside the posed
:func:`capped_body` with an exact inside test, never with this grid.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..character import PART_NAMES, Character
from ..errors import InputError
from ..kinematics import linear_blend_skinning
from .mesh import CappedMesh, cap_holes, ray_inside, submesh_faces, weld_faces
from .sdf import SDFGrid, build_sdf_grid, sample_grid, to_grid_coords

__all__ = ["BODY_PARTS", "MissingPartsError", "body_and_limb_masks", "capped_body", "rest_overlap",
           "PenetrationModel", "penetration_model"]

BODY_PARTS: tuple[str, ...] = ("torso", "head")


class MissingPartsError(InputError):
    """The character has no vertices labelled as limbs (arms) or as body (torso/head)."""


def body_and_limb_masks(character: Character) -> tuple[np.ndarray, np.ndarray]:
    """``(V,)`` body and ``(V,)`` limb vertex masks: the limb is the arm and hand vertices less those inside the
    body in the rest pose (:func:`rest_overlap`).

    Raises:
        MissingPartsError: when either is empty, naming what is missing.
    """
    body = _body_mask(character)
    limb = character.limb_mask
    missing = [what for what, m in (("arm/hand (limb)", limb), ("torso/head (body)", body)) if not m.any()]
    if missing:
        raise MissingPartsError(
            f"character {character.name!r} has no vertices labelled as {' or '.join(missing)}, so penetration "
            f"cannot be measured or corrected; label its vertices with core.character.PART_NAMES "
            f"({', '.join(PART_NAMES)})")
    return body, limb & ~rest_overlap(character)


def _body_mask(character: Character) -> np.ndarray:
    return np.isin(character.parts, [PART_NAMES.index(p) for p in BODY_PARTS])


def capped_body(character: Character) -> CappedMesh:
    """The torso+head surface, welded along seams (:func:`~core.geometry.mesh.weld_faces`) and closed by capping
    its real openings (shoulders, hips)."""
    faces = weld_faces(submesh_faces(character.faces, _body_mask(character)), character.rest_vertices)
    return cap_holes(faces, len(character.rest_vertices))


def rest_overlap(character: Character) -> np.ndarray:
    """``(V,)`` True for the arm and hand vertices inside the capped body in the character's rest pose (exact
    test, :func:`~core.geometry.mesh.ray_inside`): parts that overlap where they join, hidden by design and
    left out of Pen% and of the loss (see the module docstring). Kept per character content, like
    :func:`penetration_model`: a job asks for it several times."""
    key = _fingerprint(character)
    with _MODELS_LOCK:
        if key in _OVERLAPS:
            _OVERLAPS.move_to_end(key)
            return _OVERLAPS[key]
    overlap = np.zeros(len(character.rest_vertices), dtype=bool)
    limb = np.nonzero(character.limb_mask)[0]
    if len(limb) and _body_mask(character).any():
        capped = capped_body(character)
        rest = torch.as_tensor(character.rest_vertices, dtype=torch.float64)
        with torch.no_grad():
            overlap[limb] = ray_inside(rest[torch.as_tensor(limb)], capped.vertices(rest),
                                       torch.as_tensor(capped.faces)).numpy()
    with _MODELS_LOCK:
        _OVERLAPS[key] = overlap
        while len(_OVERLAPS) > _MODELS_KEPT:
            _OVERLAPS.popitem(last=False)
    return overlap


@dataclass(eq=False)
class PenetrationModel:
    """Per-character data for the fast penetration loss; build with :meth:`from_character`.

    grids: ``(1, 1 + K, nz, ny, nx)``: channel 0 the rest body's signed distance (metres, negative inside),
        channel ``1 + k`` body bone k's skin-weight field (the weights of the nearest body vertex, renormalised).
    grid: the grid's geometry (origin, cell); its values are ``grids[0, 0]``.
    bones: ``(K,)`` joint indices of the body bones (those leading at least one torso or head vertex).
    limb_index: ``(L,)`` vertex indices of the limb vertices.
    limb_rest: ``(L, 3)`` their rest positions; limb_weights: ``(L, J)`` their dense skin weights.
    num_vertices: all vertices of the character (Pen%'s denominator).
    """

    grids: Tensor
    grid: SDFGrid
    bones: Tensor
    limb_index: Tensor
    limb_rest: Tensor
    limb_weights: Tensor
    num_vertices: int

    @classmethod
    def from_character(cls, character: Character, cell: float | None = None, dtype: torch.dtype = torch.float32,
                       device: torch.device | str | None = None) -> "PenetrationModel":
        """Build the SDF and weight grids from the rest mesh (a second or two for a 10k-triangle character).

        Args:
            cell: grid spacing in metres (default: the body's largest side / 48, at least 1 cm).

        Raises:
            MissingPartsError: no limb or body vertices labelled.
        """
        body, limb = body_and_limb_masks(character)
        capped = capped_body(character)
        rest = torch.as_tensor(character.rest_vertices, dtype=torch.float64)
        verts = capped.vertices(rest)
        lo, hi = rest[torch.as_tensor(body)].amin(0), rest[torch.as_tensor(body)].amax(0)
        if cell is None:
            cell = max(float((hi - lo).max()) / 48, 0.01)
        grid, nearest = build_sdf_grid(verts, capped.faces, cell, margin=3 * cell, box=(lo, hi))

        weights = character.dense_weights(torch.float64)  # (V, J)
        if capped.loops:  # grid points nearest a cap centre take the mean weights of that loop
            weights = torch.cat([weights, capped.centre_matrix(torch.float64) @ weights])
        # The body moves with the bones that lead some body vertex. Arm bones also pull at the armpits, but
        # inverting their share lets a point inside the torso pass for an arm point outside it (the inverse of
        # skinning is not unique where a limb folds against the body), so they are left out.
        body_w = weights[: len(rest)][torch.as_tensor(body)]
        bones = torch.unique(body_w.argmax(1))
        field = weights[nearest][..., bones]  # (nz, ny, nx, K)
        field = (field / field.sum(-1, keepdim=True).clamp_min(1e-9)).permute(3, 0, 1, 2)
        grids = torch.cat([grid.values[None], field])[None].to(dtype=dtype, device=device)
        limb_index = np.nonzero(limb)[0]
        return cls(grids=grids, grid=SDFGrid(grids[0, 0], grid.origin.to(dtype=dtype, device=device), grid.cell),
                   bones=bones.to(device), limb_index=torch.as_tensor(limb_index, device=device),
                   limb_rest=rest[limb_index].to(dtype=dtype, device=device),
                   limb_weights=character.dense_weights(dtype)[limb_index].to(device),
                   num_vertices=len(rest))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "PenetrationModel":
        """The same model on another device / in another floating-point type."""
        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() and dtype is not None else t.dtype)

        grids = move(self.grids)
        return PenetrationModel(grids, SDFGrid(grids[0, 0], move(self.grid.origin), self.grid.cell),
                                move(self.bones), move(self.limb_index), move(self.limb_rest),
                                move(self.limb_weights), self.num_vertices)

    def limb_vertices(self, transforms: Tensor) -> Tensor:
        """``(..., L, 3)`` posed limb vertices from skinning ``transforms (..., J, 3, 4)``."""
        return linear_blend_skinning(self.limb_rest, self.limb_weights, transforms)

    def body_sdf(self, points: Tensor, transforms: Tensor, iterations: int = 2, exact_grad: bool = True) -> Tensor:
        """Signed distance ``(..., N)`` of posed ``points (..., N, 3)`` to the posed body (negative inside).

        The point is carried back to the rest pose by inverting linear blend skinning: with the body bones'
        transforms ``T_k``, find ``y`` with ``x = Σ_k w_k(y) T_k y``, where ``w(y)`` is the gridded weight
        field, by fixed-point iteration from equal weights (``iterations`` rounds after the first guess; two
        reach a few millimetres on the body surface), then sample the rest SDF at ``y``.

        Args:
            points: ``(..., N, 3)`` world points, one set per pose.
            transforms: ``(..., J, 3, 4)`` the poses' skinning transforms (:func:`core.kinematics.skinning_transforms`).
            exact_grad: differentiate through the weights too; False treats the final weights as constants
                (the gradient then ignores how the blend itself shifts, a second-order effect, and the weight
                lookups need no backward pass: what the optimiser uses).
        """
        batch, N = points.shape[:-2], points.shape[-2]
        tb = transforms[..., self.bones, :, :].flatten(-2).reshape(-1, len(self.bones), 12)  # (B, K, 12)
        return self.sdf_per_pose(points.reshape(-1, N, 3), tb, iterations, exact_grad)[0].reshape(batch + (N,))

    def sdf_per_pose(self, x: Tensor, bone_transforms: Tensor, iterations: int = 2, exact_grad: bool = True,
                     weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Signed distance ``(B, N)`` of points ``x (B, N, 3)``, the points of pose b moved by its body-bone
        transforms ``bone_transforms[b] (K, 12)``; and the final blend weights ``(B, N, K)`` (see :meth:`sdf_at`).
        """
        return self._invert_and_sample(x, lambda w: w @ bone_transforms, iterations, exact_grad, weights)

    def sdf_at(self, x: Tensor, bone_transforms: Tensor, iterations: int = 2, exact_grad: bool = True,
               weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Signed distance ``(P,)`` of points ``x (P, 3)``, each with its own body-bone transforms
        ``(P, K, 12)`` (row-major 3x4, bones in :attr:`bones` order); see :meth:`body_sdf`.

        Also returns the blend weights ``(P, K)`` the inversion ended with: passed back in as ``weights`` for
        nearby points (the same vertex one optimiser step later), they resume the fixed-point iteration where
        it stopped, so a few rounds per step add up to many (armpits, where the bones' shares change fast,
        need them).
        """
        # An elementwise product and sum: torch turns the einsum into P tiny matrix products, far slower.
        return self._invert_and_sample(x, lambda w: (w[..., None] * bone_transforms).sum(-2), iterations, exact_grad,
                                       weights)

    def _invert_and_sample(self, x: Tensor, blend, iterations: int, exact_grad: bool,
                           weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """SDF at points ``x (..., 3)`` and the final weights; ``blend(w (..., K)) -> (..., 12)`` mixes the
        bones' transforms; ``weights`` (default: equal) starts the iteration."""
        K = len(self.bones)
        grids = self.grids.to(x.dtype)
        w = x.new_full(x.shape[:-1] + (K,), 1.0 / K) if weights is None else weights.to(x.dtype)

        def rest_point(w: Tensor) -> Tensor:
            m = blend(w).unflatten(-1, (3, 4))
            return _solve3(m[..., :3], x - m[..., 3])

        with torch.set_grad_enabled(exact_grad and torch.is_grad_enabled()):
            for _ in range(iterations):
                y = rest_point(w)
                field = sample_grid(grids[:, 1:], to_grid_coords(y.reshape(1, -1, 3), self.grid))[0]  # (K, P)
                # A little of every bone keeps the blend invertible where the fields fade (outside the grid).
                w = field.T.reshape(x.shape[:-1] + (K,)) + 1e-3
                w = w / w.sum(-1, keepdim=True)
        y = rest_point(w)
        phi = sample_grid(grids[:, :1], to_grid_coords(y.reshape(1, -1, 3), self.grid))[0, 0].reshape(x.shape[:-1])
        return phi, w

    def limb_sdf(self, transforms: Tensor, iterations: int = 2, exact_grad: bool = True) -> Tensor:
        """``(..., L)`` signed distance of every limb vertex to the posed body."""
        return self.body_sdf(self.limb_vertices(transforms), transforms, iterations, exact_grad)


_MODELS: "OrderedDict[tuple, PenetrationModel]" = OrderedDict()
_OVERLAPS: "OrderedDict[str, np.ndarray]" = OrderedDict()
_MODELS_LOCK = threading.Lock()
_MODELS_KEPT = 4


def _fingerprint(character: Character) -> str:
    """A digest of everything :meth:`PenetrationModel.from_character` reads (two uploads of one name may differ)."""
    h = hashlib.blake2b(digest_size=16)
    for a in (character.rest_vertices, character.faces, character.parts, character.skin_indices,
              character.skin_weights):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def penetration_model(character: Character, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> PenetrationModel:
    """:meth:`PenetrationModel.from_character`, kept for the last few characters by content: the grid takes a
    second or two to build, and a server animates the same characters job after job (a job also builds it on
    the second core while the video's pose is being estimated).

    Raises:
        MissingPartsError: no limb or body vertices labelled.
    """
    key = (_fingerprint(character), dtype, str(torch.device(device or "cpu")))
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    model = PenetrationModel.from_character(character, dtype=dtype, device=device)
    with _MODELS_LOCK:
        _MODELS[key] = model
        while len(_MODELS) > _MODELS_KEPT:
            _MODELS.popitem(last=False)
    return model


def _solve3(m: Tensor, b: Tensor) -> Tensor:
    """``(P, 3)`` solutions of ``m (P, 3, 3) @ y = b (P, 3)`` by Cramer's rule (far cheaper than a batched LU
    for 3x3 systems, and differentiable)."""
    c0, c1, c2 = m[..., 0], m[..., 1], m[..., 2]
    r0, r1, r2 = torch.linalg.cross(c1, c2, dim=-1), torch.linalg.cross(c2, c0, dim=-1), torch.linalg.cross(c0, c1, dim=-1)
    det = (c0 * r0).sum(-1, keepdim=True)
    return torch.cat([(b * r0).sum(-1, keepdim=True), (b * r1).sum(-1, keepdim=True),
                      (b * r2).sum(-1, keepdim=True)], dim=-1) / det
