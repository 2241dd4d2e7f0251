"""Weights and schedule of stage II, and which joints it may move (see :mod:`core.optimize` for the why)."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OptimizeConfig", "OWN_MOTION_JDM", "UPPER_BODY", "ARM_AND_HAND_JOINTS", "HAND_JOINTS", "HEAD_JOINTS", "FREE_JOINTS"]

UPPER_BODY: tuple[str, ...] = ("Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm",
                               "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand")
# Canonical joints whose stay-close weight is ``stay_close_arm``: the arms are what penetration must move.
ARM_AND_HAND_JOINTS: frozenset[str] = frozenset({"LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
                                                 "RightShoulder", "RightArm", "RightForeArm", "RightHand"})
# Canonical joints a viewer reads first (issue 18): their stay-close weights are ``stay_close_hand`` and
# ``stay_close_head``, above the arm's, so the optimiser moves shoulders and elbows to clear the body rather than
# bending wrists backwards or turning the head away.
HAND_JOINTS: frozenset[str] = frozenset({"LeftHand", "RightHand"})
HEAD_JOINTS: frozenset[str] = frozenset({"Neck", "Head"})
FREE_JOINTS = ("upper", "all")
# A start whose JDM error against the source is under OWN_MOTION_JDM is the source itself (a character's own
# Mixamo clip scores 6e-7; other characters' versions of one motion 0.06-0.14): any correction moves away from
# it, so the JDM guard does not apply (Bob's arms sunk 4 % into his own belly need 0.018 to come out).
OWN_MOTION_JDM = 0.01


@dataclass
class OptimizeConfig:
    """Weights and schedule of the per-clip optimisation (see :mod:`core.optimize`).

    lambda_sem, lambda_pen: the paper's λ_s and λ_p (0.1, 1). pen_peak: λ_pen is ramped from lambda_pen to this
    over the first ``ramp`` fraction of the iterations, then held at pen_final. pen_margin: limb vertices are
    pushed this far out of the body, in figure heights (covers the grid's approximation). stay_close /
    stay_close_arm: weight of the 6D distance to the start for trunk and arm joints (trunk 80, issue 18: at
    20 Mousey's chest turned 15.4° mean from its hips beyond the start's to clear its belly, a deeper bow than the
    source's; at 80 5-7°, with its Pen% 0.53 -> 0.62 and the hip-hop clip's hand contacts kept as well or better;
    40 left 9.7°). λ_pen 15 instead of 10 after the ramp pays the trunk's share back with the arms: Sporty_Granny's
    Pen% ratio 0.322 -> 0.263 (0.312 with the trunk change alone), hands 1.0° / 3.2° mean / 95th percentile.
    limits: weight of the hinge on each limited joint's angle past its anatomical range or the start's own
    excursion (:mod:`core.optimize.limits`); 30, not 10, since λ_pen is 15: at 10 Mousey's joints went past their
    ranges in 3.5 % more frames × joints than Copy's, at 30 in 3.5 % fewer (Pen% 0.62 -> 0.64, Granny's ratio 0.256).
    stay_close_twist: weight of the squared turn (radians) of the forearms and upper arms about their own axes
    since the start (10: 0.2-1.5° mean on the bench, where it was 40-60° on Mousey; 2 left 3.5-18°).
    smooth: weight of the correction's second difference in time. jitter: weight of the hinge on each joint's
    acceleration magnitude rising above the start's. contact: weight that keeps the hand contacts the start has
    (sunk or touching) within ``contact_slack`` × the contact tolerance of the surface. jdm_guard: first weight
    of the clip's JDM error rising above the start's (a hinge), raised by ``jdm_guard_rate`` × the excess after
    each step it is exceeded (0: no guard). foot: weight of the foot joints' displacement on contact frames.
    iterations: the most Adam steps (80: quality harness, 7 characters, against 120: Pen% after within noise or
    lower (Mousey 0.69 -> 0.66, Bob 0.03 -> 0.01, Sporty_Granny's ratio 0.247 -> 0.262 of the bar's 0.3), JDM
    below Copy's on every clip, hands 0.1-0.7° more; stage II a third quicker; 60 let Mousey's Pen% rise to 0.78
    and Granny's ratio to 0.28); lr: Adam's step size on the correction's spline controls (6D entries).
    knot_seconds: spacing of the correction's B-spline knots in time. loss_fps: the loss looks at the clip at
    about this rate (every n-th frame, n = round(fps / loss_fps), at least 1); the correction, a spline with
    knots every ``knot_seconds``, is then evaluated at every frame, so the result keeps the source's rate.
    patience / tolerance: stop when the
    loss improved by less than ``tolerance`` (relative) over the last ``patience`` steps (after the ramp).
    free_joints: "upper" or "all". refresh: steps between re-selecting which limb vertices are near the body.
    max_limb_vertices: the loss uses at most this many limb vertices, spread evenly (Pen% counts them all).
    frames_per_step: frames rendered per step by image supervisors (the paper's batch of 4).
    video_side_views: with a video source, the views in which the character's renders are also compared with
    renders of the source skeleton (a mannequin), beside the video's own view: one camera cannot see how far an
    arm reaches towards it, the paper's front/left/right views can (empty: the video's view alone).
    metric_frames: image supervisors measure the semantic distance, SCL and FID on this many evenly spread frames
    (each a VLM pass per view, before and after).
    threads: torch's intra-op threads during the call (restored after; None leaves them alone). One is the
    default because the tensors are small: with two threads on a shared 2-core machine every operation waits
    for the other thread to be scheduled (measured: 8 ms instead of 10 µs for a 75k-element product).
    skeletal_weights: keyword arguments of the default :class:`~core.semantics.skeletal.SkeletalEncoder`.
    keep_own_motion: a start that is the source itself (its JDM error under :data:`OWN_MOTION_JDM`: a
    character's own clip, or one of our results brought back) is returned as it is. Issue 18: stop at the
    penetration the source motion has on its own body, not at zero; here that body is the character's, so the
    start is already there (Sporty_Granny's own hip-hop: Pen% 0.28, which the correction cut to 0.05 for a JDM
    error 0.026 above the source's own). A video's source body is the person's, so a video job sets it False.
    """

    lambda_sem: float = 0.1
    lambda_pen: float = 1.0
    pen_peak: float = 15.0
    pen_final: float = 15.0
    ramp: float = 0.3
    pen_margin: float = 0.003
    stay_close: float = 80.0
    stay_close_arm: float = 0.05
    stay_close_hand: float = 2.0
    stay_close_head: float = 50.0
    stay_close_twist: float = 10.0
    limits: float = 30.0
    hand_relation: float = 50.0
    jdm_guard: float = 10.0
    jdm_guard_rate: float = 1e4
    relation_reach: float = 0.3
    smooth: float = 5.0
    jitter: float = 1.0
    contact: float = 0.5
    contact_slack: float = 0.5
    foot: float = 1e4
    iterations: int = 80
    lr: float = 0.02
    knot_seconds: float = 0.25
    loss_fps: float = 10.0
    patience: int = 30
    tolerance: float = 2e-3
    free_joints: str = "upper"
    refresh: int = 10
    max_limb_vertices: int = 384
    frames_per_step: int = 4
    video_side_views: tuple[str, ...] = ("front", "left", "right")
    metric_frames: int = 16
    threads: int | None = 1
    skeletal_weights: dict = field(default_factory=dict)
    keep_own_motion: bool = True

    def validate(self) -> None:
        """Raises ValueError for a setting the optimiser cannot use (checked when a call starts, so a config
        can be built field by field)."""
        if self.free_joints not in FREE_JOINTS:
            raise ValueError(f"free_joints must be 'upper' or 'all', got {self.free_joints!r}")

    def frame_stride(self, fps: float) -> int:
        """Every how many frames of a ``fps`` clip the loss is evaluated (see ``loss_fps``)."""
        return max(1, int(round(fps / self.loss_fps))) if self.loss_fps > 0 else 1

    @property
    def ramp_steps(self) -> int:
        """Steps over which λ_pen ramps up; the loss's weights are final from then on."""
        return max(1, int(self.ramp * self.iterations))

    def pen_weight(self, step: int) -> float:
        """λ_pen at ``step``: lambda_pen ramped linearly to pen_peak over :attr:`ramp_steps`, then pen_final."""
        ramp_steps = self.ramp_steps
        if step >= ramp_steps:
            return self.pen_final
        return self.lambda_pen + (self.pen_peak - self.lambda_pen) * step / ramp_steps
