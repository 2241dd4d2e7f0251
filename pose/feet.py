"""Planted feet stay put: each contact's foot is held on one spot of the floor and the leg reaches it.

Why the legs and not only the root: MediaPipe's 3D pose is short of depth, so a person walking towards the camera
takes strides a third as long as they are (measured on the pose_accuracy bench: the foot's travel relative to the
hips 0.21-0.37 m against 0.68 m), while the root path, from the person's size and place in the image, travels at the
right speed. Moving the root to hold the feet would slow the walk to the short strides; holding the feet with the
root left alone slid them at nearly walking speed. So the landmarks of each planted leg are moved: the foot
(heel, ankle, toe) is translated so its centre stays on the contact's spot at floor height, and the knee is
placed by two-bone IK (thigh and shin keep their lengths, the knee stays in the bend plane it was seen in).
Between contacts the foot's shift is interpolated, so the swing carries the foot from one spot to the next.

Conventions: world landmarks ``(T, 33, 3)`` in metres, Y up, floor at y = 0 (:mod:`pose.root`); contacts
``(T, 2)`` left, right.
"""
from __future__ import annotations

import numpy as np

from .estimators import LM
from .fit import HIP_JOINT_SHARE, BodyLengths

__all__ = ["plant_legs", "foot_shifts", "contact_runs"]

_SIDES = ("left", "right")


def contact_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` frame ranges where ``flags (T,)`` is True."""
    v = np.concatenate([[0], np.asarray(flags, bool).astype(np.int8), [0]])
    d = np.diff(v)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    return v - np.sum(v * axis, axis=-1, keepdims=True) * axis


def foot_shifts(P: np.ndarray, contacts: np.ndarray, lengths: BodyLengths) -> np.ndarray:
    """``(T, 2, 3)`` how far each foot must move to stand on its contact's spot (interpolated between contacts).

    The spot of a contact: the median over it of the foot's centre (heel, ankle, toe) along the floor, at the
    height where the foot's lowest point (toe, or the sole under the ankle) touches the floor.
    """
    T = len(P)
    out = np.zeros((T, 2, 3))
    t = np.arange(T)
    for f, side in enumerate(_SIDES):
        ankle, heel, toe = (P[:, LM[f"{side}_{n}"]] for n in ("ankle", "heel", "foot_index"))
        centre = (ankle + heel + toe) / 3
        sole = np.minimum(ankle[:, 1] - lengths.ankle_height, toe[:, 1])
        have = np.zeros(T, bool)
        d = np.zeros((T, 3))
        for s, e in contact_runs(contacts[:, f]):
            spot = np.median(centre[s:e], axis=0)
            d[s:e, 0] = spot[0] - centre[s:e, 0]
            d[s:e, 2] = spot[2] - centre[s:e, 2]
            d[s:e, 1] = -sole[s:e]
            have[s:e] = True
        if have.any():
            for c in range(3):
                out[:, f, c] = np.interp(t, t[have], d[have, c])
    return out


def _hip_joints(P: np.ndarray) -> list[np.ndarray]:
    """Where the fit puts the hip joints (:data:`pose.fit.HIP_JOINT_SHARE`), left and right, ``(T, 3)`` each."""
    hips = 0.5 * (P[:, LM["left_hip"]] + P[:, LM["right_hip"]])
    return [hips + HIP_JOINT_SHARE * (P[:, LM[f"{side}_hip"]] - hips) for side in _SIDES]


def _knee_flexion(P: np.ndarray, side: str) -> np.ndarray:
    """``(T,)`` the knee's flexion seen in the landmarks, radians (0: straight)."""
    hip, knee, ankle = (P[:, LM[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
    c = np.sum(_unit(knee - hip) * _unit(ankle - knee), axis=-1)
    return np.arccos(np.clip(c, -1.0, 1.0))


def hip_drop(P: np.ndarray, contacts: np.ndarray, lengths: BodyLengths, shifts: np.ndarray, fps: float,
             most: float = 0.15) -> np.ndarray:
    import os
    mode = os.environ.get("DROP_MODE", "mean")
    T = len(P)
    a, b = lengths.thigh, lengths.shin
    need = np.full((T, 2), np.nan)
    for f, (side, hip) in enumerate(zip(_SIDES, _hip_joints(P))):
        target = P[:, LM[f"{side}_ankle"]] + shifts[:, f]
        bend = _knee_flexion(P, side)
        seen = np.sqrt(a * a + b * b + 2 * a * b * np.cos(bend))
        horiz = np.linalg.norm((target - hip)[:, [0, 2]], axis=-1)
        height = hip[:, 1] - target[:, 1]
        drop = height - np.sqrt(np.maximum(seen ** 2 - horiz ** 2, 0.0))
        need[:, f] = np.where(contacts[:, f], np.clip(drop, -most if os.environ.get("RAISE") else 0.0, most), np.nan)
    with np.errstate(all="ignore"):
        d = np.nanmax(need, axis=1) if mode == "max" else np.nanmean(need, axis=1)
    have = np.isfinite(d)
    if not have.any():
        return np.zeros(T)
    t = np.arange(T)
    d = np.interp(t, t[have], d[have])
    n = max(5, int(round(float(os.environ.get("DROP_S", "0.2")) * fps)))
    if T > n:
        from scipy.signal import savgol_filter
        d = savgol_filter(d, n + (n + 1) % 2, 2)
    return d if os.environ.get("RAISE") else np.maximum(d, 0.0)


def plant_legs(P: np.ndarray, contacts: np.ndarray, lengths: BodyLengths, shifts: np.ndarray | None = None,
               fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World landmarks with each foot moved by its shift and the knee placed so the leg reaches it.

    Args:
        P: ``(T, 33, 3)`` world landmarks (Y up, floor y = 0). contacts: ``(T, 2)`` planted flags.
        lengths: the person's measurements (thigh and shin for the IK, the ankle's height for the floor).
        shifts: ``(T, 2, 3)`` foot shifts; default :func:`foot_shifts`.

    Returns:
        The new ``(T, 33, 3)`` landmarks and ``(T, 2)`` how far each ankle is short of its target, metres (a leg
        too short to reach stops straight, pointing at it).
    """
    P = np.asarray(P, dtype=np.float64).copy()
    shifts = foot_shifts(P, contacts, lengths) if shifts is None else shifts
    if fps is not None:
        P[..., 1] -= hip_drop(P, contacts, lengths, shifts, fps)[:, None]
        shifts = foot_shifts(P, contacts, lengths)
    short = np.zeros((len(P), 2))
    a, b = lengths.thigh, lengths.shin  # the refit gives the legs these lengths anyway
    for f, (side, hip) in enumerate(zip(_SIDES, _hip_joints(P))):
        knee, ankle = P[:, LM[f"{side}_knee"]], P[:, LM[f"{side}_ankle"]]
        heel, toe = P[:, LM[f"{side}_heel"]], P[:, LM[f"{side}_foot_index"]]
        target = ankle + shifts[:, f]
        reach = target - hip
        dist = np.linalg.norm(reach, axis=-1)
        d = np.clip(dist, abs(a - b) + 1e-3, a + b - 1e-4)
        u = _unit(reach)
        # The knee bends where it was seen; a straight leg bends towards the toes (knees bend forward).
        bend = _perp(knee - hip, u)
        straight = np.linalg.norm(bend, axis=-1, keepdims=True) < 0.01
        v = _unit(np.where(straight, _perp(toe - heel, u), bend))
        along = (a * a - b * b + d * d) / (2 * d)
        out = np.sqrt(np.maximum(a * a - along * along, 0.0))
        new_ankle = hip + u * d[:, None]
        new_knee = hip + u * along[:, None] + v * out[:, None]
        moved = new_ankle - ankle
        for name, p in (("knee", new_knee), ("ankle", new_ankle), ("heel", heel + moved),
                        ("foot_index", toe + moved)):
            P[:, LM[f"{side}_{name}"]] = p
        short[:, f] = np.maximum(dist - d, 0.0)
    return P, short
