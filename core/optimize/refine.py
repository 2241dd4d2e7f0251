"""Stage II's entry point, :func:`optimize_motion`: check the request, build the problem, descend, measure."""
from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import Tensor

from ..character import Character
from ..geometry.penetration import MissingPartsError, penetration_model
from ..metrics import SourceClip, canonical_positions, jdm_error, measure_clip
from ..motion import Motion, _canonical_tracks
from ..rotations import matrix_to_quat, matrix_to_rot6d, quat_make_continuous
from ..semantics.skeletal import SkeletalEncoder, character_proxy
from ..skeleton import CANONICAL_JOINTS, map_to_canonical
from .config import OWN_MOTION_JDM, ARM_AND_HAND_JOINTS, HAND_JOINTS, HEAD_JOINTS, UPPER_BODY, OptimizeConfig
from .limits import LimitFrames, TwistAxes
from .loop import Problem, Progress, StartReference, descend
from .posing import HandSamples, LimbSamples, Rig, spline_basis
from .request import Request
from .result import OptimizeResult, SemanticDistance
from .semantic import semantic_term

__all__ = ["optimize_motion", "prepare_character", "SKELETAL_SOURCE"]

SKELETAL_SOURCE = "the source's joint positions (skeletal supervisor)"


def prepare_character(character: Character, device: str | torch.device | None = None) -> None:
    """Build what stage II needs of ``character`` alone (its penetration grid, kept by
    :func:`~core.geometry.penetration.penetration_model`), so a job can do it while it waits for something else."""
    try:
        penetration_model(character, torch.float32, torch.device(device or "cpu"))
    except MissingPartsError:
        pass  # optimize_motion says so in its notes


def _no_progress(fraction: float, stage: str) -> None:
    pass


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
        source_frames: for a video source, its frames: ``(T, H, W, 3)`` uint8, or a lazy source of crops around
            the person (:class:`pose.crops.VideoCrops`); image supervisors embed these (once) instead of renders
            of a mannequin for the video's view. source_camera: how the video saw the person, a per-frame
            :class:`~core.render.framing.VideoView` (or one fixed preview ``Camera``). Both are ignored by the
            skeletal supervisor.

    Raises:
        ValueError: start is not on the character's skeleton, the clips (or source frames, or the video view)
            differ in length, a bad config.

    Out of GPU memory with an image supervisor, it starts again with the skeletal one and says so in notes.
    """
    description = None
    if isinstance(supervisor, tuple) and hasattr(supervisor, "encoder"):  # a core.semantics.Supervisor
        supervisor, description = supervisor.encoder, supervisor.description
    request = Request(source, start, character, supervisor, description, config or OptimizeConfig(),
                      torch.device(device or "cpu"), measure, max_mesh_frames, source_frames, source_camera)
    request.check()
    threads = torch.get_num_threads()
    if request.config.threads:
        torch.set_num_threads(request.config.threads)
    try:
        try:
            return _optimize(request, progress)
        except torch.cuda.OutOfMemoryError:
            if getattr(supervisor, "kind", None) == "skeleton":
                raise
            torch.cuda.empty_cache()
            result = _optimize(replace(request, supervisor=None, description=None, source_frames=None,
                                       source_camera=None), progress)
            result.notes.append(f"out of GPU memory with {description or supervisor}: used the skeletal "
                                "supervisor instead")
            result.supervisor = "skeletal fallback: out of GPU memory with the vision-language model"
            return result
    finally:
        torch.set_num_threads(threads)


def _optimize(request: Request, progress: Progress) -> OptimizeResult:
    """The work of :func:`optimize_motion` for a checked request."""
    supervisor = request.supervisor or SkeletalEncoder(**request.config.skeletal_weights)
    described = request.description or getattr(supervisor, "description", None) or f"{supervisor.name} supervisor"
    notes: list[str] = []
    t0 = time.perf_counter()
    progress(0.0, "preparing semantic refinement")
    start, config = request.start, request.config
    stride = config.frame_stride(start.fps)
    source = SourceClip.of(request.source)  # its canonical positions serve the loss and both measurements
    if config.keep_own_motion and request.source_frames is None and _is_own_motion(source, start):
        return _as_it_is(request, source, described, t0, progress)
    # The loss looks at every stride-th frame; the correction is a spline in time, evaluated below at all frames.
    basis = spline_basis(start.num_frames, config.knot_seconds * start.fps)
    problem = _problem(request.every(stride), supervisor, source.every(stride), notes, basis[::stride],
                       lambda f, what: progress(0.04 * f, what))
    descent = descend(problem, progress)
    with torch.no_grad():
        rig = problem.rig if stride == 1 else Rig.of(start, problem.rig.mapping, problem.rig.free.tolist(),
                                                     problem.x0.dtype, request.device)
        x0 = matrix_to_rot6d(rig.start[:, rig.free])
        correction = torch.einsum("tk,kfc->tfc", basis.to(x0), descent.controls)
        share = _share_keeping_the_jdm(rig, x0, correction, source.positions) if config.jdm_guard else 1.0
        if share < 1.0:
            notes.append(f"the correction was scaled to {share:.0%}: in full, the clip would have read less like "
                         "the source (JDM error) than the retargeter's own")
        x = x0 + share * correction
        q = quat_make_continuous(matrix_to_quat(rig.local_rotations(x).double()), dim=0).cpu().numpy()
    result = Motion(start.skeleton, q, start.root_positions.copy(), start.fps, start.name)
    seconds = time.perf_counter() - t0
    metrics = None
    with torch.no_grad():
        posed_before = problem.posed(problem.x0)
        posed_after = problem.posed(problem.x0 + share * (descent.best - problem.x0))
        if hasattr(problem.semantic, "compare"):  # an image supervisor: the paper's SCL, FID, ITM too
            progress(0.95, "measuring semantics")
            frames, sem_before, sem_after, metrics = problem.semantic.compare(posed_before, posed_after)
        else:
            frames, sem_before = problem.semantic.distances(posed_before)
            _, sem_after = problem.semantic.distances(posed_after)
    before = after = None
    if request.measure:
        progress(0.96, "measuring")
        before = measure_clip(source, start, request.character, request.max_mesh_frames)
        after = measure_clip(source, result, request.character, request.max_mesh_frames)
    progress(1.0, "semantic refinement done")
    return OptimizeResult(result, before, after, described, descent.steps, seconds, descent.history, notes,
                          SemanticDistance(frames * stride, sem_before, sem_after),
                          getattr(problem.semantic, "description", SKELETAL_SOURCE), metrics)


def _is_own_motion(source: SourceClip, start: Motion) -> bool:
    """The start is the source itself on the same proportions (see :data:`OWN_MOTION_JDM`)."""
    return float(jdm_error(source.positions, canonical_positions(start))) < OWN_MOTION_JDM


def _as_it_is(request: Request, source: SourceClip, described: str, t0: float,
              progress: Progress) -> OptimizeResult:
    """The result of a start that is the character's own motion: the start, unchanged (see
    ``OptimizeConfig.keep_own_motion``)."""
    start = request.start
    note = (f"the source is {request.character.name}'s own motion: the penetration it has is the source's own on "
            "its own body, so stage II leaves it as it is")
    metrics = None
    if request.measure:
        progress(0.5, "measuring")
        metrics = measure_clip(source, start, request.character, request.max_mesh_frames)
    progress(1.0, "semantic refinement done")
    motion = Motion(start.skeleton, start.rotations.copy(), start.root_positions.copy(), start.fps, start.name)
    return OptimizeResult(motion, metrics, metrics, described, 0, time.perf_counter() - t0, [], [note],
                          semantic_source="not compared: the source is the character's own motion")


def _share_keeping_the_jdm(rig: Rig, x0: Tensor, correction: Tensor, source_positions: Tensor,
                           shares: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.0)) -> float:
    """The largest of ``shares`` of the ``(T, F, 6)`` correction whose result, on every frame, has a JDM error
    against the source's ``(T, 22, 3)`` positions no higher than the start's (``x0``'s).

    The loss's guard holds the clip's JDM error at the start's on the frames it looks at, up to Adam's wobble
    around the hinge (about 0.001); this makes "never further from the source than the retargeter" hold on
    every frame. A start that *is* the source (error under ``OWN_MOTION_JDM``) keeps the whole correction:
    any correction moves away from it."""
    def error(share: float) -> float:
        positions = _canonical_tracks(rig.pose(x0 + share * correction).positions, rig.mapping)
        return float(jdm_error(source_positions, positions.to(source_positions)))

    start = error(0.0)
    if start < OWN_MOTION_JDM:
        return 1.0
    limit = start + 1e-9
    return next((share for share in shares if share == 0.0 or error(share) <= limit), 0.0)


def _problem(request: Request, supervisor, source: SourceClip, notes: list[str], basis: Tensor,
             progress: Progress = _no_progress) -> Problem:
    """Everything the loop needs, on the request's device (float32: plenty for angles and a few mm); ``basis``
    ``(T, K)``: the correction's spline at the request's frames; ``progress`` hears how far the source's
    embedding is."""
    character, start, config, device = request.character, request.start, request.config, request.device
    dtype = torch.float32
    mapping = map_to_canonical(character.skeleton).indices
    wanted = CANONICAL_JOINTS if config.free_joints == "all" else UPPER_BODY
    free = sorted({mapping[CANONICAL_JOINTS.index(n)] for n in wanted} - {-1})
    arm = {mapping[CANONICAL_JOINTS.index(n)] for n in ARM_AND_HAND_JOINTS}
    hand = {mapping[CANONICAL_JOINTS.index(n)] for n in HAND_JOINTS}
    head = {mapping[CANONICAL_JOINTS.index(n)] for n in HEAD_JOINTS}

    def close_weight(j: int) -> float:
        return (config.stay_close_hand if j in hand else config.stay_close_head if j in head
                else config.stay_close_arm if j in arm else config.stay_close)
    try:
        model = penetration_model(character, dtype=dtype, device=device)
    except MissingPartsError as e:
        model = None
        notes.append(f"penetration not corrected: {e}")
    rig = Rig.of(start, mapping, free, dtype, device)
    x0 = matrix_to_rot6d(rig.start[:, rig.free])  # (T, F, 6)
    dense = character.dense_weights(dtype).to(device)
    proxy = character_proxy(character)
    semantic = semantic_term(supervisor, request, source, proxy, progress)
    limbs = hands = None
    if model is not None:
        limbs = LimbSamples.of(character, model, dense, config.max_limb_vertices)
        hands = HandSamples.of(character, dense)
    limits = LimitFrames.of(rig.rest_pose.rotations, rig.rest_pose.positions, mapping) if config.limits else None
    twists = (TwistAxes.of(rig.rest_pose.rotations, rig.rest_pose.positions, mapping)
              if config.stay_close_twist else None)
    with torch.no_grad():
        posed0 = rig.posed(x0, model, hands)
    reference = StartReference.of(
        posed0, torch.as_tensor(source.contacts, device=device), proxy, start.fps, limits,
        source.positions.to(dtype=dtype, device=device) if config.hand_relation or config.jdm_guard else None,
        source.proxy.height,
        config.relation_reach, twists)
    return Problem(
        config=config, rig=rig, x0=x0,
        basis=basis.to(dtype=dtype, device=device),
        close_weights=torch.tensor([close_weight(j) for j in free], dtype=dtype, device=device),
        fps=start.fps, proxy=proxy, semantic=semantic, start=reference, model=model, limbs=limbs, hands=hands,
        limits=limits, twists=twists)
