"""Stage II of SMT for one clip: refine a retargeted motion so it keeps the source's meaning and the arms stay
out of the body.

Adam on the target's local joint rotations (6D, Zhou et al. 2019), starting from any retargeter's output
(``core.retarget.copy.copy_retarget``, the graph network, ...), minimising, averaged over frames,

    λ_sem · ||E_source − E_target||²                    semantic consistency (paper Eq. 10), λ_sem = 0.1
  + λ_pen(i) · Σ_limb ReLU(m − Φ_body(v)) / height       penetration (paper Eq. 11), λ_pen = 1 ramped to 10
  + Σ_joints c_j ||r6_j − r6_j⁰||²                      stay close to the start (arm joints move more freely)
  + w_smooth · ||Δ²_t (p − p⁰)||² (fps² / height)²       no jitter: the acceleration the correction adds
  + w_jitter · ReLU(|Δ²_t p| − |Δ²_t p⁰|) fps² / height  ... and no joint accelerating harder than it did
  + w_contact · ReLU(gap − tol / 2)² / (0.01 height)²    sunk hand contacts come out to the surface, no further
  + w_foot · ||feet − feet⁰||² / height² on contacts     no foot skate (matters only when legs are free)

E is the supervisor's embedding (skeletal by default; BLIP-2 or CLIP on soft renders from the front, left and
right when weights are given, see ``core.semantics``), Φ the body's signed distance
(``core.geometry.penetration``), m a margin of 0.3 % of the height that covers Φ's grid approximation.

Choices the paper leaves open, and why:
- The 6D angles move by a correction that is a cubic B-spline in time (knots every 0.25 s): Adam moves every
  parameter by about its step size whatever its gradient, which per-frame parameters turn into jitter.
- λ_pen ramps from 1 to 10 over the first 30 % of the steps as in the paper, but then stays at 10 (the paper
  returns to 1): back at 1, the semantic and stay-close terms pulled hands back into bulky bodies (Pen% after
  rose from 0.1-0.3 to 0.5-1.8 % on the bench's bow clip).
- The trunk's stay-close weight is 1 (arms 0.05): at 2 the spine could not lean out of the way, and on the
  bench's huge-headed Mousey the JDM error rose (+0.0018) where at 1 it falls (−0.0050), other characters alike.
- Two terms keep what the paper's losses do not see. Jitter: the squared smoothness term lets small added
  accelerations through, and on slow clips (a bow, a dance at 0.1 m/s²) those are much of the clip's jitter
  (bench, pooled over 5 clips: +0.14 % on Sporty_Granny, +0.19 % on Mousey); a hinge on each joint's
  acceleration magnitude rising above the start's is L1-like and stops most of them (pooled −0.3 to −0.6 %;
  the slowest clip, Granny's dance, still gains about 5 %, 0.006 m/s²). Contacts: where the source's hand
  touches the body or the other hand and the retargeter sank it in (Mousey's fist inside the huge head), the
  penetration term alone pushed it 4-5 cm out, past the contact tolerance (3 % of the height); the hinge holds
  such hands within half the tolerance of the surface. It acts only on sunk contacts: pulling every source
  contact onto the mesh made the slim characters' fingers cut into the belly (Pen% 0.003 → 0.03).
- Only the upper body moves by default (spine, neck, head, shoulders, arms, hands): hips, legs and the root path
  stay exactly as the retargeter made them, so foot contact and skate are untouched; ``free_joints="all"``
  frees everything, and the foot term then keeps planted feet within a few millimetres.
- Penetration uses at most 384 limb vertices spread evenly over the arms, and only those within 3 % of the
  height of the body (re-selected every 10 steps): this is what makes 300 frames take seconds on a CPU.
It stops early once the loss has stopped improving for 30 steps after the ramp and returns the best step (with
15, Adam's wobble just after the ramp ended Granny's dance at 53 steps with Pen% 0.46 → 0.33 instead of 0.08).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .character import Character
from .geometry.penetration import MissingPartsError, PenetrationModel, penetration_percent, spread_frames
from .kinematics import forward_kinematics, skinning_transforms
from .metrics import acceleration, foot_skate, jitter
from .motion import FOOT_JOINTS, Motion, _canonical_tracks, canonical_rest
from .retarget.losses import jdm_error
from .rotations import matrix_to_quat, matrix_to_rot6d, quat_make_continuous, quat_to_matrix, rot6d_to_matrix
from .semantics.skeletal import FigureProxy, SkeletalEncoder, contact_tolerance, hand_points, skeletal_features
from .skeleton import CANONICAL_JOINTS, map_to_canonical

__all__ = ["OptimizeConfig", "ClipMetrics", "OptimizeResult", "optimize_motion", "measure_clip", "UPPER_BODY"]

Progress = Callable[[float, str], None]

UPPER_BODY: tuple[str, ...] = ("Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm",
                               "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand")
_ARM_JOINTS = {"LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
               "RightShoulder", "RightArm", "RightForeArm", "RightHand"}
_FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


def _no_progress(fraction: float, stage: str) -> None:
    pass


@dataclass
class OptimizeConfig:
    """Weights and schedule of the per-clip optimisation (see the module docstring).

    lambda_sem, lambda_pen: the paper's λ_s and λ_p (0.1, 1). pen_peak: λ_pen is ramped from lambda_pen to this
    over the first ``ramp`` fraction of the iterations, then held. pen_margin: limb vertices are pushed this far
    out of the body, in figure heights (covers the grid's approximation). stay_close / stay_close_arm: weight
    of the 6D distance to the start for trunk and arm joints. smooth: weight of the correction's second
    difference in time. jitter: weight of the hinge on each joint's acceleration magnitude rising above the
    start's. contact: weight that keeps sunk hand contacts within ``contact_slack`` × the contact tolerance of
    the surface. foot: weight of the foot joints' displacement on contact frames.
    iterations: the most Adam steps; lr: Adam's step size on the correction's spline controls (6D entries).
    knot_seconds: spacing of the correction's B-spline knots in time. patience / tolerance: stop when the
    loss improved by less than ``tolerance`` (relative) over the last ``patience`` steps (after the ramp).
    free_joints: "upper" or "all". refresh: steps between re-selecting which limb vertices are near the body.
    max_limb_vertices: the loss uses at most this many limb vertices, spread evenly (Pen% counts them all).
    frames_per_step: frames rendered per step by image supervisors (the paper's batch of 4).
    threads: torch's intra-op threads during the call (restored after; None leaves them alone). One is the
    default because the tensors are small: with two threads on a shared 2-core machine every operation waits
    for the other thread to be scheduled (measured: 8 ms instead of 10 µs for a 75k-element product).
    """

    lambda_sem: float = 0.1
    lambda_pen: float = 1.0
    pen_peak: float = 10.0
    pen_final: float = 10.0
    ramp: float = 0.3
    pen_margin: float = 0.003
    stay_close: float = 1.0
    stay_close_arm: float = 0.05
    smooth: float = 5.0
    jitter: float = 1.0
    contact: float = 0.5
    contact_slack: float = 0.5
    foot: float = 1e4
    iterations: int = 120
    lr: float = 0.02
    knot_seconds: float = 0.25
    patience: int = 30
    tolerance: float = 2e-3
    free_joints: str = "upper"
    refresh: int = 10
    max_limb_vertices: int = 384
    frames_per_step: int = 4
    threads: int | None = 1
    skeletal_weights: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ClipMetrics:
    """Quality of a retargeted clip (DESIGN §5).

    pen_percent: exact Pen%, limb vertices inside the body / all vertices × 100, mean over frames.
    jdm_error: L1 of row-normalised joint distance matrices of source and result, averaged over rows and frames.
    contacts_kept: share of the source's hand contacts (hand–body, hand–hand frames) the result keeps
        (NaN when the source has none).
    jitter: mean joint acceleration, m/s². foot_skate: mean horizontal foot-joint speed while in contact, m/s.
    pen_frames, pen_per_frame: ``(N,)`` the frames Pen% was measured on and its value there (empty when the
        character has no part labels).
    """

    pen_percent: float
    jdm_error: float
    contacts_kept: float
    jitter: float
    foot_skate: float
    pen_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False, repr=False)
    pen_per_frame: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False, repr=False)

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("pen_percent", "jdm_error", "contacts_kept", "jitter", "foot_skate")}


@dataclass
class OptimizeResult:
    """What :func:`optimize_motion` returns.

    motion: the refined motion on the character's skeleton. before / after: metrics of the start and of the
    result. supervisor: plain words on the semantic supervisor used. iterations: Adam steps taken.
    seconds: wall time of the optimisation (metrics excluded). history: total loss per step.
    notes: anything the user should know (a term that was skipped and why).
    semantic: the supervisor's distance between source and character, per frame, before and after.
    """

    motion: Motion
    before: ClipMetrics | None
    after: ClipMetrics | None
    supervisor: str
    iterations: int
    seconds: float
    history: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    semantic: SemanticDistance | None = None


@dataclass(frozen=True)
class SemanticDistance:
    """The semantic supervisor's distance ||E_source − E_character||² per frame (the loss's λ_sem term).

    frames: ``(N,)`` frame indices (all frames for the skeletal supervisor, an even spread of at most 8 for
    image supervisors, whose embeddings cost a VLM pass each). before, after: ``(N,)`` distances.
    """

    frames: np.ndarray
    before: np.ndarray
    after: np.ndarray


# ----------------------------------------------------------------------------------------------------------
# Figures: sizes, hands, contacts
# ----------------------------------------------------------------------------------------------------------

def _descendants(parents: tuple[int, ...], root: int) -> list[int]:
    out = [root]
    for j, p in enumerate(parents):
        if p in out:
            out.append(j)
    return out


def farthest_points(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to ``count`` of ``points (N, 3)`` spread evenly over them (farthest-point sampling)."""
    p = torch.as_tensor(points, dtype=torch.float64)
    if count >= len(p):
        return np.arange(len(p))
    chosen = [0]
    d = (p - p[0]).norm(dim=1)
    for _ in range(count - 1):
        i = int(d.argmax())
        chosen.append(i)
        d = torch.minimum(d, (p - p[i]).norm(dim=1))
    return np.sort(np.array(chosen))


def _hand_vertex_samples(character: Character, per_hand: int = 16) -> list[np.ndarray]:
    """Up to ``per_hand`` vertex indices of each hand (vertices whose main bone is the hand or a finger),
    spread evenly over it."""
    sk = character.skeleton
    idx = map_to_canonical(sk).indices
    main = character.skin_indices[np.arange(len(character.skin_indices)), character.skin_weights.argmax(1)]
    out = []
    for side in ("Left", "Right"):
        bones = _descendants(sk.parents, idx[CANONICAL_JOINTS.index(f"{side}Hand")])
        verts = np.nonzero(np.isin(main, bones))[0]
        out.append(verts[farthest_points(character.rest_vertices[verts], per_hand)] if len(verts) else verts)
    return out


def character_proxy(character: Character) -> FigureProxy:
    """The character's own sizes: mesh height; radii measured on the rest mesh around its joints."""
    sk = character.skeleton
    rest = torch.as_tensor(_canonical_tracks(sk.rest_pose().positions, map_to_canonical(sk).indices))
    v = character.rest_vertices
    hands = _hand_vertex_samples(character, per_hand=10_000)
    palm = hand_points(rest).numpy()
    hand_r = [float(np.median(np.linalg.norm(v[h] - palm[k], axis=1))) for k, h in enumerate(hands) if len(h)]
    human = FigureProxy.human(rest.numpy())
    return FigureProxy(character.height, human.torso_radius * character.height / human.height,
                       human.head_radius * character.height / human.height,
                       float(np.mean(hand_r)) if hand_r else human.hand_radius)


def canonical_positions(motion: Motion, dtype: torch.dtype = torch.float64) -> Tensor:
    """``(T, 22, 3)`` canonical joint positions of a motion on any mappable rig (synthesised joints midway)."""
    return _canonical_tracks(motion.fk(dtype).positions, map_to_canonical(motion.skeleton).indices)


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------

def _source_contacts(source_positions: Tensor, proxy: FigureProxy) -> np.ndarray:
    f = skeletal_features(source_positions, proxy)
    return (f.gaps < contact_tolerance(proxy.height)).numpy()


def _mesh_contacts(character: Character, motion: Motion, chunk: int = 32) -> np.ndarray:
    """``(T, 3)`` hard contacts of a character's motion: each hand's mesh with its torso+head mesh, and the hands.

    A hand touches the body when one of its vertices (an even spread of 48) is within the contact tolerance of
    the body's surface or inside the body (ray parity); the hands touch when their spheres do (see
    :mod:`core.semantics.skeletal`). Distances are to the surface, not to its vertices: on coarse meshes (the
    R2ET shapes' body triangles reach 10-20 cm) a hand lying on a big triangle is far from all its corners.
    """
    from .geometry.mesh import ray_parity_inside, submesh_faces
    from .geometry.penetration import body_and_limb_masks, capped_body
    from .geometry.sdf import mesh_distance

    proxy = character_proxy(character)
    tol = contact_tolerance(proxy.height)
    gaps = skeletal_features(canonical_positions(motion), proxy).gaps.numpy()
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
    samples = [torch.as_tensor(h) for h in _hand_vertex_samples(character, per_hand=48)]
    with torch.no_grad():
        for s in range(0, motion.num_frames, chunk):
            part = Motion(motion.skeleton, motion.rotations[s:s + chunk], motion.root_positions[s:s + chunk],
                          motion.fps)
            verts = character.posed_vertices(part, torch.float64)
            closed = capped.vertices(verts)
            for k, h in enumerate(samples):
                if not len(h):
                    continue
                corner = torch.cdist(verts[:, h], verts[:, body_idx]).amin((1, 2))
                near = corner < tol
                for t in torch.nonzero(~near & (corner < reach))[:, 0].tolist():
                    near[t] = bool(mesh_distance(verts[t, h], verts[t], body_faces)[0].min() < tol)
                inside = ray_parity_inside(verts[:, h], closed, faces).any(1)
                gaps[s:s + chunk, k] = np.where((near | inside).numpy(), -1.0, np.inf)
    return gaps < tol


def measure_clip(source: Motion, result: Motion, character: Character,
                 max_mesh_frames: int | None = None) -> ClipMetrics:
    """Metrics of ``result`` (on ``character``) against its ``source`` (any mappable rig), see :class:`ClipMetrics`.

    Source contacts come from the skeletal capsule proxy (a bare skeleton has no mesh), the result's from its
    mesh (:func:`_mesh_contacts`). The mesh metrics (Pen% and contacts, the costly ones) use at most
    ``max_mesh_frames`` evenly spaced frames; the others use all.
    """
    src = canonical_positions(source)
    res = canonical_positions(result)
    if src.shape != res.shape:
        raise ValueError(f"source and result differ in length: {src.shape[0]} vs {res.shape[0]} frames")
    try:
        pen = penetration_percent(character, result, max_frames=max_mesh_frames)
        pen_percent, pen_frames, pen_per_frame = pen.mean, pen.frames, pen.per_frame
    except MissingPartsError:
        pen_percent, pen_frames, pen_per_frame = float("nan"), np.zeros(0, dtype=np.int64), np.zeros(0)
    frames = spread_frames(result.num_frames, max_mesh_frames)
    src_contacts = _source_contacts(src, source_proxy(source))[frames]
    res_contacts = _mesh_contacts(character, Motion(result.skeleton, result.rotations[frames],
                                                    result.root_positions[frames], result.fps))
    kept = float(res_contacts[src_contacts].mean()) if src_contacts.any() else float("nan")
    p = res.numpy()
    return ClipMetrics(pen_percent=pen_percent, jdm_error=float(jdm_error(src, res)), contacts_kept=kept,
                       jitter=jitter(p, result.fps), foot_skate=foot_skate(p, result.fps, height=character.height),
                       pen_frames=pen_frames, pen_per_frame=pen_per_frame)


def source_proxy(source: Motion) -> FigureProxy:
    """Human proportions for a bare source skeleton (its T-pose, whatever the rig's own rest pose is)."""
    return FigureProxy.human(canonical_rest(source.skeleton).rest_positions())


# ----------------------------------------------------------------------------------------------------------
# The optimiser
# ----------------------------------------------------------------------------------------------------------

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


def _pen_weight(config: OptimizeConfig, step: int) -> float:
    ramp_steps = max(1, int(config.ramp * config.iterations))
    if step >= ramp_steps:
        return config.pen_final
    return config.lambda_pen + (config.pen_peak - config.lambda_pen) * step / ramp_steps


def _skin_frames(rest: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """``(T, P, 3)`` linear blend skinning of points ``rest (P, 3)`` with weights ``(P, J)`` by every frame's
    transforms ``(T, J, 12)`` (row-major 3x4)."""
    m = (weights @ transforms).unflatten(-1, (3, 4))
    return (m[..., :3] @ rest[:, :, None])[..., 0] + m[..., 3]


def _skin_each(rest: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """``(P, 3)`` linear blend skinning of points ``rest (P, 3)`` with their top-k weights ``(P, k)``, each by
    its own transforms ``(P, k, 12)`` (of the weights' joints)."""
    m = (weights[..., None] * transforms).sum(-2).unflatten(-1, (3, 4))
    return (m[..., :3] * rest[..., None, :]).sum(-1) + m[..., 3]


def optimize_motion(source: Motion, start: Motion, character: Character, *, supervisor=None,
                    config: OptimizeConfig | None = None, progress: Progress = _no_progress,
                    device: str | torch.device | None = None, measure: bool = True,
                    max_mesh_frames: int | None = None, source_frames=None, source_camera=None) -> OptimizeResult:
    """Refine ``start`` (a motion on ``character``'s skeleton) against ``source``.

    Args:
        source: the motion that was retargeted (any mappable rig), same frames as ``start``.
        start: the retargeter's output on ``character.skeleton``.
        supervisor: a semantic encoder or a :class:`core.semantics.Supervisor`; the skeletal one when None.
        config: weights and schedule (:class:`OptimizeConfig`; its defaults when None).
        progress: called with (fraction in [0, 1], stage name).
        device: "cpu", "cuda", ... (default: CPU).
        measure: compute before/after metrics (a few seconds on long clips).
        max_mesh_frames: measure Pen% and contacts on at most this many evenly spaced frames.
        source_frames: for a video source, its frames ``(T, H, W, 3)`` uint8: image supervisors embed these
            instead of renders of a mannequin. source_camera: the video's camera (a preview ``Camera``).

    Raises:
        ValueError: start is not on the character's skeleton, the clips differ in length, a bad config.

    Out of GPU memory with an image supervisor, it starts again with the skeletal one and says so in notes.
    """
    config = config or OptimizeConfig()
    description = None
    if isinstance(supervisor, tuple) and hasattr(supervisor, "encoder"):  # a core.semantics.Supervisor
        supervisor, description = supervisor.encoder, supervisor.description
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        try:
            return _optimize(source, start, character, supervisor, description, config, progress, device, measure,
                             max_mesh_frames, source_frames, source_camera)
        except torch.cuda.OutOfMemoryError:
            if getattr(supervisor, "kind", None) == "skeleton":
                raise
            torch.cuda.empty_cache()
            result = _optimize(source, start, character, None, None, config, progress, device, measure,
                               max_mesh_frames, None, None)
            result.notes.append(f"out of GPU memory with {description or supervisor}: used the skeletal "
                                "supervisor instead")
            result.supervisor = "skeletal fallback: out of GPU memory with the vision-language model"
            return result
    finally:
        torch.set_num_threads(threads)


def _optimize(source: Motion, start: Motion, character: Character, supervisor, description: str | None,
              config: OptimizeConfig, progress: Progress, device: str | torch.device | None, measure: bool,
              max_mesh_frames: int | None, source_frames, source_camera) -> OptimizeResult:
    """The work of :func:`optimize_motion`."""
    sk = character.skeleton
    if start.skeleton.names != sk.names or not np.allclose(start.skeleton.offsets, sk.offsets, atol=1e-6):
        raise ValueError(f"the start motion is not on character {character.name!r}'s skeleton")
    if source.num_frames != start.num_frames:
        raise ValueError(f"source and start differ in length: {source.num_frames} vs {start.num_frames} frames")
    if config.free_joints not in ("upper", "all"):
        raise ValueError(f"free_joints must be 'upper' or 'all', got {config.free_joints!r}")
    device = torch.device(device or "cpu")
    supervisor = supervisor or SkeletalEncoder(**config.skeletal_weights)
    described = description or getattr(supervisor, "description", None) or f"{supervisor.name} supervisor"
    notes: list[str] = []
    t0 = time.perf_counter()
    progress(0.0, "preparing semantic refinement")

    mapping = map_to_canonical(sk).indices
    wanted = CANONICAL_JOINTS if config.free_joints == "all" else UPPER_BODY
    free = sorted({mapping[CANONICAL_JOINTS.index(n)] for n in wanted} - {-1})
    arm = {mapping[CANONICAL_JOINTS.index(n)] for n in _ARM_JOINTS}
    dtype = torch.float32
    height = character.height
    T = start.num_frames

    try:
        model = PenetrationModel.from_character(character, dtype=dtype, device=device)
    except MissingPartsError as e:
        model = None
        notes.append(f"penetration not corrected: {e}")

    offsets = torch.as_tensor(sk.offsets, dtype=dtype, device=device)
    rest_rot = torch.as_tensor(sk.rest_rotations, dtype=dtype, device=device)
    rest_pose = sk.rest_pose(dtype)
    rest_pose.positions, rest_pose.rotations = rest_pose.positions.to(device), rest_pose.rotations.to(device)
    R0 = quat_to_matrix(torch.as_tensor(start.rotations, dtype=dtype, device=device))  # (T, J, 3, 3)
    root = torch.as_tensor(start.root_positions, dtype=dtype, device=device)
    free_t = torch.as_tensor(free, device=device)
    x0 = matrix_to_rot6d(R0[:, free_t])  # (T, F, 6)
    # The 6D angles move by a smooth correction: cubic B-spline controls every knot_seconds.
    basis = spline_basis(T, config.knot_seconds * start.fps, dtype).to(device)  # (T, K)
    controls = torch.zeros(basis.shape[1], *x0.shape[1:], dtype=dtype, device=device, requires_grad=True)
    close_w = torch.tensor([config.stay_close_arm if j in arm else config.stay_close for j in free],
                           dtype=dtype, device=device)

    def pose_of(x6: Tensor):
        R = R0.clone()
        R[:, free_t] = rot6d_to_matrix(x6)
        return forward_kinematics(sk.parents, offsets, R, root, rest_rot), R

    # Limb vertices of the loss: an even spread of at most max_limb_vertices (neighbours move together).
    dense = character.dense_weights(dtype).to(device)
    if model is not None:
        limb = model.limb_index.cpu().numpy()
        limb = limb[farthest_points(character.rest_vertices[limb], config.max_limb_vertices)]
        limb_rest = torch.as_tensor(character.rest_vertices[limb], dtype=dtype, device=device)
        limb_w = dense[torch.as_tensor(limb, device=device)]
        limb_top_j = torch.as_tensor(character.skin_indices[limb], device=device)  # (S, 4)
        limb_top_w = torch.as_tensor(character.skin_weights[limb], dtype=dtype, device=device)
        # Per (frame, limb vertex): the body bones' blend where the inversion of skinning left off.
        blend = torch.full((T, len(limb), len(model.bones)), 1.0 / len(model.bones), dtype=dtype, device=device)
    hands = _hand_vertex_samples(character)
    hand_ok = model is not None and all(len(h) for h in hands)
    if hand_ok:
        hand_idx = torch.as_tensor(np.concatenate(hands), device=device)
        hand_rest, hand_w = torch.as_tensor(character.rest_vertices[hand_idx.cpu().numpy()], dtype=dtype,
                                            device=device), dense[hand_idx]
        n_left = len(hands[0])

    # Semantic target from the source (once).
    src_pos = canonical_positions(source).to(dtype=dtype, device=device)
    proxy_src, proxy_char = source_proxy(source), character_proxy(character)
    semantic = _make_semantic_term(supervisor, source, src_pos, proxy_src, character, proxy_char, start, config,
                                   device, source_frames, source_camera)

    with torch.no_grad():
        pose0, _ = pose_of(x0)
        positions0 = _canonical_tracks(pose0.positions, mapping)
        feet0 = positions0[:, _FEET]
        foot_contact = (feet0[..., 1] < feet0[..., 1].min() + 0.03 * height).to(dtype)

    optimizer = torch.optim.Adam([controls], lr=config.lr)
    history: list[float] = []
    margin = config.pen_margin * height
    tau = 0.005 * height
    ramp_steps = max(1, int(config.ramp * config.iterations))
    active = None
    best, best_x, steps = math.inf, x0.clone(), 0

    def posed(x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Canonical joint positions ``(T, 22, 3)``, the hands' soft gap to the body ``(T, 2)`` (None without
        hand or body vertices) and the skinning transforms ``(T, J, 12)`` of the 6D angles ``x``."""
        pose, _ = pose_of(x)
        transforms = skinning_transforms(pose, rest_pose).flatten(-2)
        body_gap = None
        if hand_ok:
            hv = _skin_frames(hand_rest, hand_w, transforms)  # (T, H, 3)
            d = model.body_sdf(hv, transforms.unflatten(-1, (3, 4)), exact_grad=False)
            body_gap = torch.stack([-tau * torch.logsumexp(-d[:, :n_left] / tau, dim=-1),
                                    -tau * torch.logsumexp(-d[:, n_left:] / tau, dim=-1)], dim=-1)
        return _canonical_tracks(pose.positions, mapping), body_gap, transforms

    contact_reach = config.contact_slack * contact_tolerance(height)
    with torch.no_grad():
        acc0 = acceleration(positions0, start.fps) / height  # (T - 2, 22, 3), heights / s²
        acc0_norm = acc0.norm(dim=-1)
        _, gap0, _ = posed(x0)
        source_touch = torch.as_tensor(_source_contacts(src_pos.cpu().double(), proxy_src), device=device)
        sunk = (source_touch & (skeletal_features(positions0, proxy_char, gap0).gaps < 0)).to(dtype)  # (T, 3)

    def semantic_distance(x: Tensor) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            return semantic.distances(*posed(x))

    for step in range(config.iterations):
        steps = step + 1
        x = x0 + torch.einsum("tk,kfc->tfc", basis, controls)
        positions, body_gap, transforms = posed(x)
        loss_pen = x.new_zeros(())
        if model is not None:
            if active is None or step % config.refresh == 0:
                with torch.no_grad():  # the limb vertices near the body now, or close enough to get there soon
                    tf = transforms.detach()
                    phi, blend = model.sdf_per_pose(_skin_frames(limb_rest, limb_w, tf), tf[:, model.bones],
                                                    weights=blend)
                    active = torch.nonzero(phi < margin + 0.03 * height, as_tuple=True)
            if active[0].numel():
                frame, vert = active
                v = _skin_each(limb_rest[vert], limb_top_w[vert], transforms[frame[:, None], limb_top_j[vert]])
                # Selecting the bones first, then the frames, gathers half as much as both at once.
                phi, w = model.sdf_at(v, transforms[:, model.bones][frame], exact_grad=False,
                                      weights=blend[frame, vert])
                blend[frame, vert] = w.detach()  # the next step resumes the inversion from here
                loss_pen = torch.relu(margin - phi).sum() / (T * height)
        loss_sem = semantic(positions, body_gap, transforms, step)
        dx = x - x0
        loss_close = (close_w[:, None] * dx * dx).sum((-1, -2)).mean()
        if T > 2:  # accelerations in heights per s²
            acc = acceleration(positions, start.fps) / height
            added = acc - acc0
            loss_smooth = (added * added).sum(-1).mean()
            loss_jitter = torch.relu(torch.sqrt((acc * acc).sum(-1) + 1e-10) - acc0_norm).mean()
        else:
            loss_smooth = loss_jitter = dx.new_zeros(())
        loss_contact = dx.new_zeros(())
        if config.contact and sunk.any():
            gaps = skeletal_features(positions, proxy_char, body_gap).gaps
            loss_contact = (sunk * torch.relu(gaps - contact_reach) ** 2).sum(-1).mean() / (0.01 * height) ** 2
        loss_foot = (foot_contact * ((positions[:, _FEET] - feet0) ** 2).sum(-1)).mean() / height ** 2
        total = (config.lambda_sem * loss_sem + _pen_weight(config, step) * loss_pen + loss_close
                 + config.smooth * loss_smooth + config.jitter * loss_jitter + config.contact * loss_contact
                 + config.foot * loss_foot)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        value = float(total.detach())
        history.append(value)
        if step < ramp_steps:
            best_x = x.detach().clone()
        else:  # the loss's weights are final from here on: keep the best, stop when it stalls
            if value < best:
                best, best_x = value, x.detach().clone()
            if len(history) > ramp_steps + config.patience:
                old = history[-1 - config.patience]
                if old - value < config.tolerance * abs(old):
                    break
        progress(0.05 + 0.9 * steps / config.iterations, "semantic refinement")

    with torch.no_grad():
        _, R = pose_of(best_x)
        q = quat_make_continuous(matrix_to_quat(R.double()), dim=0).cpu().numpy()
    result = Motion(sk, q, start.root_positions.copy(), start.fps, start.name)
    seconds = time.perf_counter() - t0
    frames, sem_before = semantic_distance(x0)
    _, sem_after = semantic_distance(best_x)
    before = after = None
    if measure:
        progress(0.96, "measuring")
        before = measure_clip(source, start, character, max_mesh_frames)
        after = measure_clip(source, result, character, max_mesh_frames)
    progress(1.0, "semantic refinement done")
    return OptimizeResult(result, before, after, described, steps, seconds, history, notes,
                          SemanticDistance(frames, sem_before, sem_after))


def _make_semantic_term(supervisor, source: Motion, src_pos: Tensor, proxy_src: FigureProxy, character: Character,
                        proxy_char: FigureProxy, start: Motion, config: OptimizeConfig, device: torch.device,
                        source_frames=None, source_camera=None):
    """The λ_sem term for the supervisor: called as ``(positions, body_gap, transforms, step) -> loss``;
    ``.distances(positions, body_gap, transforms) -> (frames, values)`` reports it per frame.

    Skeletal: squared distance of the per-frame embeddings, averaged over frames. Image encoders: each step
    renders ``frames_per_step`` random frames of the character from the front, left and right (or from
    ``source_camera`` when the source is a video), embeds them with the same guiding answers as the source
    frames and averages the squared distance per embedding dimension (the scale of a VLM's features is its
    own, so λ_sem means the same for any model width).
    """
    if getattr(supervisor, "kind", None) == "skeleton":
        return _SkeletalTerm(supervisor, src_pos, proxy_src, proxy_char)
    return _ImageTerm(supervisor, source, character, start, config, device, source_frames, source_camera)


class _SkeletalTerm:
    """Semantic consistency of skeletal embeddings (see :func:`_make_semantic_term`)."""

    def __init__(self, encoder: SkeletalEncoder, source_positions: Tensor, source_proxy: FigureProxy,
                 target_proxy: FigureProxy) -> None:
        self.encoder, self.target_proxy = encoder, target_proxy
        with torch.no_grad():
            self.source_emb = encoder.embed(source_positions, source_proxy)

    def per_frame(self, positions: Tensor, body_gap: Tensor | None) -> Tensor:
        return ((self.encoder.embed(positions, self.target_proxy, body_gap) - self.source_emb) ** 2).sum(-1)

    def __call__(self, positions: Tensor, body_gap: Tensor | None, transforms: Tensor, step: int) -> Tensor:
        return self.per_frame(positions, body_gap).mean()

    def distances(self, positions: Tensor, body_gap: Tensor | None,
                  transforms: Tensor) -> tuple[np.ndarray, np.ndarray]:
        values = self.per_frame(positions, body_gap).cpu().double().numpy()
        return np.arange(len(values)), values


class _ImageTerm:
    """Semantic consistency through renders and an image encoder (see :func:`_make_semantic_term`)."""

    def __init__(self, encoder, source: Motion, character: Character, start: Motion, config: OptimizeConfig,
                 device: torch.device, source_frames=None, source_camera=None) -> None:
        from .render.soft import SoftRasterSettings, clip_cameras, mannequin, render_views

        self.encoder, self.config, self.device = encoder, config, device
        self.settings = SoftRasterSettings()
        self.render = render_views
        self.faces = torch.as_tensor(character.faces, device=device)
        colors = character.colors if character.colors is not None else np.full((len(character.rest_vertices), 3), 0.75)
        self.colors = torch.as_tensor(colors, dtype=torch.float32, device=device)
        self.rest = torch.as_tensor(character.rest_vertices, dtype=torch.float32, device=device)
        self.weights = character.dense_weights(torch.float32).to(device)
        self.generator = torch.Generator().manual_seed(0)
        T = start.num_frames
        with torch.no_grad():
            target_points = character.posed_vertices(start.slice(0, None))[:: max(1, T // 30), ::10].numpy()
        if source_frames is not None:  # a video: its frames, the character seen from the video's camera
            self.cameras = [source_camera] if source_camera is not None else clip_cameras(target_points, ("front",))
            emb, ctx = encoder.embed_source_frames(source_frames)
            if len(emb) != T:
                raise ValueError(f"{len(emb)} source frames for a {T}-frame motion")
            self.source_emb, self.source_ctx = emb[:, None].to(device), [[c] for c in ctx]
        else:  # a motion file: a mannequin of the source skeleton from the same three views
            self.cameras = clip_cameras(target_points)
            body = mannequin(source.skeleton)
            with torch.no_grad():
                src_points = body.posed_vertices(source)[:: max(1, T // 30), ::5].numpy()
            src_cams = clip_cameras(src_points)
            faces = torch.as_tensor(body.faces, device=device)
            cols = torch.as_tensor(body.colors, dtype=torch.float32, device=device)
            embs, ctxs = [], []
            for s in range(0, T, 8):
                with torch.no_grad():
                    verts = body.posed_vertices(source.slice(s, s + 8)).float().to(device)
                    images = self.render(verts, faces, cols, src_cams, self.settings).flatten(0, 1)
                e, c = encoder.embed_source_frames(images, key=("mannequin", id(source), s))
                embs.append(e.reshape(verts.shape[0], len(src_cams), -1))
                ctxs += [c[i:i + len(src_cams)] for i in range(0, len(c), len(src_cams))]
            self.source_emb, self.source_ctx = torch.cat(embs).to(device), ctxs

    def __call__(self, positions: Tensor, body_gap: Tensor | None, transforms: Tensor, step: int) -> Tensor:
        T = transforms.shape[0]
        n = min(self.config.frames_per_step, T)
        frames = torch.randperm(T, generator=self.generator)[:n].to(self.device)
        return self.per_frame(transforms, frames).mean()

    def distances(self, positions: Tensor, body_gap: Tensor | None, transforms: Tensor,
                  count: int = 8) -> tuple[np.ndarray, np.ndarray]:
        T = transforms.shape[0]
        frames = np.unique(np.linspace(0, T - 1, min(count, T)).round().astype(np.int64))
        values = self.per_frame(transforms, torch.as_tensor(frames, device=self.device))
        return frames, values.cpu().double().numpy()

    def per_frame(self, transforms: Tensor, frames: Tensor) -> Tensor:
        """``(n,)`` distances of the given frames: renders from every camera, embedded, summed over cameras."""
        n = len(frames)
        m = (self.weights @ transforms[frames]).unflatten(-1, (3, 4))  # (n, V, 3, 4)
        verts = (m[..., :3] @ self.rest[:, :, None])[..., 0] + m[..., 3]
        images = self.render(verts, self.faces, self.colors, self.cameras, self.settings)  # (n, C, 3, H, W)
        context = [c for f in frames.tolist() for c in self.source_ctx[f]]
        e = self.encoder.embed_renders(images.flatten(0, 1), context).reshape(n, len(self.cameras), -1)
        return ((e - self.source_emb[frames]) ** 2).mean(-1).sum(-1)
