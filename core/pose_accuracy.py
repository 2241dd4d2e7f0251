"""How far a recovered motion is from the truth: the pose benchmark's metrics (bench/bench_pose_accuracy.py).

Both motions are on the canonical 22-joint skeleton (DESIGN §2), so joints compare one to one. Conventions:
positions ``(T, 22, 3)`` metres; "root-relative" means the Hips joint subtracted per frame; angles in degrees.

* :func:`mpjpe`: mean per-joint position error of root-relative joints, the prediction first scaled to the
  truth's size (the caller's scale: a video gives no absolute size);
* :func:`pa_mpjpe`: the same after the best similarity transform per frame (rotation, scale, translation:
  Procrustes), which leaves only the pose's shape;
* :func:`joint_angles`: the angles users notice: head pitch (the head's forward axis above or below the
  horizontal), neck flexion, knee flexion and valgus (knee inward in the frontal plane), elbow flexion;
* :func:`best_lag`: the time shift that best matches two trajectories (a smoothing filter's lag shows here);
* :func:`planted` and :func:`contact_slide`: where the truth's feet are planted, and how far a prediction's feet
  travel over each of those contacts (the slide, without the frame-to-frame tremble that
  :func:`core.metrics.foot_skate` also counts);
* :func:`wrist_sides` and :func:`wrongly_crossed`: how far each wrist lies on its own side of the body's
  midline, and the share of frames where a prediction's wrist is past it while the truth's is not (issue 19: an
  uploaded character's hands crossed in front of the groin while the person's arms hung down);
* :func:`sole_heights`: how high each foot's sole is above the floor, from its ankle and toe joints, each less
  the height it stands at in its own rest pose (skeletons put those joints at different heights in a foot);
* :func:`added_skate`: the foot skate a prediction adds to the truth's own. The skate of the truth's contacts
  (:func:`core.metrics.foot_skate` with :func:`planted` contacts) is not zero for the truth itself: a contact
  admits feet slower than 20 cm/s, a heel rolls, a retargeted foot slides a little. On the pose_accuracy bench's
  tuning clips the truth scores 4.0 cm/s on it (7.4 on the walks, 5.5 on the CMU walk), so a perfect estimator
  would miss a 2 cm/s target there; this one scores the truth 0.

The joints are where each skeleton puts them: a character's rig and the pose stage's fitted skeleton place
hips and shoulders a little differently, so a perfect estimator still scores a few centimetres of MPJPE.
"""
from __future__ import annotations

import numpy as np

from .skeleton import CANONICAL_JOINTS

__all__ = ["mpjpe", "pa_mpjpe", "procrustes", "joint_angles", "ANGLES", "best_lag", "angle_between", "planted",
           "contact_slide", "added_skate", "wrist_sides", "wrongly_crossed", "sole_heights"]

_J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}
ANGLES = ("head_pitch", "neck", "knee_flexion", "knee_valgus", "elbow")


def _check(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (T, J, 3) arrays of one shape, got {pred.shape} and {truth.shape}")
    return pred, truth


def mpjpe(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance between corresponding joints of ``(T, J, 3)`` arrays (their units), NaN joints skipped."""
    pred, truth = _check(pred, truth)
    return float(np.nanmean(np.linalg.norm(pred - truth, axis=-1)))


def procrustes(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(T, J, 3)``: each frame of ``pred`` moved by the similarity transform (rotation, uniform scale,
    translation) that brings it closest to ``truth``'s frame in the least-squares sense (Umeyama)."""
    pred, truth = _check(pred, truth)
    mp, mt = pred.mean(axis=1, keepdims=True), truth.mean(axis=1, keepdims=True)
    X, Y = pred - mp, truth - mt
    U, S, Vt = np.linalg.svd(np.einsum("tji,tjk->tik", X, Y))  # (T, 3, 3) cross-covariance
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", U, Vt)))
    S[:, -1] *= d
    U[:, :, -1] *= d[:, None]
    R = np.einsum("tij,tjk->tik", U, Vt)  # X @ R ≈ Y / s
    scale = S.sum(axis=1) / np.maximum((X ** 2).sum(axis=(1, 2)), 1e-12)
    return scale[:, None, None] * np.einsum("tji,tik->tjk", X, R) + mt


def pa_mpjpe(pred: np.ndarray, truth: np.ndarray) -> float:
    """:func:`mpjpe` after :func:`procrustes` alignment of every frame."""
    return mpjpe(procrustes(pred, truth), truth)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors ``(..., 3)``, degrees (0 for parallel)."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def joint_angles(positions: np.ndarray, rotations: np.ndarray, up: np.ndarray = (0.0, 1.0, 0.0)
                 ) -> dict[str, np.ndarray]:
    """The angles users judge a pose by, per frame, degrees.

    Args:
        positions: ``(T, 22, 3)`` canonical joints. rotations: ``(T, 22, 3, 3)`` their world rotations (rest
            orientation included; at rest a canonical character faces +Z). up: the world's up axis.

    Returns:
        ``head_pitch (T,)``: elevation of the head's forward axis (positive: looking up).
        ``neck (T,)``: angle between the upper trunk (Spine2→Neck) and the neck (Neck→Head).
        ``knee_flexion (T, 2)``, ``elbow (T, 2)``: left, right; 0 for a straight limb.
        ``knee_valgus (T, 2)``: left, right; in the body's frontal plane (pelvis width × trunk up), the angle
        between thigh and shin, positive when the knee lies inside the hip–ankle line (knock-kneed).
    """
    P = np.asarray(positions, np.float64)
    up = _unit(np.asarray(up, np.float64))
    forward = rotations[:, _J["Head"]] @ np.array([0.0, 0.0, 1.0])
    out = {"head_pitch": np.degrees(np.arcsin(np.clip(_unit(forward) @ up, -1, 1))),
           "neck": angle_between(P[:, _J["Neck"]] - P[:, _J["Spine2"]], P[:, _J["Head"]] - P[:, _J["Neck"]])}
    trunk_up = _unit(P[:, _J["Neck"]] - P[:, _J["Hips"]])
    knees, valgus, elbows = [], [], []
    for side, other in (("Left", "Right"), ("Right", "Left")):
        hip, knee, ankle = (P[:, _J[f"{side}{n}"]] for n in ("UpLeg", "Leg", "Foot"))
        thigh, shin = knee - hip, ankle - knee
        knees.append(angle_between(thigh, shin))
        medial = P[:, _J[f"{other}UpLeg"]] - hip  # towards the body's middle
        medial = _unit(medial - (medial * trunk_up).sum(-1, keepdims=True) * trunk_up)

        def inward(v: np.ndarray) -> np.ndarray:  # the segment's angle from "straight down", inward positive
            return np.degrees(np.arctan2((v * medial).sum(-1), -(v * trunk_up).sum(-1)))

        valgus.append(inward(thigh) - inward(shin))
        shoulder, elbow, wrist = (P[:, _J[f"{side}{n}"]] for n in ("Arm", "ForeArm", "Hand"))
        elbows.append(angle_between(elbow - shoulder, wrist - elbow))
    out["knee_flexion"] = np.stack(knees, axis=1)
    out["knee_valgus"] = np.stack(valgus, axis=1)
    out["elbow"] = np.stack(elbows, axis=1)
    return out


def best_lag(pred: np.ndarray, truth: np.ndarray, most: int = 8) -> int:
    """The shift ``k`` (frames, ``|k| <= most``) minimising the distance between ``pred[t + k]`` and
    ``truth[t]`` (``(T, ...)`` arrays): positive when the prediction runs late."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    T = len(truth)
    best, best_err = 0, np.inf
    for k in range(-most, most + 1):
        a, b = (pred[k:], truth[:T - k]) if k >= 0 else (pred[:T + k], truth[-k:])
        if len(a) < T // 2:
            continue
        err = float(np.nanmean(np.linalg.norm((a - b).reshape(len(a), -1, 3), axis=-1)))
        if err < best_err:
            best, best_err = k, err
    return best


def planted(feet: np.ndarray, fps: float, rise: float = 0.02, speed: float = 0.2, window: float = 0.5
            ) -> np.ndarray:
    """``(T, N)`` where foot joints ``(T, N, 3)`` (Y up, metres) are planted: within ``rise`` metres of that
    joint's lowest height within ``window`` seconds either side and moving slower than ``speed`` m/s along the
    floor (a heel lifting, a toe swinging low, a retargeted foot sliding a little are not contacts).

    The lowest height is local, not the clip's: a retargeted mocap clip's floor can drift (CMU 02_01 on the
    bench's characters: the toes' planted height rises 3 -> 8 cm over 3 s), and against the clip's lowest height
    most of that walk's stances, feet still to 0-10 cm/s, were not contacts (19 % of the frames were; 51 %
    now). Half a second either side: a stance and its swing are both in view, and a drift of 2 cm/s stays
    within ``rise``. A foot held up still for longer than that would count as planted.
    """
    from scipy.ndimage import minimum_filter1d

    feet = np.asarray(feet, np.float64)
    n = 2 * max(1, int(round(window * fps))) + 1
    low = feet[..., 1] < minimum_filter1d(feet[..., 1], n, axis=0, mode="nearest") + rise
    v = np.linalg.norm(np.gradient(feet[..., [0, 2]], axis=0), axis=-1) * fps
    return low & (v < speed)


def contact_slide(feet: np.ndarray, contacts: np.ndarray, fps: float, min_frames: int = 3) -> float:
    """Mean speed over whole contacts, m/s: for each run of ``contacts (T, N)`` (``min_frames`` or more) of each
    foot joint ``(T, N, 3)``, its travel along the floor (X, Z) from the run's first to its last frame over that
    time. A foot trembling in place scores ~0 here; NaN when there is no contact."""
    feet, contacts = np.asarray(feet, np.float64), np.asarray(contacts, bool)
    speeds = []
    for j in range(contacts.shape[1]):
        c = np.concatenate([[False], contacts[:, j], [False]])
        starts, ends = np.flatnonzero(~c[:-1] & c[1:]), np.flatnonzero(c[:-1] & ~c[1:])
        for a, b in zip(starts, ends):
            if b - a >= min_frames:
                speeds.append(np.linalg.norm(feet[b - 1, j, [0, 2]] - feet[a, j, [0, 2]]) * fps / (b - 1 - a))
    return float(np.mean(speeds)) if speeds else float("nan")


def added_skate(pred_feet: np.ndarray, truth_feet: np.ndarray, contacts: np.ndarray, fps: float) -> float:
    """Mean horizontal speed of the predicted foot joints beyond the truth's own, m/s, over frame pairs where
    ``contacts (T, N)`` holds in both frames (``(T, N, 3)`` feet, Y up): ``max(0, |v_pred| - |v_truth|)``.
    0 for the truth itself and for a prediction holding still where the truth slid; NaN without contacts."""
    pred, truth = _check(pred_feet, truth_feet)
    both = np.asarray(contacts, bool)[1:] & np.asarray(contacts, bool)[:-1]
    if not both.any():
        return float("nan")
    v_p = np.linalg.norm(np.diff(pred[..., [0, 2]], axis=0), axis=-1) * fps
    v_t = np.linalg.norm(np.diff(truth[..., [0, 2]], axis=0), axis=-1) * fps
    return float(np.maximum(v_p - v_t, 0.0)[both].mean())


def wrist_sides(positions: np.ndarray) -> np.ndarray:
    """``(T, 2)`` metres each wrist (left, right) lies on its own side of the body's midline: along the pelvis's
    width axis (RightUpLeg→LeftUpLeg for the left wrist, the reverse for the right), from the hips' midpoint.
    Negative: the wrist is past the midline, over the other half of the body. ``positions``: ``(T, 22, 3)``."""
    P = np.asarray(positions, np.float64)
    left_hip, right_hip = P[:, _J["LeftUpLeg"]], P[:, _J["RightUpLeg"]]
    width, middle = _unit(left_hip - right_hip), 0.5 * (left_hip + right_hip)
    return np.stack([((P[:, _J["LeftHand"]] - middle) * width).sum(-1),
                     -((P[:, _J["RightHand"]] - middle) * width).sum(-1)], axis=1)


def wrongly_crossed(pred: np.ndarray, truth: np.ndarray, margin: float = 0.02) -> float:
    """Share of frames (0..1) where a predicted wrist is more than ``margin`` metres past the body's midline
    (:func:`wrist_sides`) while the truth's wrist is on its own side. Crossings the truth has too (a punch across
    the body) do not count; the margin keeps a hand resting at the middle from flickering in and out.
    ``pred``, ``truth``: ``(T, 22, 3)``, each in its own axes (the measure is in each body's own frame)."""
    pred, truth = _check(pred, truth)
    sp, st = wrist_sides(pred), wrist_sides(truth)
    return float(((sp < -margin) & (st > 0.0)).any(axis=1).mean())


_FEET = ((_J["LeftFoot"], _J["LeftToeBase"]), (_J["RightFoot"], _J["RightToeBase"]))


def sole_heights(positions: np.ndarray, rest: np.ndarray, floor: float | None = None) -> np.ndarray:
    """``(T, 2)`` each foot's (left, right) sole above the floor (Y = 0), metres, from ``(T, 22, 3)`` positions:
    the lower of its ankle's and toe's heights, each less the height that joint has standing flat, read from the
    ``(22, 3)`` rest pose above ``floor`` (the rest pose's ground: a mesh's lowest point; by default the lowest
    of the four foot joints).

    Why not the joints' own heights: skeletons put them at different points of a foot. The bench's rigs have
    ToeBase at the ball of the foot, 2.6-3.6 cm above the sole standing, and the ankle 7-10 cm up; the pose
    stage's skeleton has its toe joint at the toe's tip, on the floor, and the ankle about 7 cm up. Compared as
    they are, a foot planted flat on the floor in both read 3 cm below the truth's.
    """
    positions, rest = np.asarray(positions, np.float64), np.asarray(rest, np.float64)
    joints = [j for foot in _FEET for j in foot]
    ground = rest[joints, 1].min() if floor is None else float(floor)
    standing = rest[:, 1] - ground  # (22,)
    return np.stack([np.minimum(*(positions[:, j, 1] - standing[j] for j in foot)) for foot in _FEET], axis=-1)
