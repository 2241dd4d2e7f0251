"""Fitting the canonical 22-joint skeleton to 3D landmarks: the person's bone lengths, then IK, frame by frame.

Input: ``(T, 33, 3)`` BlazePose landmarks (see :mod:`pose.estimators`) in *world axes* (metres, Y up, the
person facing +Z when facing the camera), centred anywhere. Output: world rotations of the 22 canonical joints
whose rest is the canonical T-pose (+Z forward, Y up, arms along ±X), on a skeleton with the person's own,
constant bone lengths (:func:`person_offsets`), and the resulting local quaternions (sign-continuous).

The body model (what the fit assumes, and what :func:`landmarks_from_pose` generates for tests):

* Hips sits midway between the hip landmarks, the UpLegs 85 % of the way out to them (:data:`HIP_JOINT_SHARE`);
  Arm joints on the shoulder landmarks,
  ForeArm on the elbows, Hand on the wrists, Leg on the knees, Foot on the ankles, ToeBase on the foot-index
  (toe) landmarks, Head midway between the ears.
* The spine bends evenly: Spine, Spine1 and Spine2 each turn by a third of the rotation from the pelvis to
  the thorax. The pelvis frame's x axis is the hip line, the thorax frame's the shoulder line; their two
  remaining pitch angles are solved per frame (Gauss-Newton) so the shoulders' midpoint lands where it was seen,
  with a cost on bending (only the hips-shoulders distance tells a bend from a tilt, and it is noisy).
  The shoulder girdle (Left/RightShoulder) then aims at the shoulder landmarks (shrugs).
* Each bone points exactly at its child's landmark from where its joint actually is (aiming from the fitted
  position, not from the landmark, keeps errors from adding up along a chain).
* Twist: upper arms and thighs take their twist from the elbow/knee bend plane (hinge joints; when nearly
  straight, from the parent frame for arms and from the foot's direction for legs, blended by the bend angle so
  nothing pops); hands from wrist/index/pinky, with half the hand's twist about the forearm moved into the
  forearm (no candy-wrapper wrists); feet from heel/toe/ankle; the head from the ears and nose.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core.rotations import matrix_to_quat, quat_between, quat_make_continuous, quat_to_matrix
from core.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS

from .estimators import LM

__all__ = ["BodyLengths", "measure_lengths", "person_offsets", "FitResult", "fit_skeleton", "joint_targets",
           "landmarks_from_pose", "TARGET_JOINTS", "SPINE_FRACTIONS", "HEAD_PITCH_KEPT", "HEAD_PITCH_SECONDS", "level_head"]

J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}
SPINE_FRACTIONS = (0.23, 0.27, 0.27, 0.23)  # Hips->Spine->Spine1->Spine2->shoulder line, of the torso length
NECK_ABOVE_SHOULDERS = 0.12  # Neck joint above the shoulder line, fraction of the torso length
CLAVICLE_SHARE = 0.25  # LeftShoulder->LeftArm is the rest of half the shoulder width
# MediaPipe's ear->nose line points this far below the head's forward axis. Set where the head pitch error of
# `python -m bench.run pose_accuracy` has no mean bias over its tuning cases (it was 20°, from anatomy: heads came
# out 14° looking up on average; the shared treadmill walk +7°, now -5°). The mouth->eyes line as a second cue, or
# instead of it, was worse there (it leans the head down when seen from the side).
NOSE_PITCH = np.radians(8.0)
# The head's pitch is read from five face points of the body model, a few pixels apart, and it swings far more than
# a head does: on the pose_accuracy tuning cases the fitted head pitch varied 2-8x as much as the truth's (a
# standard deviation of 23 degrees against 3 on the bow seen from above), and the held-out run from a panning
# camera came out 26 degrees looking down throughout. So the pitch read is smoothed over time (a Gaussian of
# HEAD_PITCH_SECONDS) and a share of it kept about the horizontal (HEAD_PITCH_KEPT; people mostly keep their eyes
# level). Head pitch error (cached MediaPipe replay), tuning / held out: as read 10.1 / 16.9 degrees; smoothed
# 0.17 s 8.8 / 16.1; kept 3/4 7.9 / 14.0, a half 6.2 / 11.1; both (kept) 6.9 / 13.4. A real look down costs
# what is not kept: the shared basketball clip's player watches the ball, about 40 degrees down as read (-41 mean),
# -31 with 3/4 kept, -20 with a half; the bench's heads all look level, so it cannot measure that side. The
# camera's height as a cue (the low camera's heads read looking up, the high one's down) did not hold across the
# cases, nor did pitching towards the trunk's lean.
# Runs read lower still, from any camera: on ten rendered runs (cached replay) MediaPipe's ear-to-nose line lies 4-27
# degrees (mean 15) below the truth's head in the camera, on five walks within 8 (mean 4), more the more the trunk
# leans (8-20 degrees on the runs, 5-7 on the walks): the face follows the leaning trunk where a runner holds the
# head up. Head pitch bias on the seven runs filmed by a panning camera -4 to -17 degrees, from the front -7, from
# 30 degrees -12: the pan is not the cause. Not corrected here (the fitted upper trunk leans up to 22 degrees less
# than the truth's on those runs, so its lean is no measure of it).
HEAD_PITCH_KEPT = 0.75
HEAD_PITCH_SECONDS = 0.17
FOREARM_TWIST_SHARE = 0.5
# The hip joints sit this share of the way from the hips' midpoint to MediaPipe's hip landmarks, which lie on the
# outside of the hips (on a rendered Ava they were 17 % wider apart than the rig's hip joints): with the joints on
# the landmarks the thighs slanted inwards and the knees looked knocked (pose_accuracy bench: valgus bias +7° ->
# +4°, mean |error| 9.0 -> 8.4° tuning, 11.7 -> 10.9° held out; fit error on the real clips 1.74-1.81 -> 1.71-1.79 cm).
HIP_JOINT_SHARE = 0.85
BEND_COST = 0.1  # spine bend penalty, metres of shoulder miss per radian per metre of torso (see _torso)  # of the hand's twist about the forearm, moved into the forearm

# Joints with a landmark of their own: the fit error is measured on these.
TARGET_JOINTS: dict[str, tuple[str, ...]] = {
    "Hips": ("left_hip", "right_hip"), "LeftUpLeg": ("left_hip",), "RightUpLeg": ("right_hip",),
    "LeftLeg": ("left_knee",), "RightLeg": ("right_knee",), "LeftFoot": ("left_ankle",),
    "RightFoot": ("right_ankle",), "LeftToeBase": ("left_foot_index",), "RightToeBase": ("right_foot_index",),
    "LeftArm": ("left_shoulder",), "RightArm": ("right_shoulder",), "LeftForeArm": ("left_elbow",),
    "RightForeArm": ("right_elbow",), "LeftHand": ("left_wrist",), "RightHand": ("right_wrist",),
    "Head": ("left_ear", "right_ear"),
}


# ----------------------------------------------------------------------------------------------------------
# Small vectorised rotation helpers (numpy, (T, 3) vectors, (T, 3, 3) matrices acting on column vectors)
# ----------------------------------------------------------------------------------------------------------

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Component of ``v`` perpendicular to unit ``axis``."""
    return v - np.sum(v * axis, axis=-1, keepdims=True) * axis


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frames ``(..., 3, 3)``: columns a, b made perpendicular to a, a x b."""
    a = _unit(a)
    b = _unit(_perp(b, a))
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def _pair_rotation(a_rest, b_rest, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations taking rest directions (a_rest, b_rest) onto (a, b): a exactly, b as closely as possible."""
    a_rest = np.broadcast_to(np.asarray(a_rest, float), a.shape)
    b_rest = np.broadcast_to(np.asarray(b_rest, float), b.shape)
    return _frame(a, b) @ np.swapaxes(_frame(a_rest, b_rest), -1, -2)


def _rot_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation matrices ``(..., 3, 3)`` taking directions ``u`` onto ``v`` ``(..., 3)``."""
    q = quat_between(torch.as_tensor(np.asarray(u, float)), torch.as_tensor(np.asarray(v, float)))
    return quat_to_matrix(q).numpy()


def _aim(hint: np.ndarray, offset, target: np.ndarray) -> np.ndarray:
    """World rotations: ``hint (T, 3, 3)`` swung (no twist) so ``hint @ offset`` points along ``target (T, 3)``."""
    current = hint @ np.asarray(offset, float)
    return _rot_between(current, target) @ hint


def _bend_weight(a: np.ndarray, b: np.ndarray, lo: float = 15.0, hi: float = 40.0) -> np.ndarray:
    """0 when the angle between bones ``a`` and ``b`` is below ``lo`` degrees, 1 above ``hi``, smooth between."""
    ang = np.degrees(np.arccos(np.clip(np.sum(_unit(a) * _unit(b), -1), -1.0, 1.0)))
    x = np.clip((ang - lo) / (hi - lo), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _blend_about(axis: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Unit direction ``a`` turned about unit ``axis`` by the fraction ``w (T, 1)`` of its angle to ``b``.

    Blending by angle, not by adding vectors: when ``a`` and ``b`` point opposite ways their sum passes
    through zero and the result would flip; a turn stays continuous.
    """
    a, b = _unit(_perp(a, axis)), _unit(_perp(b, axis))
    angle = np.arctan2(np.sum(np.cross(a, b) * axis, -1), np.sum(a * b, -1))[:, None] * w
    return a * np.cos(angle) + np.cross(axis, a) * np.sin(angle)


def _mid(P: np.ndarray, a: str, b: str) -> np.ndarray:
    return 0.5 * (P[..., LM[a], :] + P[..., LM[b], :])


# ----------------------------------------------------------------------------------------------------------
# Bone lengths
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BodyLengths:
    """The person's measurements, metres (medians over the clip; left and right averaged).

    hip_width, shoulder_width: between the hip / shoulder landmarks. torso: hips' midpoint to shoulders'
    midpoint. upper_arm, forearm, thigh, shin: joint to joint. ankle_height: ankle above the heel-toe line.
    foot_length: along that line from under the ankle to the toe. neck_head: Neck joint to the ears' midpoint.
    Face and hand sizes are used only to generate landmarks (:func:`landmarks_from_pose`).
    """

    hip_width: float = 0.2
    shoulder_width: float = 0.34
    torso: float = 0.5
    upper_arm: float = 0.28
    forearm: float = 0.26
    thigh: float = 0.43
    shin: float = 0.42
    ankle_height: float = 0.07
    foot_length: float = 0.15
    neck_head: float = 0.16
    heel_back: float = 0.06
    ear_half_width: float = 0.075
    nose_forward: float = 0.11
    knuckles: float = 0.09
    knuckle_half_width: float = 0.035

    @property
    def height(self) -> float:
        """Standing height estimate: floor to ears, plus the top of the head (about 0.12 m above the ears)."""
        return (self.ankle_height + self.shin + self.thigh + self.torso * (1 + NECK_ABOVE_SHOULDERS)
                + self.neck_head + 0.12)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(values) & (weights > 0)
    if not ok.any():
        raise ValueError("no usable measurement")
    v, w = values[ok], weights[ok]
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _foot_geometry(P: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: ankle height above the heel-toe line, length from under the ankle to the toe, heel behind it."""
    A, H, Tt = P[:, LM[f"{side}_ankle"]], P[:, LM[f"{side}_heel"]], P[:, LM[f"{side}_foot_index"]]
    u = _unit(Tt - H)
    s = np.sum((A - H) * u, -1)
    proj = H + s[:, None] * u
    return np.linalg.norm(A - proj, axis=-1), np.linalg.norm(Tt - proj, axis=-1), s


def measure_lengths(P: np.ndarray, weights: np.ndarray | None = None) -> BodyLengths:
    """Per-clip bone lengths from ``(T, 33, 3)`` metric landmarks, ``weights (T, 33)`` visibility (optional)."""
    P = np.asarray(P, dtype=np.float64)
    W = np.ones(P.shape[:2]) if weights is None else np.asarray(weights, dtype=np.float64)
    W = np.where(W > 0.5, W, 1e-3)  # occluded landmarks count, but barely

    def dist(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        return np.linalg.norm(P[:, LM[a]] - P[:, LM[b]], axis=-1), np.minimum(W[:, LM[a]], W[:, LM[b]])

    def both(a: str, b: str) -> float:
        dl, wl = dist(f"left_{a}", f"left_{b}")
        dr, wr = dist(f"right_{a}", f"right_{b}")
        return _weighted_median(np.concatenate([dl, dr]), np.concatenate([wl, wr]))

    hips = dist("left_hip", "right_hip")
    shoulders = dist("left_shoulder", "right_shoulder")
    torso = np.linalg.norm(_mid(P, "left_shoulder", "right_shoulder") - _mid(P, "left_hip", "right_hip"), axis=-1)
    torso_w = np.min(W[:, [LM["left_shoulder"], LM["right_shoulder"], LM["left_hip"], LM["right_hip"]]], axis=1)
    feet = [_foot_geometry(P, s) for s in ("left", "right")]
    foot_w = np.concatenate([np.min(W[:, [LM[f"{s}_ankle"], LM[f"{s}_heel"], LM[f"{s}_foot_index"]]], axis=1)
                             for s in ("left", "right")])
    ears = dist("left_ear", "right_ear")
    ear_mid = _mid(P, "left_ear", "right_ear")
    nose = np.linalg.norm(P[:, LM["nose"]] - ear_mid, axis=-1)
    knuckles = [np.linalg.norm(_mid(P, f"{s}_index", f"{s}_pinky") - P[:, LM[f"{s}_wrist"]], axis=-1)
                for s in ("left", "right")]
    # The ankle->toe bone: its length measured directly (what the fit error sees), its slope from the foot's
    # heel-toe line (the part the heel landmark tells).
    ah = _weighted_median(np.concatenate([feet[0][0], feet[1][0]]), foot_w)
    fl = _weighted_median(np.concatenate([feet[0][1], feet[1][1]]), foot_w)
    toe_d = [np.linalg.norm(P[:, LM[f"{s}_foot_index"]] - P[:, LM[f"{s}_ankle"]], axis=-1) for s in ("left", "right")]
    k = _weighted_median(np.concatenate(toe_d), foot_w) / max(np.hypot(ah, fl), 1e-6)
    return BodyLengths(
        hip_width=_weighted_median(*hips), shoulder_width=_weighted_median(*shoulders),
        torso=_weighted_median(torso, torso_w), upper_arm=both("shoulder", "elbow"), forearm=both("elbow", "wrist"),
        thigh=both("hip", "knee"), shin=both("knee", "ankle"),
        ankle_height=k * ah, foot_length=k * fl,
        heel_back=_weighted_median(np.concatenate([feet[0][2], feet[1][2]]), foot_w),
        ear_half_width=0.5 * _weighted_median(*ears),
        nose_forward=_weighted_median(nose, W[:, LM["nose"]]),
        knuckles=_weighted_median(np.concatenate(knuckles), np.ones(2 * len(P))),
    )


def person_offsets(L: BodyLengths) -> np.ndarray:
    """``(22, 3)`` canonical T-pose offsets for a person (floor at y = 0 under the toes; see the module doc)."""
    f0, f1, f2, f3 = SPINE_FRACTIONS
    o = {
        "Hips": (0, L.ankle_height + L.shin + L.thigh, 0), "Spine": (0, f0 * L.torso, 0),
        "Spine1": (0, f1 * L.torso, 0), "Spine2": (0, f2 * L.torso, 0),
        "Neck": (0, (f3 + NECK_ABOVE_SHOULDERS) * L.torso, 0), "Head": (0, L.neck_head, 0),
        "LeftShoulder": (CLAVICLE_SHARE * L.shoulder_width / 2, f3 * L.torso, 0),
        "LeftArm": ((1 - CLAVICLE_SHARE) * L.shoulder_width / 2, 0, 0), "LeftForeArm": (L.upper_arm, 0, 0),
        "LeftHand": (L.forearm, 0, 0), "LeftUpLeg": (HIP_JOINT_SHARE * L.hip_width / 2, 0, 0),
        "LeftLeg": (0, -L.thigh, 0),
        "LeftFoot": (0, -L.shin, 0), "LeftToeBase": (0, -L.ankle_height, L.foot_length),
    }
    out = np.zeros((22, 3))
    for k, name in enumerate(CANONICAL_JOINTS):
        x, y, z = o[name.replace("Right", "Left")]
        out[k] = (-x if name.startswith("Right") else x, y, z)
    return out


def joint_targets(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the body model puts the joints in :data:`TARGET_JOINTS` among ``(..., 33, D)`` landmarks (3D, or
    2D pixels): ``(..., 22, D)`` (NaN elsewhere) and a mask. The hip joints sit :data:`HIP_JOINT_SHARE` of the
    way from the hips' midpoint to the hip landmarks."""
    P = np.asarray(P, dtype=np.float64)
    out = np.full(P.shape[:-2] + (22, P.shape[-1]), np.nan)
    mask = np.zeros(22, bool)
    for name, lms in TARGET_JOINTS.items():
        out[..., J[name], :] = np.mean([P[..., LM[n], :] for n in lms], axis=0)
        mask[J[name]] = True
    hips = out[..., J["Hips"], :]
    for side in ("Left", "Right"):
        out[..., J[f"{side}UpLeg"], :] = hips + HIP_JOINT_SHARE * (out[..., J[f"{side}UpLeg"], :] - hips)
    return out, mask


# ----------------------------------------------------------------------------------------------------------
# The fit
# ----------------------------------------------------------------------------------------------------------

@dataclass
class FitResult:
    """A fitted clip.

    offsets: ``(22, 3)`` the person's canonical T-pose offsets (see :func:`person_offsets`).
    rotations: ``(T, 22, 4)`` local quaternions (w, x, y, z), sign-continuous, relative to the T-pose.
    world_rotations: ``(T, 22, 3, 3)``. positions: ``(T, 22, 3)`` fitted joints (same frame as the input).
    targets: ``(T, 22, 3)`` landmark targets (NaN for joints without one). error: ``(T, 22)`` distances, metres.
    """

    lengths: BodyLengths
    offsets: np.ndarray
    rotations: np.ndarray
    world_rotations: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    error: np.ndarray

    @property
    def mean_error(self) -> float:
        """Mean distance between fitted joints and their landmarks, metres."""
        return float(np.nanmean(self.error))


def _spine_chain(Wp: np.ndarray, Wt: np.ndarray, hips: np.ndarray, offsets: np.ndarray
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """World rotations and positions of Spine, Spine1, Spine2 (even bend from pelvis ``Wp`` to thorax ``Wt``)."""
    rel = np.swapaxes(Wp, -1, -2) @ Wt
    step = Rotation.from_rotvec(Rotation.from_matrix(rel).as_rotvec() / 3.0).as_matrix()
    rots, pos = [], []
    R, p = Wp, hips
    for k in (J["Spine"], J["Spine1"], J["Spine2"]):
        p = p + R @ offsets[k]  # parent's rotation carries the offset
        R = R @ step
        rots.append(R)
        pos.append(p)
    return rots, pos


def _torso(P: np.ndarray, offsets: np.ndarray, iterations: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis and thorax world rotations ``(T, 3, 3)`` so the even-bend spine reaches the shoulders' midpoint."""
    hips = _mid(P, "left_hip", "right_hip")
    shoulders = _mid(P, "left_shoulder", "right_shoulder")
    up = shoulders - hips
    xp = _unit(P[:, LM["left_hip"]] - P[:, LM["right_hip"]])
    xt = _unit(P[:, LM["left_shoulder"]] - P[:, LM["right_shoulder"]])
    Fp, Ft = _frame(xp, up), _frame(xt, up)  # columns x, up, forward; pitch 0 = up along the torso chord
    top = np.array([0.0, offsets[J["LeftShoulder"], 1], 0.0])

    def frames(phi: np.ndarray, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Rp = Rotation.from_rotvec(xp * phi[:, None]).as_matrix() @ Fp
        Rt = Rotation.from_rotvec(xt * psi[:, None]).as_matrix() @ Ft
        return Rp, Rt

    torso = np.linalg.norm(top) + sum(np.linalg.norm(offsets[J[n]]) for n in ("Spine", "Spine1", "Spine2"))

    def residual(phi: np.ndarray, psi: np.ndarray) -> np.ndarray:
        # Only the chord's length tells a bend from a tilt, and a chord 2 % short already takes a 25 degree
        # bend: so bending costs BEND_COST x torso per radian, which keeps landmark noise from bending the
        # spine while a real bow (a much shorter chord) still bends it.
        Rp, Rt = frames(phi, psi)
        _, pos = _spine_chain(Rp, Rt, hips, offsets)
        miss = pos[-1] + Rt @ top - shoulders
        return np.concatenate([miss, (BEND_COST * torso * (phi - psi))[:, None]], axis=-1)

    T = len(P)
    x = np.zeros((T, 2))
    eps = 1e-6
    for _ in range(iterations):
        r = residual(x[:, 0], x[:, 1])
        Jm = np.stack([(residual(x[:, 0] + eps, x[:, 1]) - r) / eps,
                       (residual(x[:, 0], x[:, 1] + eps) - r) / eps], axis=-1)  # (T, 4, 2)
        JtJ = np.swapaxes(Jm, -1, -2) @ Jm + 1e-6 * np.eye(2)
        step = np.linalg.solve(JtJ, (np.swapaxes(Jm, -1, -2) @ r[..., None]))[..., 0]
        x = x - np.clip(step, -0.5, 0.5)
        if np.abs(step).max() < 1e-10:
            break
    return frames(x[:, 0], x[:, 1])


def level_head(head: np.ndarray, kept: float, sigma: float = 0.0) -> np.ndarray:
    """Head world rotations ``(T, 3, 3)`` (rest: facing +Z, Y up) pitched so the forward axis's elevation above the
    horizontal is ``kept`` times its Gaussian smoothing over ``sigma`` frames (0: each frame's own); the heading and
    the roll about the forward axis stay."""
    if not 0.0 <= kept <= 1.0:
        raise ValueError(f"kept must be within [0, 1], got {kept}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 frames, got {sigma}")
    from scipy.ndimage import gaussian_filter1d

    forward = head @ np.array([0.0, 0.0, 1.0])
    level = np.stack([forward[:, 0], np.zeros(len(forward)), forward[:, 2]], axis=-1)
    level = np.where(np.linalg.norm(level, axis=-1, keepdims=True) > 1e-6, _unit(level), [0.0, 0.0, 1.0])
    elevation = np.arcsin(np.clip(_unit(forward)[:, 1], -1.0, 1.0))
    if sigma > 0:
        elevation = gaussian_filter1d(elevation, sigma, mode="nearest")
    elevation = kept * elevation
    wanted = np.cos(elevation)[:, None] * level + np.sin(elevation)[:, None] * np.array([0.0, 1.0, 0.0])
    return _rot_between(forward, wanted) @ head


def fit_skeleton(P: np.ndarray, weights: np.ndarray | None = None, lengths: BodyLengths | None = None,
                 head_pitch_kept: float = 1.0, head_pitch_sigma: float = 0.0) -> FitResult:
    """Fit the canonical skeleton to ``(T, 33, 3)`` world-axis landmarks (see the module docstring).

    Args:
        weights: ``(T, 33)`` visibility, used for the bone-length medians.
        lengths: use these measurements instead of measuring the clip.
        head_pitch_kept, head_pitch_sigma: the head's pitch read from the face landmarks is smoothed over
            ``head_pitch_sigma`` frames and this share of it kept, about the horizontal (1 and 0: as read; the pose
            stage passes :data:`HEAD_PITCH_KEPT` and :data:`HEAD_PITCH_SECONDS`, see there; :func:`level_head`).
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 3 or P.shape[1:] != (33, 3):
        raise ValueError(f"landmarks must be (T, 33, 3), got {P.shape}")
    if not np.isfinite(P).all():
        raise ValueError("landmarks contain NaN: fill the gaps first (pose.clean.fill_gaps)")
    T = len(P)
    L = lengths or measure_lengths(P, weights)
    off = person_offsets(L)
    Wp, Wt = _torso(P, off)
    hips = _mid(P, "left_hip", "right_hip")
    if lengths is None:
        # The hips-to-shoulders chord shortens when the spine bends: re-measure the torso as the chord over the
        # fitted chain's chord for a unit torso, and solve again (converges in a couple of rounds).
        chord = np.linalg.norm(_mid(P, "left_shoulder", "right_shoulder") - hips, axis=-1)
        tw = np.ones(T) if weights is None else np.min(weights[:, [LM["left_shoulder"], LM["right_shoulder"],
                                                                   LM["left_hip"], LM["right_hip"]]], axis=1)
        for _ in range(3):
            unit = person_offsets(BodyLengths(**{**L.__dict__, "torso": 1.0}))
            top = _spine_chain(Wp, Wt, np.zeros((T, 3)), unit)[1][-1] + Wt @ np.array([0, unit[J["LeftShoulder"], 1], 0])
            ratio = chord / np.maximum(np.linalg.norm(top, axis=-1), 1e-6)
            L = BodyLengths(**{**L.__dict__, "torso": _weighted_median(ratio, np.where(tw > 0.5, tw, 1e-3))})
            off = person_offsets(L)
            Wp, Wt = _torso(P, off)
        # Neck->Head depends on where the fitted neck is.
        neck = _spine_chain(Wp, Wt, hips, off)[1][-1] + Wt @ off[J["Neck"]]
        d = np.linalg.norm(_mid(P, "left_ear", "right_ear") - neck, axis=-1)
        w = np.ones(T) if weights is None else np.minimum(weights[:, LM["left_ear"]], weights[:, LM["right_ear"]])
        L = BodyLengths(**{**L.__dict__, "neck_head": _weighted_median(d, np.where(w > 0.5, w, 1e-3))})
        off = person_offsets(L)

    W = np.zeros((T, 22, 3, 3))
    X = np.zeros((T, 22, 3))
    W[:, 0], X[:, 0] = Wp, hips
    spine_R, spine_p = _spine_chain(Wp, Wt, hips, off)
    for k, R, p in zip((J["Spine"], J["Spine1"], J["Spine2"]), spine_R, spine_p):
        W[:, k], X[:, k] = R, p

    def place(k: int) -> None:
        X[:, k] = X[:, CANONICAL_PARENTS[k]] + W[:, CANONICAL_PARENTS[k]] @ off[k]

    # Neck and head.
    place(J["Neck"])
    ear_mid = _mid(P, "left_ear", "right_ear")
    W[:, J["Neck"]] = _aim(Wt, off[J["Head"]], ear_mid - X[:, J["Neck"]])
    place(J["Head"])
    W[:, J["Head"]] = _pair_rotation([1, 0, 0], [0, -np.sin(NOSE_PITCH), np.cos(NOSE_PITCH)],
                                     P[:, LM["left_ear"]] - P[:, LM["right_ear"]], P[:, LM["nose"]] - ear_mid)
    if head_pitch_kept != 1.0 or head_pitch_sigma > 0:
        W[:, J["Head"]] = level_head(W[:, J["Head"]], head_pitch_kept, head_pitch_sigma)

    for side, s in (("Left", 1.0), ("Right", -1.0)):
        lo = side.lower()
        clav, arm, fore, hand = (J[f"{side}{n}"] for n in ("Shoulder", "Arm", "ForeArm", "Hand"))
        shoulder_lm, elbow_lm = P[:, LM[f"{lo}_shoulder"]], P[:, LM[f"{lo}_elbow"]]
        wrist_lm = P[:, LM[f"{lo}_wrist"]]
        place(clav)
        W[:, clav] = _aim(Wt, off[arm], shoulder_lm - X[:, clav])
        place(arm)
        # Upper arm: bone to the elbow; twist from the elbow's bend plane (forearm bends towards +Z at rest).
        upper = elbow_lm - X[:, arm]
        bend = _perp(wrist_lm - elbow_lm, _unit(upper))
        straight = _perp(W[:, clav] @ np.array([0.0, 0.0, 1.0]), _unit(upper))
        w = _bend_weight(upper, wrist_lm - elbow_lm)[:, None]
        W[:, arm] = _pair_rotation([s, 0, 0], [0, 0, 1], upper, _blend_about(_unit(upper), straight, bend, w))
        place(fore)
        W[:, fore] = _aim(W[:, arm], off[hand], wrist_lm - X[:, fore])
        place(hand)
        # Hand: along wrist -> knuckles, index on the +Z side of the pinky at rest (palm down, T-pose).
        knuckles = _mid(P, f"{lo}_index", f"{lo}_pinky")
        Wh = _pair_rotation([s, 0, 0], [0, 0, 1], knuckles - wrist_lm,
                            P[:, LM[f"{lo}_index"]] - P[:, LM[f"{lo}_pinky"]])
        local = np.swapaxes(W[:, fore], -1, -2) @ Wh
        rv = Rotation.from_matrix(local).as_quat()  # (x, y, z, w)
        axis = np.array([s, 0.0, 0.0])
        twist = 2 * np.arctan2(rv[:, :3] @ axis, rv[:, 3])
        twist = (twist + np.pi) % (2 * np.pi) - np.pi
        W[:, fore] = W[:, fore] @ Rotation.from_rotvec(np.outer(FOREARM_TWIST_SHARE * twist, axis)).as_matrix()
        W[:, hand] = Wh

        up_leg, leg, foot, toe = (J[f"{side}{n}"] for n in ("UpLeg", "Leg", "Foot", "ToeBase"))
        knee_lm, ankle_lm = P[:, LM[f"{lo}_knee"]], P[:, LM[f"{lo}_ankle"]]
        heel_lm, toe_lm = P[:, LM[f"{lo}_heel"]], P[:, LM[f"{lo}_foot_index"]]
        place(up_leg)
        thigh = knee_lm - X[:, up_leg]
        # Thigh twist: the knee bends the shin backwards, so "forward" is minus the shin's bend direction;
        # with a straight leg, the foot's direction says where forward is.
        bend = -_perp(ankle_lm - knee_lm, _unit(thigh))
        straight = _perp(toe_lm - heel_lm, _unit(thigh))
        w = _bend_weight(thigh, ankle_lm - knee_lm)[:, None]
        W[:, up_leg] = _pair_rotation([0, -1, 0], [0, 0, 1], thigh, _blend_about(_unit(thigh), straight, bend, w))
        place(leg)
        W[:, leg] = _aim(W[:, up_leg], off[foot], ankle_lm - X[:, leg])
        place(foot)
        sole = _pair_rotation([0, 0, 1], [0, 1, 0], toe_lm - heel_lm, ankle_lm - heel_lm)
        W[:, foot] = _aim(sole, off[toe], toe_lm - X[:, foot])
        place(toe)
        W[:, toe] = W[:, foot]

    parents = np.array([max(p, 0) for p in CANONICAL_PARENTS])
    local = np.swapaxes(W[:, parents], -1, -2) @ W
    local[:, 0] = W[:, 0]
    q = quat_make_continuous(matrix_to_quat(torch.as_tensor(local)), dim=0).numpy()
    targets, mask = joint_targets(P)
    err = np.full((T, 22), np.nan)
    err[:, mask] = np.linalg.norm(X[:, mask] - targets[:, mask], axis=-1)
    return FitResult(L, off, q, W, X, targets, err)


# ----------------------------------------------------------------------------------------------------------
# The forward model (tests, and a check that the fit inverts what it assumes)
# ----------------------------------------------------------------------------------------------------------

def landmarks_from_pose(positions: np.ndarray, rotations: np.ndarray, L: BodyLengths) -> np.ndarray:
    """``(T, 33, 3)`` landmarks that the body model puts on a posed canonical skeleton.

    Args:
        positions: ``(T, 22, 3)`` world joint positions; rotations: ``(T, 22, 3, 3)`` world joint rotations
            (e.g. ``Motion.fk()``) on a skeleton with :func:`person_offsets` ``(L)``.
    """
    X = np.asarray(positions, dtype=np.float64)
    R = np.asarray(rotations, dtype=np.float64)
    out = np.zeros(X.shape[:-2] + (33, 3))

    def put(name: str, joint: str, local=(0.0, 0.0, 0.0)) -> None:
        out[..., LM[name], :] = X[..., J[joint], :] + R[..., J[joint], :, :] @ np.asarray(local, float)

    e, nf = L.ear_half_width, L.nose_forward
    nose = (0.0, -np.sin(NOSE_PITCH) * nf, np.cos(NOSE_PITCH) * nf)
    put("nose", "Head", nose)
    for side, s in (("left", 1.0), ("right", -1.0)):
        S = side.capitalize()
        put(f"{side}_ear", "Head", (s * e, 0, 0))
        put(f"{side}_eye_inner", "Head", (s * 0.015, nose[1] + 0.04, nose[2] - 0.02))
        put(f"{side}_eye", "Head", (s * 0.03, nose[1] + 0.04, nose[2] - 0.025))
        put(f"{side}_eye_outer", "Head", (s * 0.045, nose[1] + 0.04, nose[2] - 0.03))
        put(f"mouth_{side}", "Head", (s * 0.025, nose[1] - 0.03, nose[2] - 0.02))
        put(f"{side}_shoulder", f"{S}Arm")
        put(f"{side}_elbow", f"{S}ForeArm")
        put(f"{side}_wrist", f"{S}Hand")
        put(f"{side}_index", f"{S}Hand", (s * L.knuckles, 0, L.knuckle_half_width))
        put(f"{side}_pinky", f"{S}Hand", (s * L.knuckles, 0, -L.knuckle_half_width))
        put(f"{side}_thumb", f"{S}Hand", (s * 0.5 * L.knuckles, 0, 2 * L.knuckle_half_width))
        put(f"{side}_hip", "Hips", (s * L.hip_width / 2, 0, 0))
        put(f"{side}_knee", f"{S}Leg")
        put(f"{side}_ankle", f"{S}Foot")
        put(f"{side}_heel", f"{S}Foot", (0, -L.ankle_height, -L.heel_back))
        put(f"{side}_foot_index", f"{S}ToeBase")
    return out
