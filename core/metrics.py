"""Motion-quality metrics of DESIGN §5 that every stage and benchmark reports the same way.

Positions are ``(T, J, 3)`` in metres, Y up; for the foot metrics they are canonical 22-joint positions.
(Pen% lives with the geometry in core/geometry/penetration.py; JDM error with the losses in
core/retarget/losses.py.)
"""
from __future__ import annotations

import numpy as np

from .motion import FOOT_JOINTS
from .skeleton import CANONICAL_JOINTS

__all__ = ["acceleration", "jitter", "foot_contacts", "foot_skate"]

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
