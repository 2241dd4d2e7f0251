"""Hands: 21 landmarks per hand to finger joint rotations, cleaned over the clip (numpy, whole clip at once).

Input: ``(T, 2, 21, 3)`` hand landmarks (left, right; :data:`pose.estimators.HAND_LANDMARKS`) in *camera axes*
(x right, y down, z away; pixels, NaN where a hand was not found), as :class:`pose.estimators.PoseFrame` carries
them. Output: rotations of the 30 :data:`core.skeleton.FINGER_JOINTS` relative to the canonical T-pose hand
(palm down, fingers along +X for the left hand and -X for the right, thumb towards +Z), local to their parents.

The hand model (what the fit assumes, and what :func:`landmarks_from_angles` generates for tests):

* The palm frame comes from the wrist, the middle knuckle (the hand's long axis) and the index-to-pinky
  knuckle line (the thumb side); it is also what turns the body's wrist (:func:`palm_landmarks`).
* Index to pinky: the knuckle joint (``<Finger>1``) has flexion and a small sideways spread, the two joints
  after it are hinges about the same axis; limits as a hand has them (:data:`LIMITS`). A finger read bent
  backwards past them is read mirrored through the palm (the depth of a finger seen from the front is ambiguous),
  and the fit bends the three joints together as a hand does (:func:`finger_prior`).
* Thumb: its base (``Thumb1``) turns freely in two directions (a swing with no twist, up to 75 degrees from
  rest), the two joints after it are hinges.

Each hand is 20 angles per frame (:data:`ANGLE_NAMES`); cleaning works on those, so a hand moving across the image
does not disturb its fingers: short gaps are interpolated, longer ones ease towards a relaxed hand (:data:`RELAXED`)
over :data:`EASE_SECONDS`, a hand never seen stays relaxed, and the angles are filtered like the body
(:func:`pose.clean.smooth`). A hand is only used when its wrist lies at the body's wrist of the same side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core.rotations import quat_make_continuous
from core.skeleton import finger_tpose_direction

from . import clean
from .estimators import HAND_LM, LM

__all__ = ["ANGLE_NAMES", "LIMITS", "RELAXED", "EASE_SECONDS", "GESTURES", "HandTracks", "side_sources",
           "assign_sides", "hand_angles", "palm_rotation", "angle_matrices", "angles_to_quats", "clean_angles",
           "finger_prior", "WORLD_SHARE",
           "palm_landmarks", "fill_skipped", "fit_hands", "landmarks_from_angles", "gesture_track"]

_NON_THUMB = ("index", "middle", "ring", "pinky")
ANGLE_NAMES: tuple[str, ...] = (("thumb_swing_a", "thumb_swing_b", "thumb_mcp", "thumb_ip")
                                + tuple(f"{f}_{a}" for f in _NON_THUMB for a in ("spread", "mcp", "pip", "dip")))
# Degrees, (low, high): flexion positive (towards the palm), spread positive towards the thumb.
LIMITS: dict[str, tuple[float, float]] = {
    "thumb_swing": (0.0, 75.0), "thumb_mcp": (-10.0, 70.0), "thumb_ip": (-15.0, 85.0),
    "spread": (-25.0, 25.0), "mcp": (-25.0, 95.0), "pip": (-5.0, 115.0), "dip": (-10.0, 90.0),
}
# A hand hanging loose: fingers slightly curled, more so towards the little finger.
RELAXED: np.ndarray = np.radians(np.array(
    [6.0, -4.0, 12.0, 10.0] + [a for k in range(4) for a in (0.0, 14.0 + 5 * k, 22.0 + 6 * k, 12.0 + 3 * k)]))
EASE_SECONDS = 0.4  # a gap longer than twice this eases to RELAXED and back
MAX_GAP_SECONDS = 0.25  # shorter gaps are plain interpolation
WORLD_SHARE = 0.25  # weight of the hand model's metric landmarks against its image ones (see fit_hands)
_PALM_NORMAL = np.array([0.0, -1.0, 0.0])  # the palm faces down in the T-pose, both hands
_THUMB_CURL = np.array([0.0, -0.5, -0.87])  # where the thumb's tip goes when it bends: across the palm


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _rotvec_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` rotations by ``angle (T,)`` radians about unit ``axis (3,)`` or ``(T, 3)``."""
    axis = np.broadcast_to(axis, angle.shape + (3,))
    return Rotation.from_rotvec(axis * angle[:, None]).as_matrix()


@dataclass(frozen=True)
class _Axes:
    """One hand's fixed axes in the canonical T-pose hand frame."""

    finger: np.ndarray  # (4, 3) rest bone directions, index..pinky
    spread: np.ndarray  # (4, 3) in-palm direction towards the thumb, perpendicular to each finger
    flex: np.ndarray  # (4, 3) hinge axis: turning the finger about it by a positive angle curls it
    thumb: np.ndarray  # (3,) rest direction of the thumb
    thumb_a: np.ndarray  # (3,) thumb swing basis: swing_a moves the thumb along this (towards the palm)
    thumb_b: np.ndarray  # (3,) the other swing direction
    thumb_flex: np.ndarray  # (3,) hinge axis of the thumb's two outer joints


def _axes(side: int) -> _Axes:
    S = ("Left", "Right")[side]
    finger = np.stack([finger_tpose_direction(f"{S}Hand{f.capitalize()}1") for f in _NON_THUMB])
    flex = _unit(np.cross(finger, _PALM_NORMAL))
    # Towards the thumb (+Z) within the palm plane, perpendicular to the finger.
    spread = _unit(np.array([0.0, 0.0, 1.0]) - np.sum(finger * [0.0, 0.0, 1.0], -1, keepdims=True) * finger)
    thumb = finger_tpose_direction(f"{S}HandThumb1")
    thumb_flex = _unit(np.cross(thumb, _THUMB_CURL))
    thumb_a = _unit(np.cross(thumb_flex, thumb))  # the direction the curl moves the thumb's tip
    thumb_b = np.cross(thumb, thumb_a)
    return _Axes(finger, spread, flex, thumb, thumb_a, thumb_b, thumb_flex)


_AXES = (_axes(0), _axes(1))


def _signed(u: np.ndarray, v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed angle ``(T,)`` from ``u`` to ``v`` about ``axis`` (all ``(T, 3)``), both projected off the axis."""
    u = u - np.sum(u * axis, -1, keepdims=True) * axis
    v = v - np.sum(v * axis, -1, keepdims=True) * axis
    return np.arctan2(np.sum(np.cross(u, v) * axis, -1), np.sum(u * v, -1))


def _clip(name: str, a: np.ndarray) -> np.ndarray:
    lo, hi = LIMITS[name]
    return np.clip(a, np.radians(lo), np.radians(hi))


def palm_rotation(hand: np.ndarray, side: int) -> np.ndarray:
    """``(T, 3, 3)`` world rotation of the palm from ``(T, 21, 3)`` landmarks in any right-handed axes: the
    canonical T-pose hand turned onto them (long axis wrist to middle knuckle, index on the thumb's side)."""
    s = 1.0 if side == 0 else -1.0
    a = _unit(hand[:, HAND_LM["middle_mcp"]] - hand[:, HAND_LM["wrist"]])
    b = hand[:, HAND_LM["index_mcp"]] - hand[:, HAND_LM["pinky_mcp"]]
    b = _unit(b - np.sum(b * a, -1, keepdims=True) * a)
    world = np.stack([a, b, np.cross(a, b)], axis=-1)
    rest_a, rest_b = np.array([s, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    rest = np.stack([rest_a, rest_b, np.cross(rest_a, rest_b)], axis=-1)
    return world @ rest.T


def hand_angles(hand: np.ndarray, side: int) -> np.ndarray:
    """``(T, 20)`` finger angles (radians, :data:`ANGLE_NAMES`, within :data:`LIMITS`) of one hand's
    ``(T, 21, 3)`` landmarks (any right-handed axes; only directions matter)."""
    hand = np.asarray(hand, dtype=np.float64)
    ax = _AXES[side]
    R = palm_rotation(hand, side)
    local = np.einsum("tji,tnj->tni", R, hand - hand[:, :1])  # landmarks in the palm frame
    out = np.zeros((len(hand), 20))
    # Thumb: the base's swing in the (a, b) basis, then two hinges about the swung hinge axis.
    names = ("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    d = [_unit(local[:, HAND_LM[names[k + 1]]] - local[:, HAND_LM[names[k]]]) for k in range(3)]
    cos = np.clip(d[0] @ ax.thumb, -1.0, 1.0)
    angle = _clip("thumb_swing", np.arccos(cos))
    direction = np.stack([d[0] @ ax.thumb_a, d[0] @ ax.thumb_b], -1)
    direction = direction / np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-9)
    out[:, 0:2] = direction * angle[:, None]
    R1 = _thumb_base(out[:, 0:2], ax)
    hinge = R1 @ ax.thumb_flex
    out[:, 2] = _clip("thumb_mcp", _signed(d[0], d[1], hinge))
    out[:, 3] = _clip("thumb_ip", _signed(d[1], d[2], hinge))
    for f, finger in enumerate(_NON_THUMB):
        pts = [local[:, HAND_LM[f"{finger}_{p}"]] for p in ("mcp", "pip", "dip", "tip")]
        u = [_unit(pts[k + 1] - pts[k]) for k in range(3)]
        spread = _clip("spread", np.arctan2(u[0] @ ax.spread[f], u[0] @ ax.finger[f]))
        hinge = _rotvec_matrix(np.cross(ax.finger[f], ax.spread[f]), spread) @ ax.flex[f]
        flex = np.stack([np.arctan2(u[0] @ _PALM_NORMAL, np.hypot(u[0] @ ax.finger[f], u[0] @ ax.spread[f])),
                         _signed(u[0], u[1], hinge), _signed(u[1], u[2], hinge)], -1)
        out[:, 4 + 4 * f] = spread
        out[:, 5 + 4 * f:8 + 4 * f] = _feasible_flexion(flex)
    return out


_FLEX_LIMITS = np.radians([LIMITS["mcp"], LIMITS["pip"], LIMITS["dip"]])  # (3, 2)


def _feasible_flexion(flex: np.ndarray) -> np.ndarray:
    """``(T, 3)`` a finger's mcp, pip and dip flexion from raw ``(T, 3)`` readings, the finger's depth
    disambiguated, within :data:`LIMITS`.

    Seen from the front, a finger curled towards the palm and one bent as far back casts the same image: the hand
    model then often places the finger on the wrong side of the palm (on the rendered gesture clip, the left fist
    seen palm-on came back bent 25-60 degrees backwards at every joint in the model's metric landmarks, and the
    right fist's middle segments folded back 100 degrees in the image landmarks). Mirroring the finger through the
    palm's plane negates all three angles; of the two readings the one a hand can take (the lesser excess over the
    limits, the reading as given on a tie) is kept. Measured on that clip (bench ``hands``, landmarks replayed):
    error where found 19.2 / 21.7 -> 17.2 / 20.9 degrees (left / right), fist 49 -> 39; the sample clip's error
    37.2 / 38.0 -> 29.6 / 30.8 (a relaxed hand all clip: 34.8 / 33.4).
    """
    lo, hi = _FLEX_LIMITS[:, 0], _FLEX_LIMITS[:, 1]

    def excess(a: np.ndarray) -> np.ndarray:
        return (np.maximum(lo - a, 0.0) + np.maximum(a - hi, 0.0)).sum(-1)

    flip = excess(-flex) < excess(flex)
    return np.clip(np.where(flip[:, None], -flex, flex), lo, hi)


# How a real finger bends together (finger_prior): the DIP follows the PIP at two thirds of its angle (hardly anyone
# can bend one alone; the classic coupling of hand models), the knuckle bends at least this share of the PIP (a
# relaxed hand's ratio, RELAXED), and a finger curled this far (knuckle plus PIP) has no sideways spread left.
DIP_PER_PIP = 2.0 / 3.0
MIN_MCP_PER_PIP = 0.65
SPREAD_GONE_CURL = np.radians(90.0)


def finger_prior(angles: np.ndarray) -> np.ndarray:
    """``(T, 20)`` angles (:data:`ANGLE_NAMES`) with each of index..pinky bent as a hand bends them
    (:data:`DIP_PER_PIP`, :data:`MIN_MCP_PER_PIP`, :data:`SPREAD_GONE_CURL`); the thumb is kept.

    Why: the hand model's landmarks put a curled finger's whole bend in its middle joint (the rendered gesture
    clip's fists and pointing hands: knuckle 5-35 degrees, PIP at its 115 limit, DIP 0-20, where the hand had 85,
    100 and 65), and the sideways reading of a finger seen end-on is noise (-25 on every curled finger, truth 0).
    Measured on that clip (bench ``hands``, landmarks replayed): error where found 16.9 / 20.4 -> 12.7 / 14.2
    degrees (left / right), fist 38 -> 29, point 27 -> 16; the sample clip's error 29.6 / 30.8 -> 27.3 / 30.3.
    """
    out = np.array(angles, dtype=np.float64, copy=True)
    for f in range(4):
        spread, mcp, pip = out[:, 4 + 4 * f], out[:, 5 + 4 * f], out[:, 6 + 4 * f]
        out[:, 4 + 4 * f] = spread * np.clip(1.0 - (mcp + pip) / SPREAD_GONE_CURL, 0.0, 1.0)
        out[:, 5 + 4 * f] = _clip("mcp", np.maximum(mcp, MIN_MCP_PER_PIP * pip))
        out[:, 7 + 4 * f] = _clip("dip", DIP_PER_PIP * pip)
    return out


def _thumb_base(swing: np.ndarray, ax: _Axes) -> np.ndarray:
    """``(T, 3, 3)`` the thumb base's rotation for ``(T, 2)`` swing coordinates (a swing without twist)."""
    axis = swing[:, :1] * np.cross(ax.thumb, ax.thumb_a) + swing[:, 1:] * np.cross(ax.thumb, ax.thumb_b)
    return Rotation.from_rotvec(axis).as_matrix()


def angle_matrices(angles: np.ndarray, side: int) -> np.ndarray:
    """``(T, 15, 3, 3)`` local rotations of one hand's 15 finger joints (thumb, index, ..., pinky; base to tip)
    from ``(T, 20)`` angles."""
    angles = np.asarray(angles, dtype=np.float64)
    ax = _AXES[side]
    T = len(angles)
    out = np.zeros((T, 15, 3, 3))
    out[:, 0] = _thumb_base(angles[:, 0:2], ax)
    out[:, 1] = _rotvec_matrix(ax.thumb_flex, angles[:, 2])
    out[:, 2] = _rotvec_matrix(ax.thumb_flex, angles[:, 3])
    for f in range(4):
        spread_axis = np.cross(ax.finger[f], ax.spread[f])
        out[:, 3 + 3 * f] = (_rotvec_matrix(spread_axis, angles[:, 4 + 4 * f])
                             @ _rotvec_matrix(ax.flex[f], angles[:, 5 + 4 * f]))
        out[:, 4 + 3 * f] = _rotvec_matrix(ax.flex[f], angles[:, 6 + 4 * f])
        out[:, 5 + 3 * f] = _rotvec_matrix(ax.flex[f], angles[:, 7 + 4 * f])
    return out


def angles_to_quats(angles: np.ndarray) -> np.ndarray:
    """``(T, 30, 4)`` local quaternions (w, x, y, z) of :data:`~core.skeleton.FINGER_JOINTS` from ``(T, 2, 20)``
    angles (left hand, right hand), sign-continuous over time."""
    M = np.concatenate([angle_matrices(angles[:, s], s) for s in (0, 1)], axis=1)
    q = Rotation.from_matrix(M.reshape(-1, 3, 3)).as_quat()[:, [3, 0, 1, 2]].reshape(len(M), 30, 4)
    return quat_make_continuous(torch.as_tensor(q), dim=0).numpy()


# ----------------------------------------------------------------------------------------------------------
# Whole clip: sides, gaps, filter
# ----------------------------------------------------------------------------------------------------------

def side_sources(hands: np.ndarray, body_image: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """``(T, 2)`` which of the found hands (0 or 1, -1 for none) belongs to the body's left / right side.

    A hand belongs to the side whose body wrist it is nearest to, when that side has no hand yet and the hand's
    wrist lies within half a forearm of that body wrist; failing that (the body model sometimes puts a raised
    hand's wrist on the chest: the hand itself is the better witness then), to the one side whose hand was
    accepted within half a forearm of it during the last second, or else to the one side whose elbow it is within
    reach of (an upper arm's length and a bit) while the other elbow is further. Anything else is a detection on
    something else.

    Args:
        hands: ``(T, 2, 21, 3)`` pixels (NaN where not found). body_image: ``(T, 33, 2)`` body landmarks, pixels.
    """
    out = np.full(hands.shape[:2], -1)
    wrists = body_image[:, [LM["left_wrist"], LM["right_wrist"]]]  # (T, 2, 2)
    elbows = body_image[:, [LM["left_elbow"], LM["right_elbow"]]]
    shoulders = body_image[:, [LM["left_shoulder"], LM["right_shoulder"]]]
    with np.errstate(invalid="ignore"):
        forearm = np.nan_to_num(np.nanmedian(np.linalg.norm(wrists - elbows, axis=-1), axis=1), nan=1.0)
        upper = np.nan_to_num(np.nanmedian(np.linalg.norm(elbows - shoulders, axis=-1), axis=1), nan=1.0)
    last: list[tuple[np.ndarray, int] | None] = [None, None]  # where each side's hand was last accepted
    memory = max(int(round(fps)), 1)
    for t in range(len(hands)):
        reach = 0.5 * max(forearm[t], 1.0)
        for k in range(2):
            h = hands[t, k]
            if not np.isfinite(h).all() or not np.isfinite(wrists[t]).all():
                continue
            d = np.linalg.norm(wrists[t] - h[0, :2], axis=-1)
            side = int(np.argmin(d))
            if d[side] > reach:
                near = [s for s in range(2) if last[s] is not None and t - last[s][1] <= memory
                        and np.linalg.norm(last[s][0] - h[0, :2]) <= reach]
                if len(near) != 1:
                    e = np.linalg.norm(elbows[t] - h[0, :2], axis=-1)
                    near = [s for s in range(2) if e[s] <= 1.3 * upper[t] and e[s] < e[1 - s]]
                if len(near) != 1:
                    continue
                side = near[0]
            if out[t, side] < 0:
                out[t, side] = k
                last[side] = (h[0, :2], t)
    return out


def assign_sides(hands: np.ndarray, body_image: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """``(T, 2, 21, 3)`` hands moved to the body side they belong to (:func:`side_sources`), NaN elsewhere."""
    return _by_side(hands, side_sources(hands, body_image, fps))


def _by_side(x: np.ndarray, sources: np.ndarray) -> np.ndarray:
    out = np.full_like(np.asarray(x, dtype=np.float64), np.nan)
    for s in range(2):
        for k in range(2):
            out[sources[:, s] == k, s] = x[sources[:, s] == k, k]
    return out


def fill_skipped(hands: np.ndarray, looked: np.ndarray, max_frames: int = 3) -> np.ndarray:
    """``(T, 2, 21, 3)`` hands with the frames the hand model skipped (``looked (T,)`` False) filled in linearly
    between the looked-at frames around them, where both found that hand and lie at most ``max_frames`` apart;
    NaN elsewhere."""
    out = np.array(hands, dtype=np.float64, copy=True)
    idx = np.flatnonzero(looked)
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a < 2 or b - a > max_frames:
            continue
        for s in range(2):
            if np.isfinite(out[a, s]).all() and np.isfinite(out[b, s]).all():
                w = (np.arange(a + 1, b) - a)[:, None, None] / (b - a)
                out[a + 1:b, s] = (1 - w) * out[a, s] + w * out[b, s]
    return out


def clean_angles(angles: np.ndarray, found: np.ndarray, fps: float, smoothing: float) -> np.ndarray:
    """``(T, 2, 20)`` angles with gaps filled, long gaps eased to :data:`RELAXED`, and filtered.

    Args:
        angles: ``(T, 2, 20)`` radians (anything where not ``found``). found: ``(T, 2)``. smoothing: as
            :func:`pose.clean.smooth`'s strength.
    """
    T = len(angles)
    out = np.empty((T, 2, 20))
    t = np.arange(T)
    ease = max(EASE_SECONDS * fps, 1.0)
    for s in range(2):
        ok = np.asarray(found[:, s], bool)
        if not ok.any():
            out[:, s] = RELAXED
            continue
        filled = clean.fill_gaps(angles[:, s], ok)
        # Distance in frames to the nearest frame where the hand was seen; far from one, the hand relaxes.
        seen = t[ok]
        pos = np.searchsorted(seen, t)
        dist = np.minimum(np.abs(t - seen[np.clip(pos - 1, 0, len(seen) - 1)]),
                          np.abs(seen[np.clip(pos, 0, len(seen) - 1)] - t)).astype(float)
        short = np.zeros(T, bool)
        for a, b in clean.gaps(ok):
            short[a:b] = (b - a) <= MAX_GAP_SECONDS * fps and a > 0 and b < T
        x = np.clip(dist / ease, 0.0, 1.0)
        w = np.where(short, 0.0, x * x * (3 - 2 * x))[:, None]
        out[:, s] = (1 - w) * filled + w * RELAXED
    return clean.smooth(out, fps, smoothing)


def palm_landmarks(world: np.ndarray, hands: np.ndarray) -> np.ndarray:
    """``(T, 33, 3)`` body landmarks with each found hand's index, pinky and thumb landmarks moved so the palm the
    body fit sees has the hand landmarks' orientation (distances from the wrist kept).

    Args:
        world: ``(T, 33, 3)`` body landmarks, camera axes. hands: ``(T, 2, 21, 3)`` hands, camera axes (pixels
            across, relative depth: only their directions are used), NaN where not found.
    """
    out = np.array(world, dtype=np.float64, copy=True)
    for s, side in enumerate(("left", "right")):
        ok = np.isfinite(hands[:, s]).all(axis=(1, 2))
        if not ok.any():
            continue
        h = hands[ok, s]
        wrist = out[ok, LM[f"{side}_wrist"]]
        a = _unit(h[:, HAND_LM["middle_mcp"]] - h[:, 0])
        b = h[:, HAND_LM["index_mcp"]] - h[:, HAND_LM["pinky_mcp"]]
        b = _unit(b - np.sum(b * a, -1, keepdims=True) * a)
        idx, pky, thb = (out[ok, LM[f"{side}_{n}"]] for n in ("index", "pinky", "thumb"))
        reach = np.linalg.norm(0.5 * (idx + pky) - wrist, axis=-1, keepdims=True)
        half = 0.5 * np.linalg.norm(idx - pky, axis=-1, keepdims=True)
        out[ok, LM[f"{side}_index"]] = wrist + reach * a + half * b
        out[ok, LM[f"{side}_pinky"]] = wrist + reach * a - half * b
        out[ok, LM[f"{side}_thumb"]] = wrist + 0.5 * reach * a + 2 * half * b
    return out


@dataclass
class HandTracks:
    """The hands of a clip.

    image: ``(T, 2, 21, 3)`` raw landmarks (pixels; left, right; NaN where not found or on the wrong side).
    found: ``(T, 2)``. angles: ``(T, 2, 20)`` cleaned angles, radians. rotations: ``(T, 30, 4)`` local finger
    quaternions (:data:`~core.skeleton.FINGER_JOINTS`).
    """

    image: np.ndarray
    found: np.ndarray
    angles: np.ndarray
    rotations: np.ndarray

    @property
    def found_rate(self) -> np.ndarray:
        """``(2,)`` share of frames where the left / right hand was found."""
        return self.found.mean(axis=0) if len(self.found) else np.zeros(2)


def fit_hands(hands: np.ndarray, body_image: np.ndarray, fps: float, smoothing: float,
              hands_world: np.ndarray | None = None) -> HandTracks:
    """Finger rotations of a clip from raw ``(T, 2, 21, 3)`` hand landmarks (pixels, camera axes) and the body's
    ``(T, 33, 2)`` image landmarks (for the sides).

    ``hands_world``: the same hands as the model's metric 3D landmarks ``(T, 2, 21, 3)``, if it gave them. The
    angles are then a weighted mean of both readings (:data:`WORLD_SHARE` of the metric one). First measured on
    the rendered gesture clip (bench ``hands``): the image landmarks' depth missed curled fingers seen from the back
    (a pointing hand: 38 degrees error, metric 26), the metric ones were worse on open hands (7-9 against 11-13);
    the even mean had the lowest error (19.3 / 20.9 degrees where found, against 19.7 / 24.3 image-only and
    22.3 / 21.5 metric-only). With fists boxed whole (:func:`pose.estimators.hand_roi`), fingers mirrored into the
    palm and :func:`finger_prior`, the image reading became the better one: metric share 0 / 0.25 / 0.5 / 1 gave
    9.1 / 11.8, 8.6 / 10.9, 9.8 / 11.9, 16.1 / 16.2 degrees where found; on the sample clip 25.9 / 31.1, 26.6 /
    30.5, 27.7 / 30.3, 30.4 / 30.6 over all frames.
    """
    hands = np.asarray(hands, dtype=np.float64)
    sources = side_sources(hands, np.asarray(body_image, dtype=np.float64), fps)
    sided = _by_side(hands, sources)
    world = None if hands_world is None else _by_side(np.asarray(hands_world, dtype=np.float64), sources)
    found = np.isfinite(sided).all(axis=(2, 3))
    angles = np.zeros(found.shape + (20,))
    for s in range(2):
        if found[:, s].any():
            angles[found[:, s], s] = hand_angles(sided[found[:, s], s], s)
            if world is not None:
                ok = found[:, s] & np.isfinite(world[:, s]).all(axis=(1, 2))
                angles[ok, s] = (1 - WORLD_SHARE) * angles[ok, s] + WORLD_SHARE * hand_angles(world[ok, s], s)
            angles[found[:, s], s] = finger_prior(angles[found[:, s], s])
    cleaned = clean_angles(angles, found, fps, smoothing)
    return HandTracks(sided, found, cleaned, angles_to_quats(cleaned))


# ----------------------------------------------------------------------------------------------------------
# The forward model (tests)
# ----------------------------------------------------------------------------------------------------------

def landmarks_from_angles(angles: np.ndarray, side: int, hand_length: float = 1.0) -> np.ndarray:
    """``(T, 21, 3)`` landmarks of one hand in its canonical T-pose frame (wrist at the origin) posed by ``(T, 20)``
    angles: what :func:`hand_angles` inverts (within the limits)."""
    from core.skeleton import finger_offsets, finger_tip_offsets

    off = finger_offsets(hand_length)[15 * side:15 * side + 15]
    tips = finger_tip_offsets(hand_length)[5 * side:5 * side + 5]
    M = angle_matrices(angles, side)
    T = len(M)
    out = np.zeros((T, 21, 3))
    order = ("thumb", "index", "middle", "ring", "pinky")
    parts = (("cmc", "mcp", "ip", "tip"),) + (("mcp", "pip", "dip", "tip"),) * 4
    for f, finger in enumerate(order):
        R = np.tile(np.eye(3), (T, 1, 1))
        p = np.tile(off[3 * f], (T, 1))
        out[:, HAND_LM[f"{finger}_{parts[f][0]}"]] = p
        for k in range(3):
            R = R @ M[:, 3 * f + k]
            step = off[3 * f + k + 1] if k < 2 else tips[f]
            p = p + R @ step
            out[:, HAND_LM[f"{finger}_{parts[f][k + 1]}"]] = p
    return out



def _hand_deg(thumb=(0.0, 0.0, 0.0, 0.0), curl=(0.0, 0.0, 0.0, 0.0), spread=(0.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """``(20,)`` radians: thumb (swing a, swing b, mcp, ip) and index..pinky curl levels in [0, 1] with spreads."""
    out = list(thumb)
    for c, s in zip(curl, spread):
        out += [s, 85.0 * c, 100.0 * c, 65.0 * c]
    return np.radians(np.array(out))


_TUCKED_THUMB = (40.0, -5.0, 35.0, 45.0)
_OPEN_SPREAD = (10.0, 0.0, -8.0, -16.0)
GESTURES: dict[str, np.ndarray] = {
    "open": _hand_deg(spread=_OPEN_SPREAD),
    "fist": _hand_deg(_TUCKED_THUMB, (1, 1, 1, 1)),
    "point": _hand_deg(_TUCKED_THUMB, (0, 1, 1, 1)),
    "two": _hand_deg(_TUCKED_THUMB, (0, 0, 1, 1), (8.0, -6.0, 0.0, 0.0)),
    "three": _hand_deg(_TUCKED_THUMB, (0, 0, 0, 1), (8.0, 0.0, -8.0, 0.0)),
    "four": _hand_deg(_TUCKED_THUMB, (0, 0, 0, 0), _OPEN_SPREAD),
    "relaxed": RELAXED.copy(),
}


def gesture_track(names: list[str], seconds_each: float, fps: float, blend_seconds: float = 0.3) -> np.ndarray:
    """``(T, 20)`` angles holding each gesture of :data:`GESTURES` in turn, with smooth blends between them."""
    n = max(1, int(round(seconds_each * fps)))
    keys = np.stack([GESTURES[g] for g in names])
    t = np.arange(n * len(names)) / n  # in gesture units
    k = np.minimum(t.astype(int), len(names) - 1)
    b = max(blend_seconds * fps / n, 1e-6)
    x = np.clip((t - k - (1 - b)) / b, 0.0, 1.0)
    w = (x * x * (3 - 2 * x))[:, None]
    return (1 - w) * keys[k] + w * keys[np.minimum(k + 1, len(names) - 1)]
