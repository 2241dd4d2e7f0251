"""Motion-quality metrics of DESIGN §5: the numbers every stage, the app and the benchmarks report, measured one way.

* jitter: mean joint acceleration, m/s² (:func:`jitter`);
* foot skate: mean horizontal foot-joint speed while planted, m/s (:func:`foot_skate`);
* JDM error: L1 of row-normalised joint distance matrices, per row, averaged (:func:`jdm_error`);
* Pen%: limb vertices inside the posed torso+head / all vertices × 100 (:func:`penetration_percent`, paper
  Eq. 13), by an exact inside test (:func:`~core.geometry.mesh.ray_inside`: inside any closed shell, as a
  winding number counts; not parity, which calls overlapping shells outside), never with stage II's SDF grid;
* contacts kept: share of the source's hand contacts (hand–body, hand–hand) the result keeps
  (:func:`source_contacts` for a bare skeleton, :func:`mesh_contacts` for a character);
* FID: the Fréchet distance between two sets of semantic embeddings (:func:`frechet_distance`, paper Eq. 15);
* :func:`measure_clip`: all of them for a retargeted clip against its source (:class:`ClipMetrics`).

Conventions: positions are ``(T, J, 3)`` in metres, Y up; the foot, JDM and contact metrics take canonical
22-joint positions (:func:`canonical_positions`), so rigs with different joints compare. The losses that
optimise some of these live with their optimisers (core/retarget/losses.py, core/optimize/terms.py); the
geometry they stand on (SDF, inside tests) in core/geometry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .character import Character
from .geometry.mesh import ray_inside, submesh_faces
from .geometry.penetration import MissingPartsError, body_and_limb_masks, capped_body
from .geometry.sdf import mesh_distance
from .motion import FOOT_JOINTS, Motion, _canonical_tracks
from .retarget.losses import normalized_jdm
from .semantics.skeletal import (FigureProxy, character_proxy, contact_tolerance, hand_vertex_samples,
                                 skeletal_features, source_proxy)
from .skeleton import CANONICAL_JOINTS, map_to_canonical

__all__ = ["acceleration", "jitter", "foot_contacts", "foot_skate", "jdm_error", "canonical_positions", "PenStats",
           "spread_frames", "affordable_mesh_frames", "sampling_error", "penetration_percent", "source_contacts", "mesh_contacts", "SourceClip", "ClipMetrics",
           "measure_clip", "rotation_change", "RotationChange", "hand_distance_error",
           "frechet_distance"]

_FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


def acceleration(positions, fps: float):
    """``(T - 2, J, 3)`` joint accelerations (second differences × fps²) of ``(T, J, 3)`` positions, in their
    units per s². Works on numpy arrays and on tensors (differentiably: the optimiser's jitter terms use it)."""
    return (positions[2:] - 2 * positions[1:-1] + positions[:-2]) * (fps * fps)


def jitter(positions: np.ndarray, fps: float) -> float:
    """Mean joint acceleration magnitude, m/s² (NaN joints, e.g. undetected landmarks, are skipped)."""
    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    return float(np.nanmean(np.linalg.norm(acceleration(p, fps), axis=-1)))


def foot_contacts(positions: np.ndarray, height: float, threshold: float = 0.03) -> np.ndarray:
    """``(T, 4)`` foot joints (LeftFoot, LeftToeBase, RightFoot, RightToeBase) within ``threshold`` × height of
    the clip's lowest foot-joint height."""
    feet_y = np.asarray(positions)[:, _FEET, 1]
    return feet_y < feet_y.min() + threshold * height


def foot_skate(positions: np.ndarray, fps: float, contacts: np.ndarray | None = None, height: float = 1.0) -> float:
    """Mean horizontal foot-joint speed over frame pairs in contact, m/s.

    ``contacts (T, 4)`` defaults to :func:`foot_contacts` of the positions themselves; pass the source's to
    measure how much a result slides where the source's feet were planted.
    """
    p = np.asarray(positions, dtype=np.float64)
    contacts = foot_contacts(p, height) if contacts is None else contacts
    speed = np.linalg.norm(np.diff(p[:, _FEET][..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 4)
    both = contacts[1:] & contacts[:-1]
    return float(speed[both].mean()) if both.any() else 0.0


def jdm_error(positions_a: Tensor, positions_b: Tensor) -> Tensor:
    """JDM error: L1 of each row of ``η(D_A) − η(D_B)``, averaged over rows and frames (a scalar tensor).

    ``positions (..., J, 3)``; ``η`` divides each row of the joint distance matrix by its L1 norm, so bone
    lengths cancel to some extent (paper Eq. 6). Mixamo's own versions of one motion on different characters
    score 0.06-0.14.
    """
    return (normalized_jdm(positions_a) - normalized_jdm(positions_b)).abs().sum(-1).mean()


def canonical_positions(motion: Motion, dtype: torch.dtype = torch.float64) -> Tensor:
    """``(T, 22, 3)`` canonical joint positions of a motion on any mappable rig (synthesised joints midway)."""
    return _canonical_tracks(motion.fk(dtype).positions, map_to_canonical(motion.skeleton).indices)


# ----------------------------------------------------------------------------------------------------------
# Pen%
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PenStats:
    """Pen% of a clip. per_frame: ``(N,)`` percentages; mean: their mean; frames: ``(N,)`` the frames measured."""

    per_frame: np.ndarray
    frames: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.per_frame.mean()) if len(self.per_frame) else 0.0


# Limb vertices × frames one Pen% measurement may test (about a second on this CPU); vertices × frames posed at
# once by the mesh metrics (about 0.15 GB of float64 blends), and body triangles × frames ray-tested at once (about
# 0.2 GB of coefficients and bins): a million-vertex character goes a frame at a time.
MESH_POINT_FRAMES = 400_000
MESH_CHUNK_VERTICES = 1_500_000
MESH_CHUNK_TRIANGLES = 500_000


def _frames_at_once(character: Character, faces: int, most: int) -> int:
    """Frames the mesh metrics pose and ray-test in one batch (see the budgets above)."""
    return max(1, min(most, MESH_CHUNK_VERTICES // len(character.rest_vertices), MESH_CHUNK_TRIANGLES // max(faces, 1)))


def affordable_mesh_frames(character: Character, most: int = 120, least: int = 24,
                           budget: int = MESH_POINT_FRAMES) -> int:
    """How many frames Pen% and contacts can be measured on for ``character`` within ``budget`` limb vertices ×
    frames, kept within [least, most]. The exact inside test costs about that product: a 1300-limb-vertex
    built-in character gets ``most``, X Bot's 16.6k limb vertices get 24 (5.5 s → about 1 s a measurement)."""
    limb = int(character.limb_mask.sum())
    return int(min(most, max(least, budget // max(limb, 1))))


def sampling_error(per_frame: np.ndarray, num_frames: int) -> float:
    """Standard error of a clip's mean estimated from ``per_frame`` values on evenly spread frames of
    ``num_frames`` (finite-population corrected: 0 when every frame was measured)."""
    n = len(per_frame)
    if n < 2 or n >= num_frames:
        return 0.0
    return float(np.std(per_frame, ddof=1) / np.sqrt(n) * np.sqrt(1 - n / num_frames))


def spread_frames(num_frames: int, count: int | None) -> np.ndarray:
    """``(N,)`` at most ``count`` frame indices spread evenly over ``num_frames`` (all when None)."""
    if count is None or count >= num_frames:
        return np.arange(num_frames)
    return np.unique(np.linspace(0, num_frames - 1, count).round().astype(np.int64))


def _frames_of(motion: Motion, frames: np.ndarray) -> Motion:
    return Motion(motion.skeleton, motion.rotations[frames], motion.root_positions[frames], motion.fps)


def penetration_percent(character: Character, motion: Motion, max_frames: int | None = None,
                        chunk: int = 64, check: Callable[[], None] | None = None) -> PenStats:
    """Exact Pen% (paper Eq. 13): limb vertices inside the posed torso+head / all vertices × 100, per frame.

    Args:
        max_frames: measure at most this many evenly spaced frames (all when None).
        chunk: frames per batch (bounds memory).
        check: called before each batch; whatever it raises (a cancelled job) stops the measurement.

    Raises:
        MissingPartsError: the character has no limb or body labels.
    """
    _, limb = body_and_limb_masks(character)
    capped = capped_body(character)
    faces = torch.as_tensor(capped.faces)
    frames = spread_frames(motion.num_frames, max_frames)
    chunk = _frames_at_once(character, len(capped.faces), chunk)
    limb_t = torch.as_tensor(limb)
    counts = []
    with torch.no_grad():
        for s in range(0, len(frames), chunk):
            if check is not None:
                check()
            verts = character.posed_vertices(_frames_of(motion, frames[s:s + chunk]), torch.float64)
            inside = ray_inside(verts[:, limb_t], capped.vertices(verts), faces)
            counts.append(inside.sum(1))
    per_frame = torch.cat(counts).double().numpy() / len(character.rest_vertices) * 100
    return PenStats(per_frame, frames)


# ----------------------------------------------------------------------------------------------------------
# Hand contacts
# ----------------------------------------------------------------------------------------------------------

def source_contacts(positions: Tensor, proxy: FigureProxy) -> np.ndarray:
    """``(T, 3)`` hard contacts (left hand–body, right hand–body, hands) of a bare skeleton's ``(T, 22, 3)``
    canonical positions: its capsule proxy's surfaces within the contact tolerance."""
    return (skeletal_features(positions, proxy).gaps < contact_tolerance(proxy.height)).numpy()


def _within(points: Tensor, vertices: Tensor, faces: np.ndarray, tol: float, reach: float) -> bool:
    """Whether any of ``points (N, 3)`` is within ``tol`` of the mesh's surface. Only the faces with a corner in the
    points' box grown by ``reach`` (tol + the longest edge) can hold such a surface point, so only those are
    searched: on a million-vertex body the whole mesh took seconds a frame."""
    lo, hi = points.amin(0) - reach, points.amax(0) + reach
    close = ((vertices >= lo) & (vertices <= hi)).all(-1).numpy()
    faces = faces[close[faces].any(1)]
    return bool(len(faces)) and bool(mesh_distance(points, vertices, faces)[0].min() < tol)


def mesh_contacts(character: Character, motion: Motion, positions: Tensor | None = None,
                  chunk: int = 32, check: Callable[[], None] | None = None) -> np.ndarray:
    """``(T, 3)`` hard contacts of a character's motion: each hand's mesh with its torso+head mesh, and the hands.

    A hand touches the body when one of its vertices (an even spread of 48) is within the contact tolerance of
    the body's surface or inside the body (:func:`ray_inside`); the hands touch when their spheres do (see
    :mod:`core.semantics.skeletal`). Distances are to the surface, not to its vertices: on coarse meshes (the
    R2ET shapes' body triangles reach 10-20 cm) a hand lying on a big triangle is far from all its corners.

    Args:
        positions: the motion's ``(T, 22, 3)`` canonical positions when the caller has them already.
        check: called before each batch of frames and hand; whatever it raises stops the measurement.
    """
    proxy = character_proxy(character)
    tol = contact_tolerance(proxy.height)
    if positions is None:
        positions = canonical_positions(motion)
    gaps = skeletal_features(positions, proxy).gaps.numpy()
    try:
        body, _ = body_and_limb_masks(character)
    except MissingPartsError:
        return gaps < tol  # no labels: the capsule proxy decides
    capped = capped_body(character)
    faces = torch.as_tensor(capped.faces)
    body_faces = submesh_faces(character.faces, body)
    corners = character.rest_vertices[body_faces]
    # A point within tol of the surface is within tol + (longest edge) of one of the triangle's corners.
    reach = tol + float(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=-1).max())
    body_idx = torch.as_tensor(np.nonzero(body)[0])
    samples = [torch.as_tensor(h) for h in hand_vertex_samples(character, per_hand=48)]
    chunk = _frames_at_once(character, len(capped.faces), chunk)
    with torch.no_grad():
        for s in range(0, motion.num_frames, chunk):
            verts = character.posed_vertices(motion.slice(s, s + chunk), torch.float64)
            closed = capped.vertices(verts)
            for k, h in enumerate(samples):
                if not len(h):
                    continue
                if check is not None:
                    check()
                # In blocks of body vertices: a million-vertex body against 48 hand points in one go took a GB.
                corner = torch.stack([torch.cdist(verts[:, h], verts[:, b]).amin((1, 2))
                                      for b in body_idx.split(65536)]).amin(0)
                near = corner < tol
                for t in torch.nonzero(~near & (corner < reach))[:, 0].tolist():
                    near[t] = _within(verts[t, h], verts[t], body_faces, tol, reach)
                inside = ray_inside(verts[:, h], closed, faces).any(1)
                gaps[s:s + chunk, k] = np.where((near | inside).numpy(), -1.0, np.inf)
    return gaps < tol


# ----------------------------------------------------------------------------------------------------------
# How much a correction turns the joints a viewer reads (hands, head)
# ----------------------------------------------------------------------------------------------------------

# (child, reference) canonical joint pairs: the hand is read against its forearm (wrist bend and twist), the head
# against the chest (neck and head together: what a viewer sees as "the head turned").
ROTATION_PAIRS = {"LeftHand": ("LeftHand", "LeftForeArm"), "RightHand": ("RightHand", "RightForeArm"),
                  "Head": ("Head", "Spine2"), "Chest": ("Spine2", "Hips")}


def _relative_rotations(motion: Motion, pairs: dict[str, tuple[str, str]]) -> dict[str, Tensor]:
    """``{name: (T, 3, 3)}`` world rotation of each pair's child expressed in its reference joint's frame."""
    R = motion.fk(torch.float64).rotations
    idx = map_to_canonical(motion.skeleton).indices
    out = {}
    for name, (child, ref) in pairs.items():
        c, r = idx[CANONICAL_JOINTS.index(child)], idx[CANONICAL_JOINTS.index(ref)]
        if c >= 0 and r >= 0:
            out[name] = R[:, r].transpose(-1, -2) @ R[:, c]
    return out


def _angle_deg(R: Tensor) -> Tensor:
    """``(...)`` rotation angles in degrees of ``(..., 3, 3)`` rotation matrices (trace formula, clamped)."""
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cos))


@dataclass(frozen=True)
class RotationChange:
    """How far a result's hands and head turned from a reference motion on the same skeleton, degrees.

    hand_mean, hand_p95: mean and 95th percentile over frames and both hands of the angle between the hand's
    rotation relative to its forearm in the two motions; head_mean: the same for the head relative to the chest;
    trunk_mean: for the chest relative to the hips (the spine bending or turning).
    """

    hand_mean: float
    hand_p95: float
    head_mean: float
    trunk_mean: float = float("nan")


def rotation_change(reference: Motion, result: Motion) -> RotationChange:
    """:class:`RotationChange` of ``result`` against ``reference`` (e.g. the retargeted start; same skeleton and
    length). NaN for a part the rig lacks."""
    a, b = _relative_rotations(reference, ROTATION_PAIRS), _relative_rotations(result, ROTATION_PAIRS)
    angle = {k: _angle_deg(a[k].transpose(-1, -2) @ b[k]) for k in a}
    hands = [angle[k] for k in ("LeftHand", "RightHand") if k in angle]
    hand = torch.cat(hands) if hands else torch.zeros(0, dtype=torch.float64)
    nan = float("nan")
    return RotationChange(float(hand.mean()) if len(hand) else nan,
                          float(torch.quantile(hand, 0.95)) if len(hand) else nan,
                          float(angle["Head"].mean()) if "Head" in angle else nan,
                          float(angle["Chest"].mean()) if "Chest" in angle else nan)


_HANDS = [CANONICAL_JOINTS.index(n) for n in ("LeftHand", "RightHand")]


def hand_distance_error(source: Tensor, source_height: float, result: Tensor, result_height: float) -> float:
    """Mean over frames of ``| |l − r|_result / h_result − |l − r|_source / h_source |``: how far the two hands'
    wrist-to-wrist distance, as a share of each figure's height, strays from the source's.
    source, result: ``(T, 22, 3)`` canonical positions, metres."""
    def share(p: Tensor, h: float) -> Tensor:
        return (p[:, _HANDS[0]] - p[:, _HANDS[1]]).norm(dim=-1) / h
    return float((share(result, result_height) - share(source, source_height)).abs().mean())


# ----------------------------------------------------------------------------------------------------------
# A clip against its source
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SourceClip:
    """A source motion with what every measurement against it needs, computed once (:meth:`of`).

    motion: the source (any mappable rig). positions: ``(T, 22, 3)`` its canonical joint positions, float64.
    proxy: its human-proportioned capsule body (:func:`~core.semantics.skeletal.source_proxy`).
    contacts: ``(T, 3)`` its hard hand contacts (:func:`source_contacts`).
    """

    motion: Motion
    positions: Tensor
    proxy: FigureProxy
    contacts: np.ndarray

    @classmethod
    def of(cls, motion: Motion) -> "SourceClip":
        positions, proxy = canonical_positions(motion), source_proxy(motion)
        return cls(motion, positions, proxy, source_contacts(positions, proxy))

    def every(self, step: int) -> "SourceClip":
        """Frames ``0, step, 2·step, …``; each one's contacts are those of any frame within ``step // 2`` of it.

        Why: a clap or a touch can last fewer frames than the step. Mixamo's hip-hop clip at 60 fps, looked at
        every 6th frame, holds its hands together on frames 181-190, of which the loss saw only 186; the hands
        came apart on either side of it (Mousey kept 3 of its 5 measured contact frames, Copy all 5).
        """
        if step == 1:
            return self
        from scipy.ndimage import maximum_filter1d

        near = maximum_filter1d(self.contacts, 2 * (step // 2) + 1, axis=0, mode="constant", cval=False)
        return SourceClip(self.motion.every(step), self.positions[::step], self.proxy, near[::step])


@dataclass(frozen=True)
class ClipMetrics:
    """Quality of a retargeted clip (DESIGN §5).

    pen_percent: exact Pen%, limb vertices inside the body / all vertices × 100, mean over frames.
    jdm_error: L1 of row-normalised joint distance matrices of source and result, averaged over rows and frames.
    contacts_kept: share of the source's hand contacts (hand–body, hand–hand frames) the result keeps
        (NaN when the source has none).
    jitter: mean joint acceleration, m/s². foot_skate: mean horizontal foot-joint speed while in contact, m/s.
    hand_distance: :func:`hand_distance_error` against the source (share of height).
    pen_frames, pen_per_frame: ``(N,)`` the frames Pen% was measured on and its value there (empty when the
        character has no part labels).
    """

    pen_percent: float
    jdm_error: float
    contacts_kept: float
    jitter: float
    foot_skate: float
    hand_distance: float = float("nan")
    pen_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False, repr=False)
    pen_per_frame: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False, repr=False)

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("pen_percent", "jdm_error", "contacts_kept", "jitter", "foot_skate",
                                             "hand_distance")}


def measure_clip(source: Motion | SourceClip, result: Motion, character: Character,
                 max_mesh_frames: int | None = None, check: Callable[[], None] | None = None) -> ClipMetrics:
    """Metrics of ``result`` (on ``character``) against its ``source``, see :class:`ClipMetrics`.

    ``source`` is the motion that was retargeted (any mappable rig), or its :class:`SourceClip` when the
    caller measures several results against it. Source contacts come from the skeletal capsule proxy (a bare
    skeleton has no mesh), the result's from its mesh (:func:`mesh_contacts`). The mesh metrics (Pen% and
    contacts, the costly ones) use at most ``max_mesh_frames`` evenly spaced frames; the others use all.
    ``check()`` is called between the mesh metrics' batches: whatever it raises (a cancelled job) stops it.

    Raises:
        ValueError: source and result differ in length.
    """
    src = source if isinstance(source, SourceClip) else SourceClip.of(source)
    res = canonical_positions(result)
    if src.positions.shape != res.shape:
        raise ValueError(f"source and result differ in length: {src.positions.shape[0]} vs {res.shape[0]} frames")
    try:
        pen = penetration_percent(character, result, max_frames=max_mesh_frames, check=check)
        pen_percent, pen_frames, pen_per_frame = pen.mean, pen.frames, pen.per_frame
    except MissingPartsError:
        pen_percent, pen_frames, pen_per_frame = float("nan"), np.zeros(0, dtype=np.int64), np.zeros(0)
    frames = spread_frames(result.num_frames, max_mesh_frames)
    frames = frames[src.contacts[frames].any(-1)]  # the result's contacts count only where the source has one
    kept = float("nan")
    if len(frames):
        src_contacts = src.contacts[frames]
        contacts = mesh_contacts(character, _frames_of(result, frames), res[frames], check=check)
        kept = float(contacts[src_contacts].mean())
    p = res.numpy()
    return ClipMetrics(pen_percent=pen_percent, jdm_error=float(jdm_error(src.positions, res)), contacts_kept=kept,
                       jitter=jitter(p, result.fps), foot_skate=foot_skate(p, result.fps, height=character.height),
                       hand_distance=hand_distance_error(src.positions, src.proxy.height, res, character.height),
                       pen_frames=pen_frames, pen_per_frame=pen_per_frame)


# ----------------------------------------------------------------------------------------------------------
# Semantic embeddings
# ----------------------------------------------------------------------------------------------------------

def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance (paper Eq. 15, "FID") between Gaussians fitted to ``(N, D)`` and ``(M, D)`` embeddings:
    ``||μa − μb||² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½)``, sample covariances (N − 1, M − 1).

    Exact without a D × D matrix square root: with centred ``A``, ``B``, ``Σa = AᵀA / (N − 1)`` and
    ``Σb = BᵀB / (M − 1)``, so the eigenvalues of ``Σa^½ Σb Σa^½`` are those of ``Σa Σb``, the squared singular
    values of ``A Bᵀ / √((N − 1)(M − 1))``: the trace of the root is their sum (an N × M problem; VLM embeddings
    have thousands of dimensions and a clip gives tens of samples).

    Raises:
        ValueError: not two 2-D arrays of the same width, or fewer than 2 samples in either.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings must be (N, D) and (M, D), got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"the Fréchet distance needs at least 2 samples on each side, got {len(a)} and {len(b)}")
    A, B = a - a.mean(0), b - b.mean(0)
    na, nb = len(a) - 1, len(b) - 1
    cross = np.linalg.svd(A @ B.T, compute_uv=False).sum() / math.sqrt(na * nb)
    mean = float(((a.mean(0) - b.mean(0)) ** 2).sum())
    return float(max(mean + (A * A).sum() / na + (B * B).sum() / nb - 2 * cross, 0.0))
