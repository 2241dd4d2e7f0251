"""Cleaning landmark tracks: gaps, jitter, the ground plane and foot contacts (numpy, whole clip at once).

Conventions: tracks are ``(T, N, D)`` arrays, time first, NaN where nobody was detected. 3D points here are in
metres; "up" is a unit vector, the floor is the plane ``up · p = floor``.

Why these choices:

* **Gaps**: linear interpolation in time, edges held. Short gaps (a missed frame or two, a hand passing the face)
  are invisible after it; long ones are reported, since what happened there is invented.
* **Filtering**: Savitzky-Golay (scipy), a zero-phase filter: the whole clip is known, so unlike the causal
  One-Euro filter it adds no lag, and it keeps peaks (a wave, a kick) better than a moving average of the same
  noise reduction. ``strength`` in [0, 1] sets the window: 0 = off, 0.5 (default) = 0.27 s, 1 = 0.5 s.
* **Ground plane**: the camera's tilt is unknown and MediaPipe's 3D pose is camera-aligned, so "up" is the
  body's own long axis over the clip (people stand upright on average). A plane through the standing spots
  was tried and rejected: MediaPipe's 3D pose leans towards "upright in the camera's frame" (on the mmpose clip
  the feet's floor was tilted 19 degrees from the body's axis), so levelling that floor made people lean. The
  hips' path is used instead where the person travels (:func:`level_up`): a second's travel of the hips lies
  along the floor, far steadier than the feet's spots, and it corrects the body axis's mean lean. The floor
  height is where the standing feet are; pinning (:mod:`pose.root`) keeps them on it.
* **Swapped legs**: MediaPipe sometimes hands the left leg's landmarks (knee, ankle, heel, toe; 2D and 3D
  together) to the right leg for a stretch of frames, most often when one leg passes in front of the other (a
  rendered punch seen 30 degrees from the front: 20 of 90 frames). The crossed legs then slid the planted foot
  at walking speed, since each foot seemed to jump to the other's spot. :func:`untangle_sides` picks, per frame,
  swapped or not by dynamic programming, so the legs' image paths stay continuous.
* **Mirrored halves**: MediaPipe also reads a person facing the camera as seen from behind for a frame or a few
  (their reflection in the image plane: left and right exchanged, depths reflected; a runner filmed from the
  front, 9 of 90 frames), the hips and legs or the shoulders, arms and head, or both. Seen from the front the
  legs are a few pixels apart, so their image continuity misses it, but the trunk's facing then jumps half round
  in a frame, which nobody does: :func:`mirrored_frames` picks, per frame and half, mirrored or not by dynamic
  programming, so the facing stays continuous, before the legs and arms are untangled.
* **Hands inside the trunk** (:func:`hands_out_of_trunk`): seen from the side, MediaPipe often puts the far
  arm's wrist at the wrong depth, and a hand hanging or swinging beside the body lands inside the trunk, past
  its midline: the character's hands then cross in front of the groin while the person's arms hang down
  (issue 19). A wrist past the midline *and* inside the trunk's depth cannot be (a hand across the body is in
  front of it, as on the mmpose clip where the man holds his forearm across his belly, which stays as seen), so
  it goes back to its own side (see the function for what was measured).
* **Contacts**: a foot is planted when it is near the floor *and* still in the image. Speeds come from the 2D
  track scaled to metres by the person's size in the image, because the camera-depth part of the 3D path is
  several times noisier than the image position.
"""
from __future__ import annotations

import numpy as np

from core.metrics import jitter  # noqa: F401 - re-exported: the pose stage reports it
from scipy.signal import savgol_filter

from core.errors import InputError

__all__ = ["NobodyError", "check_detections", "fill_gaps", "smooth", "smoothing_window", "body_up", "level_up",
           "standing_points", "floor_height",
           "foot_contacts", "untangle_sides", "swap_sides", "mirrored_frames", "unmirror", "untangle_person", "MIRROR_HALVES",
           "LEG_PARTS", "ARM_PARTS", "SIDE_GROUPS", "hands_out_of_trunk", "jitter", "MIN_DETECTION_RATE",
           "MAX_GAP_SECONDS", "TRUNK_HALF_DEPTH"]

MIN_DETECTION_RATE = 0.5  # below this the motion would be mostly invented
MAX_GAP_SECONDS = 0.5  # longer gaps are filled too, but reported
TRUNK_HALF_DEPTH = 0.12  # metres from the trunk's frontal plane (through hips and shoulders) to its front or back


class NobodyError(InputError):
    """Nobody (or hardly anybody) was found in the video."""


def check_detections(detected: np.ndarray, fps: float, min_rate: float = MIN_DETECTION_RATE) -> None:
    """Refuse a clip where most frames have nobody in them.

    Raises:
        NobodyError: saying how many frames had a person and what to do.
    """
    T = len(detected)
    n = int(np.sum(detected))
    if n == 0:
        raise NobodyError(f"no person was found in any of the {T} frames: film one person, whole body in view, "
                          f"in reasonable light")
    if n < 2 or n < min_rate * T:
        raise NobodyError(f"a person was found in only {n} of {T} frames ({100 * n / T:.0f} %; at least "
                          f"{100 * min_rate:.0f} % needed): trim the video to the part where the person is fully "
                          f"in view")


def fill_gaps(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``x (T, ...)`` with frames where ``valid (T,)`` is False filled by linear interpolation (edges held)."""
    x = np.asarray(x, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if valid.all():
        return x.copy()
    if not valid.any():
        raise ValueError("fill_gaps needs at least one valid frame")
    t = np.arange(len(x))
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat)
    good = t[valid]
    for c in range(flat.shape[1]):
        out[:, c] = np.interp(t, good, flat[valid, c])
    return out.reshape(x.shape)


def gaps(valid: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` frame ranges where ``valid (T,)`` is False."""
    v = np.concatenate([[True], np.asarray(valid, bool), [True]])
    d = np.diff(v.astype(np.int8))
    return list(zip(np.flatnonzero(d == -1).tolist(), np.flatnonzero(d == 1).tolist()))


def smoothing_window(fps: float, strength: float) -> int:
    """Odd Savitzky-Golay window in frames for ``strength`` in [0, 1] (1 = no filtering)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"smoothing strength must be in [0, 1], got {strength}")
    if strength <= 0:
        return 1
    seconds = 0.05 + 0.45 * strength
    n = int(round(seconds * fps))
    return max(5, n + (n + 1) % 2)


def smooth(x: np.ndarray, fps: float, strength: float, polyorder: int = 3, mode: str = "interp") -> np.ndarray:
    """Zero-phase Savitzky-Golay filtering of ``x (T, ...)`` along time (see :func:`smoothing_window`).

    mode: how the clip's ends are handled (:func:`scipy.signal.savgol_filter`): ``"interp"`` fits the last window,
    ``"nearest"`` repeats the end value (steadier where the track is noisy up to its last frame).
    """
    x = np.asarray(x, dtype=np.float64)
    window = smoothing_window(fps, strength)
    if window <= 1 or len(x) < 5:
        return x.copy()
    window = min(window, len(x) - (1 - len(x) % 2))  # odd and no longer than the clip
    if window <= polyorder:
        return x.copy()
    return savgol_filter(x, window, polyorder, axis=0, mode=mode)


# ----------------------------------------------------------------------------------------------------------
# Ground plane
# ----------------------------------------------------------------------------------------------------------

def body_up(body_axis: np.ndarray) -> np.ndarray:
    """Unit "up" from the body's long axis ``(T, 3)`` per frame (ankles' to shoulders' midpoint): its median."""
    axis = np.asarray(body_axis, dtype=np.float64)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    up = np.median(axis, axis=0)
    return up / max(np.linalg.norm(up), 1e-9)


def level_up(body_axis: np.ndarray, path: np.ndarray, fps: float, min_travel: float = 0.5) -> np.ndarray:
    """Unit "up" ``(3,)`` from the body's long axis ``(T, 3)`` and the hips' path ``(T, 3)`` (same axes, metres).

    The body's axis alone (:func:`body_up`) is off by the person's mean lean: walking, people lean forward, and
    MediaPipe's 3D pose leans towards "upright in the camera's frame". A floor tilted that way made a walk
    towards the camera go up- or downhill, and pinning the feet to it bent the root path by 30 cm over 4 m (a
    rendered walk from a low camera: up 9 degrees off in pitch). The hips' path is the better witness there:
    over a second of walking the hips travel along the floor. So ``u`` solves, in the least-squares sense,
    ``u ≈ axis_t`` for every frame (all directions weighted alike) together with ``d · u = 0`` for each second's
    travel ``d`` of the path longer than ``min_travel`` metres and mostly level by the body's reckoning (not a
    jump or a crouch), each weighted as the body's axis over that second. A person standing still keeps the
    body's answer. (Also tried: trusting the axis only across the body, with a level camera roll as a prior: floor
    tilt 6.4 -> 5.1 degrees but head pitch 10.8 -> 11.3; and the line between two standing feet as level: no
    change.) On the pose_accuracy tuning clips: floor tilt 6.4 -> 4.5 degrees, root path 139 -> 103 mm;
    on the mocap-studio clip (mmpose) the pinned motion's reprojection 65 -> 15 px (12 px unpinned). Also tried, for a
    panning camera: the axis it turned about (it turns about the vertical) as the up, alone or beside these rows;
    on nine panned renders (cached replay) floor tilt 3.7 -> 3.0 degrees (a panned run's 6.5 -> 1.7, but 0.9 -> 1.7
    and 1.8 -> 3.6 on others) and head pitch error 9.6 -> 9.0, root path error 226 -> 243 mm: not kept.
    """
    axis = np.asarray(body_axis, dtype=np.float64)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    up0 = body_up(axis)
    T = len(axis)
    side = np.cross(axis, [0.0, 0.0, 1.0])  # any direction across the axis: each direction weighs the same
    side = side / np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    rows, rhs = [axis, side, np.cross(side, axis)], [np.ones(T), np.zeros(T), np.zeros(T)]
    path = np.asarray(path, dtype=np.float64)
    n = max(1, int(round(fps)))
    if T > n:
        d = path[n:] - path[:-n]  # the hips' travel over a second
        length = np.linalg.norm(d, axis=-1)
        use = (np.abs(d @ up0) < 0.5 * length) & (length > min_travel)
        if use.any():
            w = np.sqrt(n) * np.minimum(length[use], 2.0) / length[use]  # a second of frames; a run counts no more
            rows.append(d[use] * w[:, None])
            rhs.append(np.zeros(int(use.sum())))
    u = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)[0]
    return u / max(np.linalg.norm(u), 1e-9)


def standing_points(foot_points: np.ndarray, up: np.ndarray, still: np.ndarray | None = None) -> np.ndarray:
    """``(N, 3)`` sole points that are still and the lowest of their frame (within 5 cm) along ``up``.

    foot_points: ``(T, F, 3)`` heels and toes. still: ``(T, F)`` which of them are not moving (all when None).
    """
    P = np.asarray(foot_points, dtype=np.float64)
    still = np.ones(P.shape[:2], bool) if still is None else np.asarray(still, bool)
    h = P @ up
    return P[still & (h <= h.min(axis=1, keepdims=True) + 0.05)]


def floor_height(foot_points: np.ndarray, up: np.ndarray, still: np.ndarray | None = None) -> float:
    """Height of the floor along ``up``: the median lowest sole point over frames where a foot stands still."""
    P = np.asarray(foot_points, dtype=np.float64)
    lowest = (P @ up).min(axis=1)
    pts = standing_points(P, up, still)
    if len(pts) >= 3:
        return float(np.median(pts @ up))
    return float(np.percentile(lowest, 10))


# ----------------------------------------------------------------------------------------------------------
# Contacts
# ----------------------------------------------------------------------------------------------------------

def _debounce(x: np.ndarray, min_len: int) -> np.ndarray:
    """Remove on/off runs shorter than ``min_len`` frames from a boolean ``(T,)`` signal (short gaps first)."""
    x = x.copy()
    for value in (False, True):
        v = np.concatenate([[False], x == value, [False]]).astype(np.int8)
        d = np.diff(v)
        for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
            if e - s < min_len and s > 0 and e < len(x):
                x[s:e] = not value
    return x


def foot_contacts(heights: np.ndarray, speeds: np.ndarray, fps: float, height_limit: float = 0.06,
                  speed_limit: float = 0.45, min_seconds: float = 0.08) -> np.ndarray:
    """Per-foot contact flags ``(T, 2)``.

    Args:
        heights: ``(T, 2)`` lowest point of each foot above the floor, metres.
        speeds: ``(T, 2)`` each foot's speed along the floor, m/s.
        height_limit, speed_limit: a planted foot is lower and slower than these.
        min_seconds: contacts and flights shorter than this are dropped (flicker).

    A contact that begins while the other foot is not planted (a run's flight) begins a frame earlier where the
    foot is already down: the speed is measured on a smoothed track, and a running foot lands from a fast swing,
    whose speed the smoothing carries into the landing frame (rendered runs, pose_accuracy's motions: the first
    frame of a stance was often missed and skated at running speed; foot skate beyond the truth's from a 30 degree
    camera 31.3 -> 15.5 cm/s, panning 22.8 -> 17.5, front 145.9 -> 139.8; the tuning clips' numbers are unchanged,
    a walk landing while the other foot is still down). Two frames earlier made the panned run worse (26.1); asking the
    other foot to be off the floor, not only unplanted, changed the tuning punch and made the 30 degree run's
    PA-MPJPE worse (88.9 -> 90.7 mm). The shared treadmill clip's belt carries the planted feet, so few contacts
    are found there and the other foot is never planted: its 6 contacts each begin a frame earlier (contact frames
    15 -> 21 of 180, the planted feet's own speed 6.3 -> 9.2 cm/s, the belt's); the other shared clips are unchanged.
    """
    h = np.asarray(heights, dtype=np.float64)
    v = np.asarray(speeds, dtype=np.float64)
    # Hysteresis: once planted, a foot stays planted until clearly lifted or moving.
    out = np.zeros(h.shape, bool)
    n = max(1, int(round(min_seconds * fps)))
    for f in range(h.shape[1]):
        on = False
        for t in range(len(h)):
            if on:
                on = h[t, f] < 1.6 * height_limit and v[t, f] < 1.6 * speed_limit
            else:
                on = h[t, f] < height_limit and v[t, f] < speed_limit
            out[t, f] = on
        out[:, f] = _debounce(out[:, f], n)
    if h.shape[1] == 2:
        landing = np.zeros_like(out)
        landing[:-1] = out[1:] & ~out[:-1] & (h[:-1] < height_limit) & ~out[:-1, ::-1]
        out |= landing
    return out


# ----------------------------------------------------------------------------------------------------------
# Swapped legs and arms
# ----------------------------------------------------------------------------------------------------------

LEG_PARTS = ("knee", "ankle", "heel", "foot_index")
# The whole arm: MediaPipe mirrors the whole body for a frame now and then (a person facing the camera, waving:
# shoulders, arms and legs all swapped in one frame of the 10 s bench clip, which the filter spread into a 33 cm
# wobble over 15 frames). Untangling the arms too, pose_accuracy (cached MediaPipe output), tuning / held out:
# MPJPE 122.7 -> 121.5 / 90.9 -> 90.0 mm, PA-MPJPE 79.7 -> 78.0 / 56.9 -> 55.8, jitter 11.2 -> 10.0 / 18.2 -> 17.8,
# elbow 19.7 -> 18.0 / 18.5 -> 19.0 degrees, wrists wrongly crossed 1.9 -> 1.7 / 13.3 -> 13.3 %.
ARM_PARTS = ("shoulder", "elbow", "wrist", "pinky", "index", "thumb")
# Untangled one group at a time: MediaPipe swaps the legs alone too. The hips as a third group made the held-out
# run's knee valgus worse (12.7 -> 15.5 degrees; pose_accuracy, cached MediaPipe output) and nothing better.
SIDE_GROUPS = (LEG_PARTS, ARM_PARTS)
MIRROR_HALVES = ("hip", "shoulder")  # the body's halves MediaPipe mirrors apart (see mirrored_frames)
MIRROR_COST = 0.5  # radians of a half's turn between frames, per frame read as mirrored (see mirrored_frames)


def _side_pairs(parts: tuple[str, ...]) -> tuple[list[int], list[int]]:
    from .estimators import LM

    return [LM[f"left_{n}"] for n in parts], [LM[f"right_{n}"] for n in parts]


def swap_sides(x: np.ndarray, flags: np.ndarray, parts: tuple[str, ...] = LEG_PARTS) -> np.ndarray:
    """``x (T, 33, D)`` with the left and right ``parts``' landmarks exchanged in frames where ``flags (T,)``."""
    left, right = _side_pairs(parts)
    out = np.array(x, copy=True)
    f = np.asarray(flags, bool)
    out[np.ix_(f, left)], out[np.ix_(f, right)] = x[np.ix_(f, right)], x[np.ix_(f, left)]
    return out


def _two_state_path(step: np.ndarray, swap_cost: float) -> np.ndarray:
    """``(n,)`` bool: the cheapest per-frame choice given / swapped (Viterbi over two states).

    ``step (n - 1, 2, 2)`` is the cost of going from frame t's state (second axis: 0 given, 1 swapped) to frame
    t + 1's (third axis); each swapped frame costs ``swap_cost`` more. A swapped stretch touching the clip's first
    or last frame is left as given: it has one jump to tell it by, which the model swapping at that frame explains
    as well, and the model's own labels are the likelier there (a walk filmed while the camera panned: the last
    two frames' legs were swapped wrongly, a planted foot jumped 5 m/s).
    """
    n = len(step) + 1
    cost = np.array([0.0, swap_cost])
    back = np.zeros((n, 2), int)
    for t in range(1, n):
        new = np.empty(2)
        for s in range(2):
            options = cost + step[t - 1, :, s]
            back[t, s] = int(np.argmin(options))
            new[s] = options[back[t, s]] + (swap_cost if s else 0.0)
        cost = new
    state = np.zeros(n, int)
    state[-1] = int(np.argmin(cost))
    for t in range(n - 1, 0, -1):
        state[t - 1] = back[t, state[t]]
    swapped = state.astype(bool)
    for end in (slice(None), slice(None, None, -1)):
        run = np.cumprod(swapped[end]).astype(bool)  # the stretch touching that end
        swapped[end] &= ~run
    return swapped


def untangle_sides(image: np.ndarray, valid: np.ndarray, parts: tuple[str, ...] = LEG_PARTS,
                   prefer_given: float = 0.02) -> np.ndarray:
    """``(T,)`` frames where MediaPipe swapped the left and right ``parts`` (the legs, or the arms; see the module
    docstring).

    Args:
        image: ``(T, 33, 2)`` pixels.
        valid: ``(T,)`` frames with a detection (the others are skipped: continuity runs across gaps).
        parts: the landmarks, by name without ``left_``/``right_``: :data:`LEG_PARTS` or :data:`ARM_PARTS`.
        prefer_given: cost of swapping one frame, against a jump of the parts in the image by one torso length.

    Minimises, over the per-frame choice swapped / not, the parts' frame-to-frame image jumps (mean over their
    landmarks, in torso lengths) plus ``prefer_given`` per swapped frame: a Viterbi pass over two
    states. Only continuity tells: a stretch is swapped back when its two ends jump. A cue for which labelling
    is right within a stretch (thighs crossing in the image or in 3D) was tried and rejected: legs do cross
    in the image when a walk is filmed from the side, and MediaPipe's 3D hip line swings too much to judge by.
    On the pose_accuracy tuning clips and more cameras of the same motions (12 clips) this swaps back all 41
    swapped frames of legs (38 in the punch from 30 degrees) and 2 frames wrongly; 0.03 already missed half the
    punch's. Stretches touching the clip's first or last frame are left as MediaPipe gave them.
    """
    from .estimators import LM

    idx = np.flatnonzero(np.asarray(valid, bool))
    flags = np.zeros(len(image), bool)
    if len(idx) < 2:
        return flags
    I = np.asarray(image, np.float64)[idx]
    left, right = _side_pairs(parts)
    torso = np.median(np.linalg.norm(0.5 * (I[:, LM["left_shoulder"]] + I[:, LM["right_shoulder"]]
                                            - I[:, LM["left_hip"]] - I[:, LM["right_hip"]]), axis=-1))
    torso = max(float(torso), 1e-6)
    sides = [np.concatenate([I[:, left], I[:, right]], axis=1), np.concatenate([I[:, right], I[:, left]], axis=1)]
    step = np.empty((len(idx) - 1, 2, 2))
    for p in range(2):
        for s in range(2):
            step[:, p, s] = np.linalg.norm(sides[s][1:] - sides[p][:-1], axis=-1).mean(axis=-1) / torso
    flags[idx] = _two_state_path(step, prefer_given)
    return flags


def _half(axis: str) -> tuple[np.ndarray, np.ndarray]:
    """The landmarks of one half of the body (``axis`` "hip": hips and legs; "shoulder": the rest, head and arms)
    and, per landmark, its opposite side's (itself where it has none): ``(indices (K,), mirrored (K,))``."""
    from .estimators import LANDMARKS, LM

    names = LANDMARKS[LM["left_hip"]:] if axis == "hip" else LANDMARKS[:LM["left_hip"]]
    swap = {"left": "right", "right": "left"}
    opposite = [next((n.replace(a, b) for a, b in swap.items() if a in n), n) for n in names]
    return np.array([LM[n] for n in names]), np.array([LM[n] for n in opposite])


def _facing(world: np.ndarray, axis: str) -> np.ndarray:
    """``(T, 3)`` unit vectors one half of the trunk faces, from ``world (T, 33, 3)`` landmarks in camera axes (x
    right, y down, z away): the ``axis`` landmarks' (hips or shoulders) left-to-right line crossed with the trunk's
    up (hips to shoulders)."""
    from .estimators import LM

    W = np.asarray(world, np.float64)
    left = W[:, LM[f"left_{axis}"]] - W[:, LM[f"right_{axis}"]]
    up = (W[:, [LM["left_shoulder"], LM["right_shoulder"]]].mean(axis=1)
          - W[:, [LM["left_hip"], LM["right_hip"]]].mean(axis=1))
    f = np.cross(left, up)
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-9)


def mirrored_frames(world: np.ndarray, valid: np.ndarray, axis: str = "hip",
                    prefer_given: float = MIRROR_COST) -> np.ndarray:
    """``(T,)`` frames where MediaPipe saw one half of the body (``axis`` "hip": the hips and legs, "shoulder":
    the shoulders, arms and head) mirrored: facing away where it faces the camera (or the reverse), its left and
    right landmarks exchanged and its depths reflected, another reading of the same image (see :func:`unmirror`).

    Args:
        world: ``(T, 33, 3)`` metric, hip-centred landmarks in camera axes (x right, y down, z away).
        valid: ``(T,)`` frames with a detection (the others are skipped: continuity runs across gaps).
        prefer_given: cost of unmirroring one frame, in radians of that half's turn between frames.

    Minimises that half's frame-to-frame turn (radians) plus ``prefer_given`` per unmirrored frame, a Viterbi
    pass over two states: nobody turns half round in a frame, so a facing that flips for a few frames and back is
    MediaPipe's. A runner filmed from the front (rendered, pose_accuracy's run clips): MediaPipe read 9 of 90 frames
    as seen from behind, the trunk's facing jumping 140-180 degrees each time, where from frame to frame it turns
    under 50 (the tuning clips' 99th percentile 5-45 degrees); the legs' image continuity missed most of these, the
    legs there being a few pixels apart. The halves apart: a punch seen from 30 degrees had its shoulders, arms and
    head mirrored for 6 frames, its hips and legs not. A reflection in the image plane leaves the image as it is,
    so side on it changes nothing and nothing tells it (the facing stays); from the front or behind it turns the
    half round, which the continuity tells. Stretches touching the clip's ends are left as given (see
    :func:`_two_state_path`). On the 12 tuning clips (pose_accuracy's and more cameras of its motions) and four
    rendered runs this turned back 20 frames of hips and 31 of shoulders, each mirrored in the truth, and none
    wrongly; it misses frames where MediaPipe mirrored the hips alone, half way (a facing 30-90 degrees off).
    ``prefer_given`` from 0.4 to 0.7 picks the same frames; 0.3 also turned back a frame of a panned run whose
    hips alone were mirrored, and the legs' untangling then swapped four frames wrongly (foot skate beyond the
    truth's 22.8 -> 32.8 cm/s).
    """
    idx = np.flatnonzero(np.asarray(valid, bool))
    flags = np.zeros(len(world), bool)
    if len(idx) < 2:
        return flags
    f = _facing(np.asarray(world, np.float64)[idx], axis)
    faces = [f, f * np.array([1.0, 1.0, -1.0])]  # unmirrored: the facing reflected in the image plane
    step = np.empty((len(idx) - 1, 2, 2))
    for p in range(2):
        for s in range(2):
            step[:, p, s] = np.arccos(np.clip((faces[p][:-1] * faces[s][1:]).sum(axis=-1), -1.0, 1.0))
    flags[idx] = _two_state_path(step, prefer_given)
    return flags


def unmirror(image: np.ndarray, world: np.ndarray, vis: np.ndarray, flags: np.ndarray,
             axis: str = "hip") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image (T, 33, 2)``, ``world (T, 33, 3)`` (hip-centred, camera axes), ``vis (T, 33)`` with one half of the
    body (``axis``: see :func:`mirrored_frames`) reflected back in the image plane in frames where ``flags (T,)``:
    its left and right landmarks exchanged, and depths reflected about the hips' (a body and its reflection in the
    image plane look alike in the image, the reflection facing the other way with its left and right exchanged).

    The depths reflected are the upper half's all, the lower half's hips only: reflecting the legs' too made the
    tuning walk's foot skate worse (beyond the truth's, 7.3 -> 9.1 cm/s) and the front-view run's (146 -> 165),
    and reflecting none of the arms' left their wrists crossed (pose_accuracy, cached MediaPipe output).
    """
    from .estimators import LM

    own, opposite = _half(axis)
    f = np.flatnonzero(np.asarray(flags, bool))
    image, world, vis = np.array(image, copy=True), np.array(world, np.float64, copy=True), np.array(vis, copy=True)
    if not len(f):
        return image, world, vis
    rows = f[:, None]
    hips = [LM["left_hip"], LM["right_hip"]]
    hips_z = world[f][:, hips, 2].mean(axis=1, keepdims=True)
    w = world[rows, opposite]
    reflected = np.isin(own, hips) if axis == "hip" else np.ones(len(own), bool)
    w[:, reflected, 2] = 2 * hips_z - w[:, reflected, 2]
    image[rows, own], vis[rows, own], world[rows, own] = image[rows, opposite], vis[rows, opposite], w
    return image, world, vis


def untangle_person(image: np.ndarray, world: np.ndarray, vis: np.ndarray,
                    valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image (T, 33, 2)``, ``world (T, 33, 3)`` (hip-centred, camera axes), ``vis (T, 33)`` with MediaPipe's
    mirrored halves turned back (:func:`mirrored_frames`, by the trunk's facing) and then its swapped legs and arms
    swapped back (:func:`untangle_sides`, by their image continuity); ``valid (T,)``: frames with a detection.

    A limb that the continuity swaps back in a frame where its half was turned back was not mirrored with it (a
    walk seen from 60 degrees: the shoulders read as seen from behind for two frames, the arms not): it is taken
    as MediaPipe gave it, depths included. Swapping only its labels back left the arms' depths reflected there
    (pose_accuracy, that clip: MPJPE 90.8 -> 91.6 mm, jitter 14.0 -> 15.1 m/s²; taken as given: 90.8, 13.8).
    """
    given = image, world, vis
    for axis, parts in zip(MIRROR_HALVES, SIDE_GROUPS):  # the legs in the lower half, the arms in the upper
        turned = mirrored_frames(world, valid, axis)
        image, world, vis = unmirror(image, world, vis, turned, axis)
        swapped = untangle_sides(image, valid, parts)
        image, world, vis = (swap_sides(image, swapped, parts), swap_sides(world, swapped, parts),
                             swap_sides(vis[..., None], swapped, parts)[..., 0])
        back = swapped & turned
        limb = [i for side in _side_pairs(parts) for i in side]
        for now, before in zip((image, world, vis), given):
            now[np.ix_(back, limb)] = before[np.ix_(back, limb)]
    return image, world, vis


def hands_out_of_trunk(P: np.ndarray, fps: float, margin: float = 0.05, elbow_share: float = 0.5,
                       ease: float = 0.3) -> np.ndarray:
    """World landmarks with each wrist that lies inside the trunk, past its midline, moved back to its own side.

    The trunk, per frame: from 15 cm below the hips' midpoint up to the shoulders' midpoint, within
    :data:`TRUNK_HALF_DEPTH` of the frontal plane through them; "past the midline" is along the hips' width
    (right hip -> left hip for the left wrist). Such a wrist, its hand's landmarks with it, moves along the width
    to ``margin`` beyond its own hip, the elbow ``elbow_share`` of the way (the elbow's bend roughly kept: moving
    the wrist alone bent the arm, elbow error on a side-view call 15 -> 17 degrees); the move eases in and out
    over ``ease`` seconds (a hard switch at the trunk's surface added jitter).

    Why the wrist's own side and not the nearest way out (front or back): on the pose_accuracy tuning clips the
    truth's wrists in those frames were 20-35 cm out on their own side, and the nearest way out left most of the
    crossings (wrist-frames wrongly past the midline over twelve tuning clips and cameras: 2.3 -> 2.2 %; to the
    own side 2.3 -> 1.4 %). Measured on the tuning clips (cached
    MediaPipe output): frames with a wrist wrongly past the midline 4.4 -> 1.9 % (more cameras 4.6 -> 2.8 %),
    MPJPE 123.5 -> 123.3 mm, PA-MPJPE 80.7 -> 80.3, elbow error 19.4 -> 19.7 degrees (17.3 unchanged on more
    cameras), jitter 11.2 -> 11.3 m/s², lag unchanged; the shared real clips' crossings (a forearm held across
    the belly, in front of it) are untouched.

    Args:
        P: ``(T, 33, 3)`` landmarks in metres (any axes; the trunk's frame comes from its own landmarks).
        fps: frame rate (for ``ease``).

    Returns:
        ``(T, 33, 3)``, a copy.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    from .estimators import LM

    P = np.array(P, dtype=np.float64)
    left_hip, right_hip = P[:, LM["left_hip"]], P[:, LM["right_hip"]]
    hips = 0.5 * (left_hip + right_hip)
    width = left_hip - right_hip
    half = 0.5 * np.linalg.norm(width, axis=-1)
    width = width / np.maximum(2 * half, 1e-9)[:, None]
    up = 0.5 * (P[:, LM["left_shoulder"]] + P[:, LM["right_shoulder"]]) - hips
    up = up - (up * width).sum(-1, keepdims=True) * width
    top = np.linalg.norm(up, axis=-1)
    up = up / np.maximum(top, 1e-9)[:, None]
    forward = np.cross(width, up)
    n = max(1, int(round(ease * fps)))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        w = P[:, LM[f"{side}_wrist"]] - hips
        own = sign * (w * width).sum(-1)  # how far on its own side; negative: past the midline
        height, depth = (w * up).sum(-1), (w * forward).sum(-1)
        inside = (own < 0) & (np.abs(depth) < TRUNK_HALF_DEPTH) & (height > -0.15) & (height < top)
        move = np.where(inside, half + margin - own, 0.0)
        move = uniform_filter1d(maximum_filter1d(move, n, mode="nearest"), n, mode="nearest")
        move[move < 1e-6] = 0.0  # the running mean's rounding: frames far from any move stay exactly as seen
        shift = (sign * move)[:, None] * width
        for part in ("wrist", "index", "pinky", "thumb"):
            P[:, LM[f"{side}_{part}"]] += shift
        P[:, LM[f"{side}_elbow"]] += elbow_share * shift
    return P
