"""Losses of SMT stage I (paper Eqs. 2-6), pure tensor functions.

``L = 10·L_rec + 1·L_cyc + 0.1·L_adv + 1·L_jdm`` (paper supplement). As in the paper each term is a per-frame
squared norm (summed over the frame's entries: 22 × 9 node features for L_rec and L_cyc, 22 × 22 matrix
entries for L_jdm); we average over frames and batch instead of summing, which scales every term alike.

Joint distance matrix: ``D_ij = ||p_i − p_j||``; ``η`` divides each row by its L1 norm, so bone lengths cancel
to some extent (paper Eq. 6). The JDM error metric built on it is :func:`core.metrics.jdm_error`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.functional import softplus

__all__ = ["joint_distance_matrix", "normalized_jdm", "jdm_loss", "feature_loss",
           "generator_adversarial_loss", "discriminator_loss", "Stage1Weights", "Stage1Losses", "stage1_total"]


def joint_distance_matrix(positions: Tensor, eps: float = 1e-8) -> Tensor:
    """``(..., J, J)`` Euclidean distances between the joints of ``(..., J, 3)`` positions.

    ``sqrt(|d|² + eps)`` keeps the gradient finite on the diagonal (a plain norm has none at zero).
    """
    d = positions[..., :, None, :] - positions[..., None, :, :]
    return torch.sqrt((d * d).sum(-1) + eps)


def normalized_jdm(positions: Tensor) -> Tensor:
    """``(..., J, J)`` joint distance matrix with each row divided by its L1 norm."""
    D = joint_distance_matrix(positions)
    return D / D.sum(-1, keepdim=True)


def jdm_loss(positions_a: Tensor, positions_b: Tensor) -> Tensor:
    """L_jdm: ``||η(D_A) − η(D_B)||²`` per frame, averaged over frames. Positions ``(..., J, 3)``."""
    diff = normalized_jdm(positions_a) - normalized_jdm(positions_b)
    return (diff * diff).sum((-1, -2)).mean()


def feature_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """L_rec / L_cyc: squared error summed over a frame's entries ``(..., T, N, C)``, averaged over frames."""
    if predicted.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(predicted.shape)} vs {tuple(target.shape)}")
    d = predicted - target
    return (d * d).sum((-1, -2)).mean()


def generator_adversarial_loss(fake_logits: Tensor) -> Tensor:
    """L_adv for the generator: the non-saturating form of ``log(1 − F_γ(Q_B))`` (``−log F_γ(Q_B)``)."""
    return softplus(-fake_logits).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy of the discriminator: real → 1, generated → 0."""
    return softplus(-real_logits).mean() + softplus(fake_logits).mean()


@dataclass(frozen=True)
class Stage1Weights:
    """λ_r, λ_c, λ_a, λ_j of paper Eq. 2 (supplement: 10, 1, 0.1, 1)."""

    rec: float = 10.0
    cyc: float = 1.0
    adv: float = 0.1
    jdm: float = 1.0


@dataclass
class Stage1Losses:
    """The terms of one step (scalars) and their weighted sum ``total``."""

    rec: Tensor
    cyc: Tensor
    adv: Tensor
    jdm: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("total", "rec", "cyc", "adv", "jdm")}


def stage1_total(rec: Tensor, cyc: Tensor, adv: Tensor, jdm: Tensor,
                 weights: Stage1Weights = Stage1Weights()) -> Stage1Losses:
    """Weighted sum of the stage-I terms."""
    total = weights.rec * rec + weights.cyc * cyc + weights.adv * adv + weights.jdm * jdm
    return Stage1Losses(rec, cyc, adv, jdm, total)
