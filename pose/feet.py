"""Planted feet stay put: each contact's foot is held on one spot of the floor and the leg reaches it.

Why the legs and not only the root: MediaPipe's 3D pose is short of depth, so a person walking towards the camera
takes strides a third as long as they are (measured on the pose_accuracy bench: the foot's travel relative to the
hips 0.21-0.37 m against 0.68 m), while the root path, from the person's size and place in the image, travels at the
right speed. Moving the root to hold the feet would slow the walk to the short strides; holding the feet with the
root left alone slid them at nearly walking speed. So the landmarks of each planted leg are moved: the foot
(heel, ankle, toe) is moved onto the contact's spot at floor height, and the knee is placed by two-bone IK (thigh and shin keep their lengths, the knee stays in the bend plane it was seen in).
Between contacts the foot's shift is interpolated, so the swing carries the foot from one spot to the next.

Each part of a planted foot (heel, ankle, toe) is held on its own spot along the floor, not only the foot's
centre: MediaPipe's foot turns and wobbles about its centre from frame to frame, and with the centre held the
ankle and toe joints still moved 7-17 cm/s through contacts (pose_accuracy tuning clips; foot skate beyond the
truth's 11.2 -> 7.3 cm/s with the parts held). Heights stay the frame's own (the foot's lowest point on the
floor): a heel rising before the step is real, and freezing it too straightened late-stance knees (knee error
on the walks filmed from 60 degrees 12.4 -> 15.0 degrees).

Short gaps in a foot's contacts that end where they began are bridged (:func:`bridge_contacts`): MediaPipe
loses a still foot for a few frames (a standing call seen from 60 degrees: the left foot "jumped" 25 cm up and
back), the contact detector rightly dropped those frames, and the foot then floated on the root path's noise.
"Where they began" allows :data:`BRIDGE_MOVE` along the floor: the same standing call's still foot landed 16 and 19
cm from where it stood before its two gaps (MediaPipe's foot and the root path's depth wander), and at 10 cm it
was let go there, 9 % of its frames moving at 1.5 m/s. pose_accuracy tuning cases (cached MediaPipe replay) at
10 / 15 / 20 cm: foot skate beyond the truth's 7.2 / 5.4 / 3.9 cm/s (the call 15.5 / 4.2 / 2.0), MPJPE 123.3 /
122.7 / 123.0 mm, knee flexion error 13.1 / 12.9 / 13.2 degrees (the punch's shuffle held at 20: 13.8 -> 15.4),
feet height where planted 3.1 / 3.2 / 3.2 cm; more cameras of the tuning motions: skate 4.6 / 4.6 / 3.2. 15 cm
was kept first (no cost to the knees); 20 now that a foot out of reach turns about its toe (below): the punch's
planted toe, its heel swivelling, comes back 17-19 cm from where it was after each of three short gaps, and let go
there it skated 9.5 cm/s beyond the truth's (2.9 bridged). A real step moves a foot further than that.
A gap of :data:`BLINK_SECONDS` or less (two frames at 30 fps) is bridged wherever the spots seem to be: no foot
swings from one spot to the next that fast (a sprinter's swing takes a quarter of a second), while a running
person's spots, on the root path that travels at their speed under MediaPipe's short strides, seem 20 cm apart
after 0.07 s. Rendered runs (pose_accuracy's motions in styles other than its held-out one, cached MediaPipe
replay): a planted foot lost for two frames was let go there and skated at running speed; with the blink bridged,
foot skate beyond the truth's from a panning camera 17.5 -> 3.8 cm/s (run_tired / Slim) and 60.6 -> 0.9
(run_giant / Slim), slide 14.7 -> 3.0 and 63.5 -> 2.0 cm/s, mean of ten run renders 25.3 -> 17.9; the tuning
cases and the extra cameras of their motions unchanged but for 2.5 mm of PA-MPJPE on the walk from a low camera
(mean 87.0 -> 87.5). Three frames (0.1 s) is too long: the walk seen from the front, whose swings the contact
detector squeezes into three frames, had real steps bridged (its MPJPE 88 -> 122 mm).

A planted foot whose ankle the leg cannot reach (the hips have passed it: late in a stance) turns about its toe
(:data:`TOE_PIVOT`): the toe keeps its spot and the ankle goes where the leg reaches, as near its own spot as can
be, the heel rising with it, as a walker's does before the toe leaves. Before, the whole foot was let go, sliding
after the hips: most of what was left of the walks' skate (the CMU walk's right toe 15-50 cm/s through the end of
each stance where the truth's stood still). Only where the hips are ahead of the toe: a foot landing ahead of the
body would turn about the heel, not the toe (turning it about the toe there made the walks' skate worse, 5.4 ->
6.1 cm/s). pose_accuracy tuning cases (cached MediaPipe replay), the two changes together: foot skate beyond the
truth's 5.4 -> 3.8 cm/s, slide 5.8 -> 5.4, MPJPE 121.5 -> 121.2 mm, PA-MPJPE 78.0 -> 77.7, jitter 10.0 -> 9.9
m/s^2, lag and head pitch unchanged; knee flexion error 12.9 -> 13.2 degrees (the punch's bridged leg, 13.8 ->
15.4: the held spot straightens it) and feet height where planted 3.2 -> 3.5 cm (raised heels). Alone, the turn
(skate 5.3, MPJPE 120.9, jitter 10.1) and the 20 cm (skate 3.9, MPJPE 121.8, jitter 9.8) each cost something the
other pays back. Also tried: easing a foot's speed along the floor from zero as it leaves or comes onto its spot
(0.1-0.3 s): skate 5.4 -> 5.1-4.2 cm/s, but jitter 10.0 -> 10.4 (the front-view walks' swings, already squeezed
into a few frames by contacts twice as long as the truth's, squeezed more), so not kept; trimming a contact's
ends where the leg could not reach its spot: skate 10-15 cm/s.
Between contacts the foot is still carried along by the interpolated shift, but the swinging leg only points
at it, keeping the knee's bend as MediaPipe saw it (:data:`SWING_BLEND` from a contact it turns from reaching
its spot to that): reaching the carried foot, which stretches the short strides, straightened swinging knees
(swing knee flexion 28 degrees short of the truth on the walks filmed from the front; knee error on the tuning
clips 16.4 -> 15.7 degrees with this).

A leg keeps MediaPipe's knee bend, not its hip-to-ankle distance: the fitted thigh and shin are the clip's
median lengths, and a frame whose legs MediaPipe drew longer straightened that knee (the distance was beyond the
fitted leg's reach). And a planted knee bends or straightens at most :data:`KNEE_FREEDOM` degrees from the bend
seen to reach its spot; the rest of the way, the foot is let go (it stops short, pointing at the spot). The
contact detector's false contacts (a third of the frames of a walk filmed from the front are a swinging foot
taken as planted) had the leg reach a spot it was swinging away from: swinging knees 21-26 degrees straighter
than the truth on the front-view walks where the first fit was within a degree, and a standing call seen from
60 degrees bent its knees 19 degrees where it stood straight (held spots a little closer than the leg). On the
pose_accuracy tuning clips (cached MediaPipe output), 180 (no limit) / 30 / 20 / 12 / 8 degrees: knee flexion
error 15.0 / 14.1 / 13.1 / 12.4 / 11.9 degrees (15.7 before both changes) and foot skate beyond the truth's
7.0 / 7.1 / 7.2 / 7.5 / 7.7 cm/s (6.3 before; the feet let go tremble with the seen bend's noise: the call
6.3 -> 11.1 -> 15.5, its whole-contact slide unchanged at 1.2); 20 keeps most of the knee's gain for little skate
(more cameras: knee 15.0 -> 13.6 degrees, skate 16.0 -> 14.9 cm/s; valgus 9.1 -> 8.6, jitter 11.4 -> 11.2
m/s^2, lag unchanged). Smoothing the seen bend (0.3-0.6 s) before the limit changed nothing.

The knee's bend plane is turned halfway from the one seen towards the foot's own (hip, knee and toes in one
plane: knees track over the toes). MediaPipe's knees lean inwards (valgus bias +3.5 degrees on the tuning clips,
and more once swinging legs kept their seen bend); halfway: valgus error 10.3 -> 9.1 degrees on the tuning clips
(bias -1.5), 11.8 -> 8.8 on more cameras, jitter 11.7 -> 11.4 m/s^2; all the way over-corrected (bias -6.5).

The clip's first and last frames count as contacts where the foot stands then: the speeds there are the least
sure (a smoothing filter's ends), and a still foot lost at the very end had skated at 4-6 m/s. Not where the foot
is :data:`END_HEIGHT` above the other one or the floor (the fit's feet that high are in the air, whatever their
speed): a run filmed from its middle began with the swinging foot taken as planted on the landing spot it was
coming down to (its travel in the air, a few frames at running speed, seemed within :data:`BRIDGE_MOVE`), and the
root came down 26 cm to put it on the floor in the first frame; the root path's error, measured from the first
frame, was that much all along (run_childish / Ava from a panning camera, cached MediaPipe replay: root path error
276 -> 204 mm; fifteen run renders 284 -> 279 mm; the pose_accuracy tuning cases, more cameras of their motions
and the shared real clips unchanged). Lower limits freed more of that run's first frames (15 cm: 175 mm) but also
the last frame of another's stance, read 18 cm above the other foot where the truth's toe was still down (its
skate beyond the truth's 0.6 -> 16.8 cm/s); at 10 cm the tuning cases' skate rose 3.7 -> 4.1 cm/s.

Tried and not kept (pose_accuracy tuning clips, cached MediaPipe output): dropping contact frames where the leg
could not reach the spot (knee 16.4 -> 15.4 degrees, but the feet let go floated on the root's noise: skate
beyond the truth's 6.2 -> 8.2 cm/s); dropping a contact while the foot moves forwards relative to the other one
along the walk (the same trade, and front-view walks lost true contacts); lowering the hips so planted legs keep
their seen bend (knee and valgus worse with the detected contacts, better only with the truth's). The contact
detector's precision on walks filmed from the front (about 0.6: the image shows a foot swinging towards the
camera as nearly still) is what is left between these and the targets.

Conventions: world landmarks ``(T, 33, 3)`` in metres, Y up, floor at y = 0 (:mod:`pose.root`); contacts
``(T, 2)`` left, right.
"""
from __future__ import annotations

import numpy as np

from .estimators import LM
from .fit import HIP_JOINT_SHARE, BodyLengths

__all__ = ["plant_legs", "foot_shifts", "contact_runs", "bridge_contacts", "FOOT_PARTS", "SWING_BLEND",
           "KNEE_OVER_TOES", "KNEE_FREEDOM", "BRIDGE_MOVE", "BLINK_SECONDS",
           "END_HEIGHT", "TOE_PIVOT"]

_SIDES = ("left", "right")
FOOT_PARTS = ("ankle", "heel", "foot_index")  # the landmarks of a foot, in the order of foot_shifts
SWING_BLEND = 0.15  # seconds from a contact over which a swinging leg turns from reaching its spot to its own bend
KNEE_FREEDOM = 20.0  # degrees a planted knee may bend or straighten from its seen bend to reach its spot
BRIDGE_MOVE = 0.2  # metres a still foot may seem to move across a short gap in its contacts (see the docstring)
BLINK_SECONDS = 0.07  # a gap this short in a foot's contacts is bridged wherever its spots seem to be (docstring)
END_HEIGHT = 0.25  # metres above the other foot (or floor): a foot this high at the clip's ends is not planted
TOE_PIVOT = True  # a planted foot out of the leg's reach turns about its toe (see the module docstring)
KNEE_OVER_TOES = 0.5  # how far the knee's bend plane turns from the one seen towards the foot's (0: as seen)


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
    """``(T, 2, 3, 3)`` how far each part of each foot (:data:`FOOT_PARTS`) must move to stand on its contact's
    spot, interpolated between contacts.

    Along the floor, each part's spot is its median over the contact; up and down, the whole foot moves so its
    lowest point (toe, or the sole under the ankle) touches the floor in each frame.
    """
    T = len(P)
    out = np.zeros((T, 2, len(FOOT_PARTS), 3))
    t = np.arange(T)
    for f, side in enumerate(_SIDES):
        parts = np.stack([P[:, LM[f"{side}_{n}"]] for n in FOOT_PARTS], axis=1)  # (T, 3, 3)
        sole = np.minimum(parts[:, 0, 1] - lengths.ankle_height, parts[:, 2, 1])
        have = np.zeros(T, bool)
        d = np.zeros((T, len(FOOT_PARTS), 3))
        for s, e in contact_runs(contacts[:, f]):
            d[s:e] = np.median(parts[s:e], axis=0) - parts[s:e]
            d[s:e, :, 1] = -sole[s:e, None]
            have[s:e] = True
        if have.any():
            flat = d.reshape(T, -1)
            out[:, f] = np.stack([np.interp(t, t[have], flat[have, c]) for c in range(flat.shape[1])],
                                 axis=1).reshape(T, len(FOOT_PARTS), 3)
    return out


def bridge_contacts(P: np.ndarray, contacts: np.ndarray, fps: float, max_gap: float = 0.4,
                    max_move: float = BRIDGE_MOVE, blink: float = BLINK_SECONDS,
                    heights: np.ndarray | None = None) -> np.ndarray:
    """``(T, 2)`` contacts with each gap of ``max_gap`` seconds or less filled where the foot's centre stands on
    the two contacts' spots (medians) less than ``max_move`` metres apart along the floor (see the module
    docstring); a gap at the clip's start or end is filled where the foot there stands on its neighbour
    contact's spot. A real step moves the foot further; a tap in place that short is held on the floor. A gap
    between two contacts of ``blink`` seconds or less is filled wherever the spots are (no step is that quick).

    P: ``(T, 33, 3)`` world landmarks (Y up). heights: ``(T, 2)`` each foot's lowest point above the other's,
    metres (the contact detector's); where given, a gap at the clip's ends is filled only next to the contact,
    up to where the foot is :data:`END_HEIGHT` or higher.
    """
    c = np.asarray(contacts, bool).copy()
    high = np.zeros(c.shape, bool) if heights is None else np.asarray(heights) >= END_HEIGHT
    for f, side in enumerate(_SIDES):
        centre = sum(P[:, LM[f"{side}_{n}"]] for n in FOOT_PARTS) / len(FOOT_PARTS)
        runs = contact_runs(c[:, f])
        if not runs:
            continue
        T = len(c)
        # The clip's ends count as contacts where the foot is (the speeds there are least sure).
        runs = ([(0, 0)] if runs[0][0] > 0 else []) + runs + ([(T, T)] if runs[-1][1] < T else [])
        for (s0, e0), (s1, e1) in zip(runs[:-1], runs[1:]):
            if 0 < e0 and s1 < T and (s1 - e0) / fps <= blink + 1e-9:
                c[e0:s1, f] = True
            elif (s1 - e0) / fps <= max_gap:
                spots = [np.median(centre[a:b] if b > a else centre[e0:s1], axis=0) for a, b in ((s0, e0), (s1, e1))]
                if np.linalg.norm((spots[0] - spots[1])[[0, 2]]) < max_move:
                    lo, hi = e0, s1
                    if e0 == 0 and high[:s1, f].any():  # the clip's start: from the last frame held high
                        lo = int(np.flatnonzero(high[:s1, f])[-1]) + 1
                    if s1 == T and high[e0:, f].any():  # its end: up to the first
                        hi = e0 + int(np.flatnonzero(high[e0:, f])[0])
                    c[lo:hi, f] = True
    return c


def _hip_joints(P: np.ndarray) -> list[np.ndarray]:
    """Where the fit puts the hip joints (:data:`pose.fit.HIP_JOINT_SHARE`), left and right, ``(T, 3)`` each."""
    hips = 0.5 * (P[:, LM["left_hip"]] + P[:, LM["right_hip"]])
    return [hips + HIP_JOINT_SHARE * (P[:, LM[f"{side}_hip"]] - hips) for side in _SIDES]


def _near_contact(flags: np.ndarray, n: float) -> np.ndarray:
    """``(T,)`` 1 where ``flags (T,)``, falling linearly to 0 at ``n`` frames from the nearest flagged frame."""
    flags = np.asarray(flags, bool)
    if not flags.any():
        return np.zeros(len(flags))
    idx = np.flatnonzero(flags)
    t = np.arange(len(flags))
    pos = np.searchsorted(idx, t)
    gap = np.minimum(np.abs(t - idx[np.clip(pos - 1, 0, len(idx) - 1)]), np.abs(idx[np.clip(pos, 0, len(idx) - 1)] - t))
    return np.clip(1.0 - gap / max(n, 1e-9), 0.0, 1.0)


def _pivot_on_toe(hip: np.ndarray, reach: np.ndarray, ankle: np.ndarray, heel: np.ndarray, toe: np.ndarray,
                  weight: np.ndarray, foot: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the ``(T, 3)`` ankle spot is more than ``reach (T,)`` metres from the hip and the hip is ahead of the
    toe, the foot turned about its toe so that it is not: the new ``(T, 3)`` ankle, heel and toe spots, moved
    ``weight (T,)`` of the way (1 in a contact).

    The foot turns about where the fitted toe joint will be, ``foot`` metres (the fitted ankle-to-toe bone) from
    the ankle towards the toe landmark (MediaPipe's foot is often shorter or longer than that, and turned about
    the landmark the fitted toe would still move); the ankle goes as near its spot as can be. Where even the foot
    in line with the leg cannot reach, the foot points along the hip-toe line and stops short of its spot.
    """
    pivot = ankle + foot * _unit(toe - ankle)
    n = pivot - hip
    D = np.linalg.norm(n, axis=-1)
    n = _unit(n)
    turn = (np.linalg.norm(ankle - hip, axis=-1) > reach + 1e-6) & (weight > 0)  # beyond reach, not too near
    turn &= D > np.abs(reach - foot) + 1e-6
    turn &= np.sum((ankle - toe)[:, [0, 2]] * (hip - toe)[:, [0, 2]], axis=-1) < 0  # the hip ahead of the toe
    if not turn.any():
        return ankle, heel, toe
    # The ankles at reach from the hip and foot from the pivot form a circle around the hip-pivot line; the one
    # nearest the ankle's spot. Beyond the leg and foot's length the circle shrinks to the point on the line.
    along = np.minimum((reach ** 2 - foot ** 2 + D ** 2) / (2 * np.maximum(D, 1e-9)), reach)
    centre = hip + n * along[:, None]
    radius = np.sqrt(np.maximum(reach ** 2 - along ** 2, 0.0))
    new = centre + _unit(_perp(ankle - centre, n)) * radius[:, None]
    pivot_new = np.where((D > reach + foot)[:, None], hip + n * (reach + foot)[:, None], pivot)
    # Heel and toe turn with the foot: the rotation taking the pivot-to-ankle direction to the new one.
    a, b = _unit(ankle - pivot), _unit(new - pivot_new)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True)
    k = axis / np.maximum(sin, 1e-12)

    def turned(p: np.ndarray) -> np.ndarray:
        v = p - pivot
        return pivot_new + v * cos + np.cross(k, v) * sin + k * np.sum(k * v, axis=-1, keepdims=True) * (1 - cos)

    w = np.where(turn, weight, 0.0)[:, None]
    return ankle + w * (new - ankle), heel + w * (turned(heel) - heel), toe + w * (turned(toe) - toe)


def plant_legs(P: np.ndarray, contacts: np.ndarray, lengths: BodyLengths, shifts: np.ndarray | None = None,
               fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World landmarks with each foot moved by its shift and the knee placed so the leg reaches it.

    Args:
        P: ``(T, 33, 3)`` world landmarks (Y up, floor y = 0). contacts: ``(T, 2)`` planted flags.
        lengths: the person's measurements (thigh and shin for the IK, the ankle's height for the floor).
        shifts: ``(T, 2, 3, 3)`` foot parts' shifts; default :func:`foot_shifts`.
        fps: the frame rate; given, a swinging leg keeps its knee's bend (reaching its foot's shifted place only
            within :data:`SWING_BLEND` seconds of a contact); None: every leg reaches its foot's shifted place.

    Returns:
        The new ``(T, 33, 3)`` landmarks and ``(T, 2)`` how far each ankle's spot is out of the leg's reach,
        metres (a leg too short to reach, or whose knee would have to straighten more than :data:`KNEE_FREEDOM`,
        turns its planted foot about the toe (:data:`TOE_PIVOT`), or where even that cannot reach, stops short,
        pointing at it).
    """
    P = np.asarray(P, dtype=np.float64).copy()
    shifts = foot_shifts(P, contacts, lengths) if shifts is None else shifts
    short = np.zeros((len(P), 2))
    a, b = lengths.thigh, lengths.shin  # the refit gives the legs these lengths anyway
    toe_bone = float(np.hypot(lengths.ankle_height, lengths.foot_length))  # the fitted ankle-to-toe bone

    def reach_of(bend: np.ndarray) -> np.ndarray:  # hip-to-ankle distance of the fitted leg with its knee so bent
        return np.sqrt(np.maximum(a * a + b * b + 2 * a * b * np.cos(np.clip(bend, 0.0, np.pi)), 0.0))

    for f, (side, hip) in enumerate(zip(_SIDES, _hip_joints(P))):
        knee, ankle = P[:, LM[f"{side}_knee"]], P[:, LM[f"{side}_ankle"]]
        heel, toe = P[:, LM[f"{side}_heel"]], P[:, LM[f"{side}_foot_index"]]
        target = ankle + shifts[:, f, 0]
        reach = target - hip
        dist = np.linalg.norm(reach, axis=-1)
        # A swinging leg points at its shifted foot with the knee bent as seen (see the module docstring).
        w = _near_contact(contacts[:, f], SWING_BLEND * fps) if fps else np.ones(len(P))
        seen = np.arccos(np.clip((_unit(knee - hip) * _unit(ankle - knee)).sum(-1), -1.0, 1.0))  # knee bend seen
        free = np.radians(KNEE_FREEDOM)  # a knee bends or straightens this much at most to reach the spot

        def allowed(x: np.ndarray) -> np.ndarray:  # the hip-to-ankle distance nearest x the knee's freedom allows
            return np.clip(np.clip(x, reach_of(seen + free), reach_of(seen - free)), abs(a - b) + 1e-3, a + b - 1e-4)

        heel_at, toe_at = heel + shifts[:, f, 1], toe + shifts[:, f, 2]
        spot_reach = w * dist + (1 - w) * reach_of(seen)  # where the ankle would go without the turn
        short[:, f] = np.maximum(spot_reach - allowed(spot_reach), 0.0)
        if TOE_PIVOT:
            # A planted foot whose ankle is out of the leg's reach turns about its toe (see the module docstring).
            target, heel_at, toe_at = _pivot_on_toe(hip, allowed(dist), target, heel_at, toe_at, w, toe_bone)
            reach = target - hip
            dist = np.linalg.norm(reach, axis=-1)
        wanted = w * dist + (1 - w) * reach_of(seen)
        d = allowed(wanted)
        u = _unit(reach)
        # The knee bends halfway between where it was seen and towards the toes (see the module docstring); a
        # straight leg bends towards the toes (knees bend forward).
        bend = _perp(knee - hip, u)
        straight = np.linalg.norm(bend, axis=-1, keepdims=True) < 0.01
        v = _unit(np.where(straight, _perp(toe - heel, u), bend))
        v = _unit((1 - KNEE_OVER_TOES) * v + KNEE_OVER_TOES * _unit(_perp(toe - heel, u)))
        along = (a * a - b * b + d * d) / (2 * d)
        out = np.sqrt(np.maximum(a * a - along * along, 0.0))
        new_ankle = hip + u * d[:, None]
        new_knee = hip + u * along[:, None] + v * out[:, None]
        short_by = new_ankle - target  # zero where the leg reaches: heel and toe then stand on their spots
        for name, p in (("knee", new_knee), ("ankle", new_ankle), ("heel", heel_at + short_by),
                        ("foot_index", toe_at + short_by)):
            P[:, LM[f"{side}_{name}"]] = p
    return P, short
