"""The optimisation itself: the problem (fixed for a run), the total loss at one step, and Adam's loop."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ..geometry.penetration import PenetrationModel
from ..kinematics import linear_blend_skinning
from ..metrics import acceleration, jdm_error
from ..motion import FOOT_JOINTS
from ..retarget.losses import normalized_jdm
from ..semantics.skeletal import FigureProxy, contact_tolerance, skeletal_features
from ..skeleton import CANONICAL_JOINTS
from . import terms
from .config import OWN_MOTION_JDM, OptimizeConfig
from .limits import LimitFrames, TwistAxes, limit_angles, limit_excess, twist_change
from .posing import HandSamples, LimbSamples, Posed, Rig
from .semantic import SemanticTerm

__all__ = ["StartReference", "Problem", "NearBody", "JdmGuard", "Descent", "total_loss", "descend"]

Progress = Callable[[float, str], None]
FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


@dataclass(frozen=True, eq=False)
class StartReference:
    """The start motion as the terms compare against it.

    feet: ``(T, 4, 3)`` foot-joint positions, metres; planted: ``(T, 4)`` 1 where a foot joint is within 3 % of
    the height of the clip's lowest (else 0). acc: ``(T - 2, 22, 3)`` joint accelerations, heights / s²;
    acc_norm: ``(T - 2, 22)`` their magnitudes. held: ``(T, 3)`` 1 where the source's hand touches the body (or
    the other hand) and the start's does too (within the contact tolerance, inside included). angles: ``(T, P, 3)`` the start's twist/bend/side angles
    of the limited joints (radians; None without limits). relations, relation_weights: ``(T, R)`` the source's
    hand-pair distances over its height (:data:`~core.optimize.terms.HAND_RELATIONS`) and their closeness
    weights (None when not given). source_jdm: ``(T, 22, 22)`` the source's normalised joint distance matrices
    and jdm_error: the start's JDM error against them, which the result may not exceed (a scalar; both None
    when not given or when the start is the source itself, see ``OWN_MOTION_JDM``). twists: ``(T, P, 3, 3)``
    the start's long bones in their references' frames (:class:`~core.optimize.limits.TwistAxes`; None
    without).
    """

    feet: Tensor
    planted: Tensor
    acc: Tensor
    acc_norm: Tensor
    held: Tensor
    angles: Tensor | None = None
    relations: Tensor | None = None
    relation_weights: Tensor | None = None
    source_jdm: Tensor | None = None
    jdm_error: Tensor | None = None
    twists: Tensor | None = None

    @classmethod
    def of(cls, posed: Posed, source_contacts: Tensor, proxy: FigureProxy, fps: float,
           limits: LimitFrames | None = None, source_positions: Tensor | None = None,
           source_height: float = 1.0, reach: float = 0.3, twists: TwistAxes | None = None) -> "StartReference":
        """From the start ``posed``, the source's ``(T, 3)`` bool hard contacts and the character's proxy;
        with ``limits``, the start's limit angles; with the source's ``(T, 22, 3)`` canonical positions and its
        height, the hand relations to keep (weight ``exp(−d / reach)``, d the source's distance over height); with
        ``twists``, the start's long bones, which the correction should hardly turn about their own axes."""
        height = proxy.height
        angles = relations = weights = source_jdm = start_jdm = twist_start = None
        with torch.no_grad():
            if limits is not None and len(limits) and posed.rotations is not None:
                angles = limit_angles(posed.rotations, limits)
            if twists is not None and len(twists) and posed.rotations is not None:
                twist_start = twists.relative(posed.rotations)
            if source_positions is not None:
                relations = relation_distances(source_positions, source_height)
                weights = torch.exp(-relations / reach)
                source_jdm = normalized_jdm(source_positions)
                start_jdm = jdm_error(source_positions, posed.positions)
                if start_jdm < OWN_MOTION_JDM:  # the start is the source: no guard (see OWN_MOTION_JDM)
                    source_jdm = start_jdm = None
            positions = posed.positions
            feet = positions[:, FEET]
            planted = (feet[..., 1] < feet[..., 1].min() + 0.03 * height).to(positions.dtype)
            acc = acceleration(positions, fps) / height
            gaps = skeletal_features(positions, proxy, posed.body_gap).gaps
            held = source_contacts & (gaps < contact_tolerance(height))
        return cls(feet, planted, acc, acc.norm(dim=-1), held.to(positions.dtype), angles, relations, weights,
                   source_jdm, start_jdm, twist_start)


_RELATION_PAIRS = [(CANONICAL_JOINTS.index(a), CANONICAL_JOINTS.index(b)) for a, b in terms.HAND_RELATIONS]


def relation_distances(positions: Tensor, height: float) -> Tensor:
    """``(T, R)`` distances of the :data:`~core.optimize.terms.HAND_RELATIONS` pairs over ``height`` from
    ``(T, 22, 3)`` canonical positions (differentiable)."""
    a, b = zip(*_RELATION_PAIRS)
    return (positions[:, list(a)] - positions[:, list(b)]).norm(dim=-1) / height


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything one optimisation needs, fixed for the run.

    x0: ``(T, F, 6)`` the start's 6D angles of the free joints; basis: ``(T, K)`` the correction's spline
    basis (:func:`~core.optimize.posing.spline_basis`); close_weights: ``(F,)`` each free joint's stay-close
    weight. proxy: the character's :class:`FigureProxy` (height, hand radius). model, limbs, hands: the
    penetration SDF and the vertices it is evaluated at (None for a character without limb/body labels).
    limits: the rig's anatomical limits (None: no limit term). twists: its long bones whose turn about their own
    axes stays close to the start's (None: no such term).
    """

    config: OptimizeConfig
    rig: Rig
    x0: Tensor
    basis: Tensor
    close_weights: Tensor
    fps: float
    proxy: FigureProxy
    semantic: SemanticTerm
    start: StartReference
    model: PenetrationModel | None = None
    limbs: LimbSamples | None = None
    hands: HandSamples | None = None
    limits: LimitFrames | None = None
    twists: TwistAxes | None = None

    @property
    def height(self) -> float:
        return self.proxy.height

    def posed(self, x: Tensor) -> Posed:
        """The clip at the free joints' 6D angles ``x (T, F, 6)``."""
        return self.rig.posed(x, self.model, self.hands)


def _bone_boxes(model: PenetrationModel) -> Tensor:
    """``(K, 8, 3)`` rest-space corners of the box around the body that each body bone moves (grid points within a
    cell of the body whose weight field for the bone is above 1e-3): under linear blend skinning no body point
    moves further than the furthest such corner moved by one of its bones."""
    g = model.grid
    near = model.grids[0, 0] < g.cell  # (nz, ny, nx)
    corners = []
    for k in range(len(model.bones)):
        idx = torch.nonzero(near & (model.grids[0, 1 + k] > 1e-3)).flip(-1).to(g.origin.dtype)  # (n, 3) x, y, z
        if not len(idx):
            idx = torch.zeros(1, 3, dtype=g.origin.dtype, device=g.origin.device)
        lo, hi = g.origin + idx.amin(0) * g.cell, g.origin + idx.amax(0) * g.cell
        box = torch.stack(torch.meshgrid(*[torch.stack([lo[i], hi[i]]) for i in range(3)], indexing="ij"), -1)
        corners.append(box.reshape(8, 3))
    return torch.stack(corners)


class NearBody:
    """The (frame, limb vertex) pairs the penetration term evaluates, and where each one's inversion of skinning
    left off (:meth:`PenetrationModel.sdf_at`). Mutable: one per run.

    A pair far outside the body costs nothing and cannot start to cost before it has moved, or the body under it
    has, by its distance past the margin. So each pair keeps its last signed distance and how far it and the body
    have moved since (the vertex's own travel, plus the most any body point of its frame can have moved: each body
    bone's change applied to the corners of the part of the body it moves, :func:`_bone_boxes`), and is evaluated
    again only when that distance is used up (``stretch`` times the travel, for skinning's distortion between world
    and rest space, within ``guard`` of the margin). On Bob's 10 s bench-app clip that leaves 4-5 k pairs a step
    after the first 50 (up to 11 k before, while Adam's first steps move every joint) where 14-15 k lay within 3 % of
    the height (the last scheme evaluated all pairs that near, every step; one box around the whole body instead of
    one per bone left 5-15 k). Every ``refresh`` steps the pairs within ``reach`` (margin + 3 % of the height)
    resume their inversions, so the distances they keep stay exact where the blend of bones changes fast
    (armpits).
    """

    def __init__(self, model: PenetrationModel, limbs: LimbSamples, frames: int, margin: float, height: float,
                 refresh: int, guard: float = 0.005, stretch: float = 1.5) -> None:
        self.model, self.limbs, self.margin, self.refresh = model, limbs, margin, refresh
        self.reach = margin + 0.03 * height
        self.guard, self.stretch = guard * height, stretch
        K = len(model.bones)
        dtype, device = limbs.rest.dtype, limbs.rest.device
        self.blend = torch.full((frames, len(limbs), K), 1.0 / K, dtype=dtype, device=device)  # (T, L, K)
        self.dist: Tensor | None = None  # (T, L) each pair's signed distance when last evaluated
        self.travel = torch.zeros(frames, len(limbs), dtype=dtype, device=device)  # (T, L) moved since, metres
        self.seen: Tensor | None = None  # (T, L, 3) the sampled vertices at the last step
        self.corners: Tensor | None = None  # (T, K, 8, 3) the body box's corners moved by each body bone
        self.boxes = _bone_boxes(model).to(dtype)  # (K, 8, 3)

    def _record(self, frame: Tensor, vert: Tensor, phi: Tensor, weights: Tensor) -> None:
        self.dist[frame, vert], self.travel[frame, vert], self.blend[frame, vert] = phi, 0.0, weights

    def distances(self, transforms: Tensor, step: int) -> Tensor:
        """``(P,)`` signed distances of the pairs that may be within the margin, to the posed body, from
        ``(T, J, 3, 4)`` transforms (differentiable; P may be 0)."""
        model, limbs = self.model, self.limbs
        with torch.no_grad():
            tf = transforms.detach()
            bones = tf[:, model.bones]  # (T, K, 3, 4)
            now = linear_blend_skinning(limbs.rest, limbs.weights, tf)  # (T, L, 3)
            corners = torch.einsum("tkij,kcj->tkci", bones[..., :3], self.boxes) + bones[:, :, None, :, 3]
            if self.dist is None:  # the first step: every pair
                self.dist, self.blend = model.sdf_per_pose(now, bones.flatten(-2), weights=self.blend)
            else:
                body = (corners - self.corners).norm(dim=-1).amax((-1, -2))  # (T,) most a body point moved
                self.travel += (now - self.seen).norm(dim=-1) + body[:, None]
                if step % self.refresh == 0:
                    f, v = torch.nonzero(self.dist < self.reach, as_tuple=True)
                    if f.numel():
                        phi, w = model.sdf_at(now[f, v], bones[f].flatten(-2), exact_grad=False,
                                              weights=self.blend[f, v])
                        self._record(f, v, phi, w)
            self.seen, self.corners = now, corners
            frame, vert = torch.nonzero(self.dist - self.stretch * self.travel < self.margin + self.guard,
                                        as_tuple=True)
        if not frame.numel():
            return transforms.new_zeros(0)
        v = linear_blend_skinning(limbs.rest[vert], limbs.top_weights[vert],
                                  transforms[frame[:, None], limbs.top_joints[vert]], per_vertex=True)
        # Selecting the bones first, then the frames, gathers half as much as both at once.
        phi, w = model.sdf_at(v, transforms[:, model.bones][frame].flatten(-2), exact_grad=False,
                              weights=self.blend[frame, vert])
        with torch.no_grad():
            self._record(frame, vert, phi.detach(), w.detach())  # the next step resumes the inversion from here
        return phi


class JdmGuard:
    """The weight of the JDM hinge (:func:`~core.optimize.terms.jdm_above_start`), raised by ``rate × excess``
    after every step the clip's JDM error is above the start's: a Lagrange multiplier by dual ascent. A fixed
    weight either let some clips end above the start (10-30 on the bench's Mousey: up to +0.0036) or held every
    clip back from clearing the body (100: Mousey's Pen% after 0.55 → 2.5 %); the multiplier grows only on the
    clips where the two conflict, and only as far as that clip needs. Mutable: one per run."""

    def __init__(self, weight: float, rate: float) -> None:
        self.weight, self.rate, self.excess = weight, rate, 0.0

    def __call__(self, excess: Tensor) -> Tensor:
        self.excess = float(excess.detach())
        return self.weight * excess

    def update(self) -> None:
        self.weight += self.rate * self.excess

    @property
    def met(self) -> bool:
        """The last step's JDM error was not above the start's."""
        return self.excess <= 0.0


def total_loss(problem: Problem, x: Tensor, step: int, near: NearBody | None, guard: JdmGuard | None = None) -> Tensor:
    """The weighted sum of every term at the free joints' 6D angles ``x (T, F, 6)`` (a scalar tensor); ``guard``
    weighs the JDM hinge (none without it)."""
    c, start, height = problem.config, problem.start, problem.height
    T = x.shape[0]
    posed = problem.posed(x)
    loss_pen = x.new_zeros(())
    if near is not None:
        loss_pen = terms.penetration(near.distances(posed.transforms, step), near.margin, T, height)
    loss_sem = problem.semantic(posed, step)
    dx = x - problem.x0
    loss_close = terms.stay_close(dx, problem.close_weights)
    loss_smooth = loss_jitter = dx.new_zeros(())
    if T > 2:
        acc = acceleration(posed.positions, problem.fps) / height  # heights / s²
        loss_smooth = terms.added_acceleration(acc, start.acc)
        loss_jitter = terms.acceleration_hinge(acc, start.acc_norm)
    loss_contact = dx.new_zeros(())
    if c.contact and start.held.any():
        gaps = skeletal_features(posed.positions, problem.proxy, posed.body_gap).gaps
        loss_contact = terms.kept_contacts(gaps, start.held, c.contact_slack * contact_tolerance(height), height)
    loss_foot = terms.foot_slide(posed.positions[:, FEET], start.feet, start.planted, height)
    loss_limits = loss_relation = loss_jdm = dx.new_zeros(())
    if c.limits and start.angles is not None:
        excess = limit_excess(limit_angles(posed.rotations, problem.limits), start.angles,
                              problem.limits.upper, problem.limits.lower)
        loss_limits = terms.joint_limits(excess)
    loss_twist = dx.new_zeros(())
    if c.stay_close_twist and start.twists is not None:
        twist = twist_change(problem.twists.relative(posed.rotations), start.twists, problem.twists.axis)
        loss_twist = terms.twist_close(twist)
    if c.hand_relation and start.relations is not None:
        loss_relation = terms.hand_relations(relation_distances(posed.positions, height), start.relations,
                                             start.relation_weights)
    if guard is not None and start.source_jdm is not None:
        loss_jdm = guard(terms.jdm_above_start(normalized_jdm(posed.positions), start.source_jdm, start.jdm_error))
    return (c.lambda_sem * loss_sem + c.pen_weight(step) * loss_pen + loss_close + c.smooth * loss_smooth
            + c.jitter * loss_jitter + c.contact * loss_contact + c.foot * loss_foot + c.limits * loss_limits
            + c.hand_relation * loss_relation + loss_jdm + c.stay_close_twist * loss_twist)


@dataclass
class Descent:
    """What the loop ends with: best: ``(T, F, 6)`` the angles of the best step (the last one during the
    ramp) and controls: ``(K, F, 6)`` its spline controls; steps: Adam steps taken, history: the total loss per
    step."""

    best: Tensor
    controls: Tensor
    steps: int
    history: list[float] = field(default_factory=list)


def descend(problem: Problem, progress: Progress) -> Descent:
    """Adam on the correction's spline controls until ``config.iterations`` or the loss stalls after the ramp
    (less than ``tolerance`` relative improvement over ``patience`` steps); keeps the best step."""
    config, x0 = problem.config, problem.x0
    controls = torch.zeros(problem.basis.shape[1], *x0.shape[1:], dtype=x0.dtype, device=x0.device,
                           requires_grad=True)
    optimizer = torch.optim.Adam([controls], lr=config.lr)
    near = None
    if problem.model is not None:
        near = NearBody(problem.model, problem.limbs, x0.shape[0], config.pen_margin * problem.height,
                        problem.height, config.refresh)
    guard = JdmGuard(config.jdm_guard, config.jdm_guard_rate) if config.jdm_guard else None
    out = Descent(x0.clone(), controls.detach().clone(), 0)
    best = (False, -math.inf)  # (JDM no worse than the start's, −loss): a step that keeps the JDM wins
    for step in range(config.iterations):
        out.steps = step + 1
        previous = controls.detach().clone()  # x's controls: the step below moves them
        x = x0 + torch.einsum("tk,kfc->tfc", problem.basis, controls)
        total = total_loss(problem, x, step, near, guard)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        value = float(total.detach())
        out.history.append(value)
        score = (guard is None or guard.met, -value)
        if step < config.ramp_steps or score > best:  # after the ramp the weights are final: keep the best
            out.best, out.controls = x.detach().clone(), previous
            if step >= config.ramp_steps:
                best = score
        if guard is not None:
            guard.update()
        if len(out.history) > config.ramp_steps + config.patience:  # ... and stop when it stalls
            old = out.history[-1 - config.patience]
            if old - value < config.tolerance * abs(old) and (guard is None or guard.met):
                break
        progress(0.05 + 0.9 * out.steps / config.iterations, "semantic refinement")
    return out
