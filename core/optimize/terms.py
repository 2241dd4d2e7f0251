"""The loss terms of stage II other than the semantic one (:mod:`core.optimize.semantic`): pure tensor functions.

Units: lengths are divided by the figure's height and times are in seconds, so one weight means the same on a
1 m cartoon and a 2 m giant, at 30 or 60 fps. Every term is a scalar tensor averaged over frames (the paper
sums; averaging scales every term alike). Shapes: T frames, F free joints, 22 canonical joints.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["penetration", "stay_close", "twist_close", "joint_limits", "hand_relations", "HAND_RELATIONS", "jdm_above_start",
           "added_acceleration", "acceleration_hinge", "kept_contacts", "foot_slide", "soft_min"]


def penetration(phi: Tensor, margin: float, frames: int, height: float) -> Tensor:
    """Paper Eq. 11: ``Σ ReLU(margin − Φ) / (T · height)``.

    Args:
        phi: ``(P,)`` signed distances (metres, negative inside) to the posed body of the limb vertices the
            loss looks at, any number per frame.
        margin: how far out of the body a vertex must be to cost nothing, metres.
        frames: T, the clip's length (the sum is over all of its frames).
    """
    return torch.relu(margin - phi).sum() / (frames * height)


def stay_close(dx: Tensor, weights: Tensor) -> Tensor:
    """``Σ_j c_j ||dx_j||²`` averaged over frames: dx ``(T, F, 6)`` the 6D angles' change from the start,
    weights ``(F,)`` the joints' c_j."""
    return (weights[:, None] * dx * dx).sum((-1, -2)).mean()


def twist_close(twist: Tensor) -> Tensor:
    """``Σ twist²`` over the long bones, averaged over frames: twist ``(T, P)`` radians each bone has turned about
    its own axis since the start (:func:`core.optimize.limits.twist_change`)."""
    return (twist * twist).sum(-1).mean()


def joint_limits(excess: Tensor) -> Tensor:
    """``Σ excess²`` over joints and components, averaged over frames: excess ``(T, P, 3)`` radians past the
    anatomical limits (:func:`core.optimize.limits.limit_excess`). Squared, so a degree past a limit costs
    little and forty cost much: the limit is a wall, not a spring towards the rest pose."""
    return (excess * excess).sum((-1, -2)).mean()


# Canonical joint pairs whose distance the hands keep from the source: the two hands, each hand and the head,
# each hand and the chest (what reads as "hands together", "hand at the face", "hand on the chest").
HAND_RELATIONS: tuple[tuple[str, str], ...] = (("LeftHand", "RightHand"), ("LeftHand", "Head"),
                                               ("RightHand", "Head"), ("LeftHand", "Spine2"),
                                               ("RightHand", "Spine2"))


def hand_relations(distances: Tensor, source: Tensor, weights: Tensor) -> Tensor:
    """``Σ w (d − d_src)²`` over :data:`HAND_RELATIONS` pairs, averaged over frames.

    distances, source: ``(T, R)`` the result's and the source's pair distances, each divided by its own
    figure's height (so a 1 m cartoon claps where a 1.8 m actor does); weights: ``(T, R)`` the source's
    closeness (1 at touching, falling off with distance: far hands may move, near ones keep their relation).
    """
    return (weights * (distances - source) ** 2).sum(-1).mean()


def jdm_above_start(jdm: Tensor, source_jdm: Tensor, start_error: Tensor) -> Tensor:
    """``ReLU(e − e⁰)``: the clip's JDM error ``e`` (:func:`core.metrics.jdm_error`: row L1 of the normalised
    joint distance matrices' difference, averaged over rows and frames) above the start's ``e⁰``.

    jdm, source_jdm: ``(T, 22, 22)`` normalised joint distance matrices of the result and of the source;
    start_error: the start's error (a scalar tensor). A clip-level hinge: single frames may trade (a fist pushed
    out of a huge head changes its distances), the clip as a whole must not read less like the source than the
    retargeter's start did.
    """
    return torch.relu((jdm - source_jdm).abs().sum(-1).mean() - start_error)


def added_acceleration(acc: Tensor, acc0: Tensor) -> Tensor:
    """``||a − a⁰||²`` averaged over frames and joints: the acceleration the correction adds, squared.
    acc, acc0: ``(T - 2, 22, 3)`` joint accelerations (heights / s²) of the result and of the start."""
    added = acc - acc0
    return (added * added).sum(-1).mean()


def acceleration_hinge(acc: Tensor, acc0_norm: Tensor) -> Tensor:
    """``ReLU(|a| − |a⁰|)`` averaged over frames and joints: no joint accelerating harder than it did.

    L1-like, so it stops the small added accelerations a squared term lets through. acc: ``(T - 2, 22, 3)``
    heights / s²; acc0_norm: ``(T - 2, 22)`` the start's magnitudes. The 1e-10 keeps the gradient finite at rest.
    """
    return torch.relu(torch.sqrt((acc * acc).sum(-1) + 1e-10) - acc0_norm).mean()


def kept_contacts(gaps: Tensor, held: Tensor, reach: float, height: float) -> Tensor:
    """``Σ_pairs held · ReLU(gap − reach)² / (0.01 height)²`` averaged over frames: the hand contacts the start
    keeps stay within ``reach`` (metres) of the surface, and sunk ones come out no further.

    gaps: ``(T, 3)`` surface gaps of left hand–body, right hand–body and hand–hand, metres (negative inside);
    held: ``(T, 3)`` 1 where the source touches and so does the start, else 0.
    """
    return (held * torch.relu(gaps - reach) ** 2).sum(-1).mean() / (0.01 * height) ** 2


def foot_slide(feet: Tensor, feet0: Tensor, planted: Tensor, height: float) -> Tensor:
    """``||p − p⁰||² / height²`` of the foot joints, averaged over frames and feet, counting planted ones only.

    feet, feet0: ``(T, 4, 3)`` foot-joint positions of the result and of the start, metres; planted: ``(T, 4)``
    1 where the start's foot joint is on the floor.
    """
    return (planted * ((feet - feet0) ** 2).sum(-1)).mean() / height ** 2


def soft_min(d: Tensor, tau: float) -> Tensor:
    """``−τ log Σ exp(−d / τ)`` over the last axis: a smooth minimum of distances ``(..., N)`` → ``(...)`` that
    passes gradient to every near point, not only the nearest (within about τ of the minimum)."""
    return -tau * torch.logsumexp(-d / tau, dim=-1)
