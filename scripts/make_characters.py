"""Generate the built-in characters in ``assets/characters/<Name>.npz`` (our own procedural generator, no assets).

    python scripts/make_characters.py                  # all characters
    python scripts/make_characters.py --only Bob       # some of them
    python scripts/make_characters.py --preview /tmp/characters_preview.png

Each character is built the same way, deterministically:

1. A canonical skeleton with hands (the 22 canonical joints and Mixamo's 30 finger joints, identity rest rotations)
   in the T-pose: facing +Z, Y up, arms straight out along +-X (its left arm to +X), palms down, feet flat on y = 0,
   from a handful of per-character proportions; the fingers are core.skeleton's canonical hand sized to the
   character's hand, their knuckles spread across its palm.
2. A smooth implicit body around it: ellipsoids, tapered capsules and rounded boxes (pelvis, waist, chest, belly,
   neck, skull, jaw, nose, ears, deltoids, arms, palms, thighs, calves, shoes; each finger a part of its own),
   joined inside a body part with a polynomial smooth-min and between parts with a small blend radius, so arms and
   legs stay apart and fingers do not web.
3. The zero level set is polygonised by marching cubes (skimage) on a grid sized for ~50k triangles (7-11 mm), 4-5
   times finer along each axis where it crosses a hand (a rectilinear grid: fingers 1 cm apart need it, the body
   does not), decimated with quadric edge collapses (manifold-safe, no fold-overs or new slivers; the hands' shape
   error weighted up so fingers stay round) to 10k triangles, then evened out by edge flips and tangential
   smoothing re-projected onto the implicit surface: a closed, consistently outward-oriented mesh.
4. Skin weights: each vertex belongs to the body part whose implicit field is lowest there; within the bones that
   part may use, weights fall off with the distance to each bone's segment(s) relative to that bone's own
   thickness (a finger starts on its own three bones, the palm on the hand's), are smoothed over the mesh (which
   blends palm and finger roots), then cut to the top 4 and renormalised. Part labels follow the dominant
   bone; colours come from a per-character palette (skin, hair, shirt, trousers, shoes).
5. The whole character is shifted so its lowest vertex is at y = 0 and scaled to its exact target height.
"""
from __future__ import annotations

import argparse
import heapq
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from skimage.measure import marching_cubes

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.character import PART_NAMES, Character
from core.character_library import ASSETS_DIR
from core.skeleton import (FINGERS, HANDS_JOINTS, HANDS_PARENTS, canonical_skeleton, finger_offsets,  # noqa: E402
                           finger_tip_offsets)

J = {name: i for i, name in enumerate(HANDS_JOINTS)}


# ---------------------------------------------------------------------------------------------------------------
# Character specifications (metres, in the character's own size; the result is scaled to `height` exactly)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    name: str
    height: float
    # skeleton heights / widths
    ankle_y: float = 0.080          # LeftFoot joint height
    knee_y: float = 0.480
    hip_y: float = 0.870            # hip joints (LeftUpLeg)
    hip_half: float = 0.085         # hip joint x
    stance: float = 0.025           # ankles this much further out than the hips
    root_above_hip: float = 0.060   # Hips joint above the hip joints
    shoulder_y: float = 1.410       # LeftArm height
    shoulder_half: float = 0.170    # LeftArm x
    clavicle_x: float = 0.035       # LeftShoulder x
    upper_arm: float = 0.270
    forearm: float = 0.245
    hand: float = 0.185
    foot_len: float = 0.245         # heel to toe tip
    # head (ellipsoid radii); the head's top is at `height`
    head_r: tuple[float, float, float] = (0.074, 0.112, 0.094)
    jaw: float = 0.78               # jaw width relative to the skull's
    neck_r: float = 0.048
    neck_len: float = 0.035         # Neck joint above the shoulder joints
    # torso ellipsoids: (half width, half height, half depth)
    chest: tuple[float, float, float] = (0.150, 0.150, 0.100)
    chest_y: float = 1.270
    waist: tuple[float, float, float] = (0.120, 0.140, 0.085)
    pelvis: tuple[float, float, float] = (0.155, 0.110, 0.098)
    belly: tuple[float, float, float] | None = None   # radii of a belly ellipsoid
    belly_y: float = 1.030
    belly_z: float = 0.030          # belly centre in front of the spine
    bust: float = 0.0               # radius of two chest ellipsoids (0: none)
    trap_r: float = 0.052           # shoulder line thickness
    # limbs
    deltoid: float = 0.056
    upper_arm_r: tuple[float, float] = (0.043, 0.035)
    forearm_r: tuple[float, float] = (0.039, 0.026)
    hand_size: tuple[float, float] = (0.040, 0.013)   # palm half width, half thickness
    thigh_r: tuple[float, float] = (0.082, 0.052)
    calf_r: tuple[float, float] = (0.055, 0.032)
    foot_w: float = 0.045           # shoe half width
    foot_h: float = 0.078           # shoe height at the heel
    # look
    skin: tuple[float, float, float] = (0.93, 0.76, 0.64)
    hair: tuple[float, float, float] | None = (0.35, 0.21, 0.12)
    hair_bun: bool = False
    shirt: tuple[float, float, float] = (0.30, 0.52, 0.78)
    trousers: tuple[float, float, float] = (0.22, 0.24, 0.33)
    shoes: tuple[float, float, float] = (0.30, 0.20, 0.15)
    sleeve: float = 0.55            # sleeve end as a fraction of the upper arm (>1 reaches the forearm)
    trouser_end: float = 0.0        # trousers end this fraction up the shin (0: at the ankle)


AVA = Spec("Ava", 1.70, hair_bun=True, bust=0.055, shirt=(0.85, 0.36, 0.38), trousers=(0.25, 0.30, 0.45),
           shoes=(0.92, 0.92, 0.90), waist=(0.112, 0.140, 0.080), pelvis=(0.160, 0.110, 0.100))

SLIM = Spec(
    "Slim", 1.90, ankle_y=0.085, knee_y=0.550, hip_y=1.000, hip_half=0.080, stance=0.028, root_above_hip=0.060,
    shoulder_y=1.585, shoulder_half=0.165, clavicle_x=0.035, upper_arm=0.305, forearm=0.275, hand=0.200,
    foot_len=0.275, head_r=(0.072, 0.114, 0.094), neck_r=0.043, neck_len=0.045,
    chest=(0.135, 0.160, 0.085), chest_y=1.430, waist=(0.100, 0.160, 0.072), pelvis=(0.130, 0.110, 0.085),
    belly_y=1.180, trap_r=0.046, deltoid=0.048, upper_arm_r=(0.036, 0.030), forearm_r=(0.033, 0.023),
    hand_size=(0.038, 0.012), thigh_r=(0.070, 0.045), calf_r=(0.048, 0.029), foot_w=0.043, foot_h=0.080,
    skin=(0.62, 0.44, 0.32), hair=(0.10, 0.08, 0.07), shirt=(0.30, 0.60, 0.45), trousers=(0.80, 0.74, 0.60),
    shoes=(0.16, 0.16, 0.18), sleeve=1.6)

BOB = Spec(
    "Bob", 1.20, ankle_y=0.060, knee_y=0.250, hip_y=0.460, hip_half=0.090, stance=0.030, root_above_hip=0.060,
    shoulder_y=0.800, shoulder_half=0.170, clavicle_x=0.035, upper_arm=0.175, forearm=0.155, hand=0.135,
    foot_len=0.210, head_r=(0.135, 0.165, 0.140), neck_r=0.055, neck_len=0.035,
    chest=(0.160, 0.130, 0.120), chest_y=0.700, waist=(0.160, 0.120, 0.120), pelvis=(0.165, 0.100, 0.110),
    belly=(0.185, 0.185, 0.175), belly_y=0.560, belly_z=0.075, trap_r=0.055, deltoid=0.050,
    upper_arm_r=(0.042, 0.036), forearm_r=(0.038, 0.028), hand_size=(0.036, 0.013), thigh_r=(0.075, 0.055),
    calf_r=(0.055, 0.038), foot_w=0.050, foot_h=0.070,
    skin=(0.96, 0.80, 0.68), hair=(0.85, 0.45, 0.20), shirt=(0.95, 0.80, 0.30), trousers=(0.35, 0.45, 0.70),
    shoes=(0.60, 0.25, 0.20), sleeve=0.7)

BRUTE = Spec(
    "Brute", 1.85, ankle_y=0.085, knee_y=0.505, hip_y=0.920, hip_half=0.100, stance=0.030, root_above_hip=0.065,
    shoulder_y=1.545, shoulder_half=0.235, clavicle_x=0.045, upper_arm=0.335, forearm=0.305, hand=0.215,
    foot_len=0.285, head_r=(0.082, 0.115, 0.100), jaw=0.95, neck_r=0.068, neck_len=0.030,
    chest=(0.215, 0.170, 0.135), chest_y=1.380, waist=(0.150, 0.150, 0.110), pelvis=(0.170, 0.115, 0.115),
    belly_y=1.120, trap_r=0.075, deltoid=0.078, upper_arm_r=(0.062, 0.048), forearm_r=(0.056, 0.037),
    hand_size=(0.048, 0.016), thigh_r=(0.095, 0.062), calf_r=(0.068, 0.040), foot_w=0.054, foot_h=0.085,
    skin=(0.78, 0.57, 0.42), hair=None, shirt=(0.35, 0.40, 0.30), trousers=(0.18, 0.18, 0.20),
    shoes=(0.40, 0.28, 0.18), sleeve=0.35)

KIT = Spec(
    "Kit", 1.30, ankle_y=0.065, knee_y=0.350, hip_y=0.620, hip_half=0.068, stance=0.022, root_above_hip=0.050,
    shoulder_y=1.030, shoulder_half=0.130, clavicle_x=0.028, upper_arm=0.200, forearm=0.180, hand=0.135,
    foot_len=0.190, head_r=(0.078, 0.110, 0.095), neck_r=0.036, neck_len=0.030,
    chest=(0.110, 0.110, 0.078), chest_y=0.930, waist=(0.095, 0.110, 0.072), pelvis=(0.115, 0.085, 0.078),
    belly_y=0.780, trap_r=0.040, deltoid=0.040, upper_arm_r=(0.031, 0.026), forearm_r=(0.029, 0.021),
    hand_size=(0.032, 0.011), thigh_r=(0.058, 0.040), calf_r=(0.041, 0.025), foot_w=0.036, foot_h=0.062,
    skin=(0.98, 0.84, 0.73), hair=(0.95, 0.80, 0.40), shirt=(0.45, 0.75, 0.40), trousers=(0.30, 0.35, 0.60),
    shoes=(0.85, 0.20, 0.20), sleeve=0.5, trouser_end=0.75)

SPECS: tuple[Spec, ...] = (AVA, SLIM, BOB, BRUTE, KIT)


# ---------------------------------------------------------------------------------------------------------------
# Skeleton
# ---------------------------------------------------------------------------------------------------------------

# The middle finger's tip is this many wrist-to-middle-knuckle lengths from the wrist (core.skeleton's hand)
HAND_SPAN = float(np.linalg.norm(finger_offsets(1.0)[6:9].sum(0) + finger_tip_offsets(1.0)[2]))
FINGER_SPREAD = 1.65  # index-to-pinky knuckle distance in palm half widths (at least the table's own)
# Finger radii at the knuckle in palm half thicknesses (they taper to 85 % at the tip); the thumb's first bone
# (its metacarpal, mostly inside the palm) is thicker
FINGER_RADIUS = {"Thumb": 0.72, "Index": 0.62, "Middle": 0.64, "Ring": 0.60, "Pinky": 0.54}


def joint_positions(s: Spec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """World rest positions ``(52, 3)`` of the canonical joints with fingers (:data:`core.skeleton.HANDS_JOINTS`),
    and a few extra landmarks (bone ends: fingertips, toe tips, head)."""
    P = np.zeros((len(HANDS_JOINTS), 3))
    head_cy = s.height - s.head_r[1]
    head_joint_y = head_cy - 0.40 * s.head_r[1]
    neck_y = s.shoulder_y + s.neck_len
    root_y = s.hip_y + s.root_above_hip
    P[J["Hips"]] = (0, root_y, 0)
    for k, name in enumerate(("Spine", "Spine1", "Spine2")):
        t = (k + 1) / 4
        P[J[name]] = (0, root_y + t * (neck_y - root_y), -0.008 - 0.006 * t)
    P[J["Neck"]] = (0, neck_y, -0.018)
    P[J["Head"]] = (0, head_joint_y, -0.005)
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        P[J[side + "Shoulder"]] = (sx * s.clavicle_x, s.shoulder_y - 0.012, -0.012)
        P[J[side + "Arm"]] = (sx * s.shoulder_half, s.shoulder_y, -0.012)
        P[J[side + "ForeArm"]] = (sx * (s.shoulder_half + s.upper_arm), s.shoulder_y, -0.018)
        P[J[side + "Hand"]] = (sx * (s.shoulder_half + s.upper_arm + s.forearm), s.shoulder_y, -0.010)
        ax = s.hip_half + s.stance
        P[J[side + "UpLeg"]] = (sx * s.hip_half, s.hip_y, 0.0)
        P[J[side + "Leg"]] = (sx * (s.hip_half + s.stance * (s.hip_y - s.knee_y) / (s.hip_y - s.ankle_y)),
                              s.knee_y, 0.012)
        P[J[side + "Foot"]] = (sx * ax, s.ankle_y, -0.015)
        P[J[side + "ToeBase"]] = (sx * ax, 0.30 * s.foot_h, -0.015 + 0.47 * s.foot_len)  # ball of the foot
    extra = {"head_top": np.array([0, s.height, 0.0]), "head_centre": np.array([0, head_cy, 0.0])}
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        extra[side + "ToeTip"] = np.array([sx * (s.hip_half + s.stance), 0.03, -0.015 + 0.75 * s.foot_len])
    # fingers: the canonical hand (core.skeleton's table) sized to reach `hand` at the middle fingertip, with the
    # knuckles spread across the palm's width so that fingers thin enough to bend stay apart in the mesh
    L = s.hand / HAND_SPAN
    off, tips = finger_offsets(L), finger_tip_offsets(L)
    spread = FINGER_SPREAD * s.hand_size[0] / (off[3, 2] - off[12, 2])  # index-to-pinky knuckles
    for n in range(30):
        side = "Left" if n < 15 else "Right"
        knuckle = n % 3 == 0 and n % 15 >= 3  # index to pinky (the thumb's base stays where the table has it)
        o = off[n] * ((1, 1, max(spread, 1.0)) if knuckle else 1)
        P[22 + n] = P[HANDS_PARENTS[22 + n]] + o
        if n % 3 == 2:
            extra[f"{side}Hand{FINGERS[(n % 15) // 3]}Tip"] = P[22 + n] + tips[n // 3]
    return P, extra


# ---------------------------------------------------------------------------------------------------------------
# Implicit primitives (signed distance or a close approximation; negative inside)
# ---------------------------------------------------------------------------------------------------------------

class Ellipsoid:
    def __init__(self, c, r):
        self.c, self.r = np.asarray(c, float), np.asarray(r, float)

    def __call__(self, p):
        q = (p - self.c) / self.r
        k0 = np.linalg.norm(q, axis=-1)
        k1 = np.linalg.norm(q / self.r, axis=-1)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)

    def bbox(self):
        return self.c - self.r, self.c + self.r


class RoundCone:
    """A capsule whose radius goes linearly from ``ra`` at ``a`` to ``rb`` at ``b``."""

    def __init__(self, a, b, ra, rb):
        self.a, self.b, self.ra, self.rb = np.asarray(a, float), np.asarray(b, float), float(ra), float(rb)

    def __call__(self, p):
        ab = self.b - self.a
        t = np.clip(((p - self.a) @ ab) / (ab @ ab), 0.0, 1.0)
        return np.linalg.norm(p - (self.a + t[..., None] * ab), axis=-1) - (self.ra + t * (self.rb - self.ra))

    def bbox(self):
        r = max(self.ra, self.rb)
        return np.minimum(self.a, self.b) - r, np.maximum(self.a, self.b) + r


class RoundBox:
    """An axis-aligned box with half extents ``h`` (rounding included) and edge radius ``r``."""

    def __init__(self, c, h, r):
        self.c, self.h, self.r = np.asarray(c, float), np.asarray(h, float), float(r)

    def __call__(self, p):
        q = np.abs(p - self.c) - (self.h - self.r)
        return (np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)) - self.r

    def bbox(self):
        return self.c - self.h, self.c + self.h


def smin(a, b, k):
    """Polynomial smooth minimum with blend radius ``k`` (exact min where |a - b| > k)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


@dataclass
class Group:
    """A body part's implicit shape: primitives smooth-unioned with blend radius ``k``."""

    name: str
    k: float
    prims: list = field(default_factory=list)

    def __call__(self, p):
        d = self.prims[0](p)
        for prim in self.prims[1:]:
            d = smin(d, prim(p), self.k)
        return d


# How the groups join: (group, onto, blend radius)
GROUP_NAMES = ("torso", "neck", "head", "arm_L", "arm_R", "leg_L", "leg_R") + tuple(
    f"{finger.lower()}_{tag}" for tag in ("L", "R") for finger in FINGERS)
HAND_DETAIL = 30.0  # the hands' shape error counts this much more in decimation (fingers keep their roundness)
FINGER_GRID = 0.4  # marching cubes' grid spacing around the hands, in the thinnest finger's radius
FINGER_BLEND = 0.5  # a finger's blend radius onto the rest, in palm half thicknesses: a web only in gaps < 1/4 of it


def body_groups(s: Spec, P: np.ndarray, extra: dict) -> tuple[list[Group], list[tuple[str, float]]]:
    """The implicit body parts of a character and the blend radius of each part onto the body."""
    hx, hy, hz = s.head_r
    hc = extra["head_centre"]
    sc = s.height / 1.7
    torso = Group("torso", 0.06 * sc)
    torso.prims += [
        Ellipsoid((0, s.hip_y + 0.035 * sc, -0.010), s.pelvis),
        Ellipsoid((0, (s.hip_y + s.chest_y) / 2 + 0.01 * sc, 0.0), s.waist),
        Ellipsoid((0, s.chest_y, 0.0), s.chest),
        RoundCone((s.shoulder_half * 0.70, s.shoulder_y - 0.030 * sc, -0.015),
                  (-s.shoulder_half * 0.70, s.shoulder_y - 0.030 * sc, -0.015), s.trap_r, s.trap_r),
    ]
    for sx in (1, -1):  # glutes
        torso.prims.append(Ellipsoid((sx * 0.062 * s.pelvis[0] / 0.155, s.hip_y - 0.01 * sc, -0.035 * sc),
                                     (0.085 * sc * s.pelvis[0] / 0.155, 0.095 * sc, 0.075 * s.pelvis[2] / 0.098)))
    if s.belly is not None:
        torso.prims.append(Ellipsoid((0, s.belly_y, s.belly_z), s.belly))
    if s.bust > 0:
        for sx in (1, -1):
            torso.prims.append(Ellipsoid((sx * 0.055 * sc, s.chest_y - 0.02 * sc, s.chest[2] - 0.035 * sc),
                                         (s.bust, s.bust * 0.9, s.bust * 0.85)))

    neck = Group("neck", 0.02 * sc, [RoundCone(P[J["Neck"]] - (0, 0.04 * sc, 0), P[J["Head"]] + (0, 0.0, 0.01),
                                                s.neck_r * 1.1, s.neck_r)])

    head = Group("head", 0.03 * sc)
    head.prims += [
        Ellipsoid(hc + (0, 0.01 * hy, -0.03 * hz), (hx, hy * 0.95, hz * 0.97)),                      # cranium
        Ellipsoid(hc + (0, -0.45 * hy, 0.18 * hz), (hx * s.jaw, hy * 0.55, hz * 0.72)),             # jaw
        Ellipsoid(hc + (0, -0.18 * hy, 0.93 * hz), (0.012 * sc, 0.022 * sc, 0.020 * sc)),            # nose
    ]
    for sx in (1, -1):
        head.prims.append(Ellipsoid(hc + (sx * 0.97 * hx, -0.12 * hy, -0.05 * hz),
                                    (0.012 * sc, 0.026 * sc, 0.018 * sc)))                          # ears
    if s.hair_bun:
        head.prims.append(Ellipsoid(hc + (0, 0.35 * hy, -1.02 * hz), (0.045 * sc, 0.042 * sc, 0.040 * sc)))

    groups = {"torso": torso, "neck": neck, "head": head}
    for side, sx, tag in (("Left", 1.0, "L"), ("Right", -1.0, "R")):
        a, e, w = P[J[side + "Arm"]], P[J[side + "ForeArm"]], P[J[side + "Hand"]]
        hw, ht = s.hand_size
        arm = Group("arm_" + tag, 0.03 * sc)
        arm.prims += [
            Ellipsoid(a + (sx * 0.010, 0.008 * sc, 0.0), (s.deltoid * 1.35, s.deltoid * 1.05, s.deltoid * 1.1)),
            RoundCone(a, e, *s.upper_arm_r),
            RoundCone(e, w, *s.forearm_r),
        ]
        # the palm: wrist to just short of the knuckles, as wide as the index-to-pinky knuckles plus a finger
        index, pinky = P[J[side + "HandIndex1"]], P[J[side + "HandPinky1"]]
        knuckles = 0.5 * (index[0] + pinky[0]) - w[0]
        half_w = 0.5 * (index[2] - pinky[2]) + FINGER_RADIUS["Index"] * ht
        arm.prims.append(RoundBox(w + (0.5 * knuckles, 0, 0.5 * (index[2] + pinky[2]) - w[2]),
                                  (0.5 * abs(knuckles) + 0.3 * ht, ht, half_w), ht * 0.95))
        groups[arm.name] = arm
        for finger in FINGERS:  # each finger its own part (it blends little into the palm, not at all into the next)
            name = f"{side}Hand{finger}"
            chain = [P[J[f"{name}{k}"]] for k in (1, 2, 3)] + [extra[name + "Tip"]]
            r0 = FINGER_RADIUS[finger] * ht
            radii = r0 * np.array([1.0, 0.95, 0.90, 0.85])
            group = Group(f"{finger.lower()}_{tag}", 0.0)
            if finger == "Thumb":  # its metacarpal is the palm's fleshy thumb side
                group.prims.append(RoundCone(chain[0] - (sx * 0.3 * ht, 0, 0), chain[1], 1.25 * r0, r0))
            else:  # start inside the palm so the knuckle is covered
                group.prims.append(RoundCone(chain[0] - (sx * 1.2 * ht, 0, 0), chain[1], r0, radii[1]))
            for k in range(1, 3):
                group.prims.append(RoundCone(chain[k], chain[k + 1], radii[k], radii[k + 1]))
            groups[group.name] = group

        hip, knee, ank = P[J[side + "UpLeg"]], P[J[side + "Leg"]], P[J[side + "Foot"]]
        leg = Group("leg_" + tag, 0.04 * sc)
        leg.prims += [
            RoundCone(hip + (0.005 * sx, 0.02 * sc, 0), knee, *s.thigh_r),
            RoundCone(knee, ank + (0, 0.01 * sc, 0), s.calf_r[0] * 0.95, s.calf_r[1]),
            Ellipsoid(knee + (ank - knee) * 0.28 + (0, 0, -0.018 * sc),
                      (s.calf_r[0] * 0.95, (knee[1] - ank[1]) * 0.26, s.calf_r[0] * 1.0)),           # calf muscle
        ]
        heel_z, L = ank[2] - 0.25 * s.foot_len, s.foot_len
        fw, fh = s.foot_w, s.foot_h
        leg.prims += [
            RoundBox((ank[0], fh / 2, heel_z + 0.33 * L), (fw * 0.92, fh / 2, 0.33 * L), 0.025 * sc),
            RoundBox((ank[0] + sx * 0.006 * sc, fh * 0.30, heel_z + 0.74 * L),
                     (fw, fh * 0.30, 0.26 * L), 0.02 * sc),
        ]
        groups[leg.name] = leg
    joins = [("torso", 0.0), ("leg_L", 0.05 * sc), ("leg_R", 0.05 * sc), ("neck", 0.045 * sc),
             ("head", 0.03 * sc), ("arm_L", 0.035 * sc), ("arm_R", 0.035 * sc)]
    joins += [(name, FINGER_BLEND * s.hand_size[1]) for name in GROUP_NAMES[7:]]
    return [groups[name] for name in GROUP_NAMES], joins


# ---------------------------------------------------------------------------------------------------------------
# Polygonisation
# ---------------------------------------------------------------------------------------------------------------

REACH = 0.12  # beyond this distance from its box a primitive cannot change the surface (blend radii are smaller)


def body_field(groups: list[Group], joins, p: np.ndarray) -> np.ndarray:
    """The body's implicit function at points ``(..., 3)`` (negative inside)."""
    by_name = {g.name: g for g in groups}
    body = None
    for name, kj in joins:
        d = by_name[name](p)
        body = d if body is None else smin(body, d, kj)
    return body


def grid_axis(lo: float, hi: float, h: float, fine: list[tuple[float, float]], h_fine: float) -> np.ndarray:
    """Sample positions from ``lo`` to ``hi``: spacing ``h``, and ``h_fine`` within the ``fine`` intervals."""
    out, x = [lo], lo
    while x < hi:
        step = h_fine if any(a - h <= x <= b for a, b in fine) else h
        x += step
        out.append(x)
    return np.asarray(out)


def sample_field(groups: list[Group], joins, h: float, fine: list[tuple[np.ndarray, np.ndarray]] = (),
                 h_fine: float | None = None):
    """:func:`body_field` on a rectilinear grid: spacing ``h``, and ``h_fine`` along each axis where it crosses one
    of the ``fine`` boxes ``(lo (3,), hi (3,))`` (the hands: fingers need a fine grid, the body does not). Each
    primitive is evaluated only within its reach. Returns the field and the grid's three axes."""
    by_name = {g.name: g for g in groups}
    pad = 3 * h + 0.02  # smooth unions reach a little beyond their primitives' boxes
    lo = np.min([p.bbox()[0] for g in groups for p in g.prims], axis=0) - pad
    hi = np.max([p.bbox()[1] for g in groups for p in g.prims], axis=0) + pad
    axes = [grid_axis(lo[i], hi[i], h, [(a[i], b[i]) for a, b in fine], h_fine or h) for i in range(3)]
    n = tuple(len(a) for a in axes)
    body = None
    for name, kj in joins:
        g = by_name[name]
        d = np.full(n, REACH, np.float32)
        for prim in g.prims:
            plo, phi = prim.bbox()
            sl = tuple(slice(max(int(np.searchsorted(axes[i], plo[i] - REACH)) - 1, 0),
                             min(int(np.searchsorted(axes[i], phi[i] + REACH)) + 1, n[i])) for i in range(3))
            pts = np.stack(np.meshgrid(axes[0][sl[0]], axes[1][sl[1]], axes[2][sl[2]], indexing="ij"), -1)
            d[sl] = smin(d[sl], np.minimum(prim(pts), REACH).astype(np.float32), g.k)
        body = d if body is None else smin(body, d, kj)
    return body, axes


def hand_box(groups: list[Group], tag: str) -> tuple[np.ndarray, np.ndarray]:
    """The box ``(lo (3,), hi (3,))`` around one hand's fingers (side ``tag``: "L" or "R")."""
    boxes = [p.bbox() for g in groups if g.name.endswith("_" + tag) and g.name.split("_")[0] in
             {f.lower() for f in FINGERS} for p in g.prims]
    return np.min([b[0] for b in boxes], axis=0) - 0.01, np.max([b[1] for b in boxes], axis=0) + 0.01


def polygonise(groups, joins, h: float, fine=(), h_fine: float | None = None):
    """Marching cubes on :func:`sample_field`'s grid; vertices found in grid coordinates are mapped to the world
    along each axis (linear within a cell, so a rectilinear grid polygonises like a regular one)."""
    vol, axes = sample_field(groups, joins, h, fine, h_fine)
    verts, faces, _, _ = marching_cubes(vol, level=0.0, allow_degenerate=False)
    verts = np.stack([np.interp(verts[:, i], np.arange(len(axes[i])), axes[i]) for i in range(3)], 1)
    faces = faces.astype(np.int64)
    if signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()
    return verts, faces


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def edge_counts(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed-edge multiplicities: (counts of undirected edges, counts of directed edges)."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = int(f.max()) + 1
    und = np.unique(np.sort(e, axis=1)[:, 0] * n + np.sort(e, axis=1)[:, 1], return_counts=True)[1]
    dire = np.unique(e[:, 0] * n + e[:, 1], return_counts=True)[1]
    return und, dire


def is_watertight(f: np.ndarray) -> bool:
    """Every edge shared by exactly two faces, traversed once in each direction (consistent orientation)."""
    und, dire = edge_counts(f)
    return bool((und == 2).all() and (dire == 1).all())


# ---------------------------------------------------------------------------------------------------------------
# Quadric edge-collapse decimation (manifold-preserving, rejects fold-overs and slivers)
# ---------------------------------------------------------------------------------------------------------------

SHAPE_WEIGHT = 0.02  # prefers short edges: more even triangles at a small cost in shape error


def _cross(a, b):
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def _edge_costs(Q, v, us, ws):
    """Collapse positions and costs for edges (us[i], ws[i]).

    The position minimises the summed quadric plus a weak pull towards the edge midpoint (which keeps the solve
    well posed on flat patches); the cost adds a term in edge length**4 that favours even triangles.
    """
    Qs = Q[us] + Q[ws]
    pa, pb = v[us], v[ws]
    mid = 0.5 * (pa + pb)
    lam = 1e-3 * np.einsum("nii->n", Qs[:, :3, :3]) + 1e-12
    A = Qs[:, :3, :3] + lam[:, None, None] * np.eye(3)
    x = np.linalg.solve(A, (lam[:, None] * mid - Qs[:, :3, 3])[..., None])[..., 0]
    elen2 = ((pa - pb) ** 2).sum(1)
    far = ((x - mid) ** 2).sum(1) > elen2  # keep the new vertex near the edge
    x[far] = mid[far]
    xh = np.concatenate([x, np.ones((len(x), 1))], 1)
    cost = np.einsum("ni,nij,nj->n", xh, Qs, xh) + SHAPE_WEIGHT * elen2 * elen2
    return np.maximum(cost, 0.0), x


def decimate(v: np.ndarray, f: np.ndarray, target_faces: int, detail: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Collapse edges of a closed manifold mesh, cheapest first, until ``target_faces`` remain. ``detail``
    ``(F,)`` scales each face's shape error (more keeps more triangles there: the fingers).

    A collapse is skipped when it would break manifoldness (link condition), flip or fold a triangle, or leave a
    sliver; when no edge is left under those limits they are relaxed step by step.
    """
    v = v.astype(np.float64).copy()
    fl = f.astype(np.int64).copy()  # rows updated in place
    nv, nf = len(v), len(fl)
    n = _cross(v[fl[:, 1]] - v[fl[:, 0]], v[fl[:, 2]] - v[fl[:, 0]])
    area2 = np.linalg.norm(n, axis=1)
    n = n / np.maximum(area2, 1e-20)[:, None]
    pl = np.concatenate([n, -np.einsum("ij,ij->i", n, v[fl[:, 0]])[:, None]], axis=1)
    Kf = 0.5 * area2[:, None, None] * pl[:, :, None] * pl[:, None, :]
    if detail is not None:
        Kf *= np.asarray(detail, dtype=np.float64)[:, None, None]
    Q = np.zeros((nv, 4, 4))
    for k in range(3):
        np.add.at(Q, fl[:, k], Kf)
    vf: list[set[int]] = [set() for _ in range(nv)]
    for i, (a, b, c) in enumerate(fl.tolist()):
        vf[a].add(i), vf[b].add(i), vf[c].add(i)
    face_alive = np.ones(nf, bool)
    version = np.zeros(nv, np.int64)
    alive_faces = nf

    def neighbours(x):
        return set(fl[list(vf[x])].ravel().tolist()) - {x}

    def full_heap():
        e = np.concatenate([fl[face_alive][:, [0, 1]], fl[face_alive][:, [1, 2]], fl[face_alive][:, [2, 0]]])
        e = np.unique(np.sort(e, axis=1), axis=0)
        cost, x = _edge_costs(Q, v, e[:, 0], e[:, 1])
        h = [(c, a, b, version[a], version[b], tuple(p)) for c, (a, b), p in
             zip(cost.tolist(), e.tolist(), x.tolist())]
        heapq.heapify(h)
        return h

    for min_cos, min_quality in ((0.3, 0.15), (0.1, 0.08), (0.0, 0.03)):
        heap = full_heap()
        while alive_faces > target_faces and heap:
            c, a, b, va, vb, x = heapq.heappop(heap)
            if version[a] != va or version[b] != vb:
                continue
            shared = vf[a] & vf[b]
            if len(shared) != 2:
                continue
            opp = set(fl[list(shared)].ravel().tolist()) - {a, b}
            if len(opp) != 2 or (neighbours(a) & neighbours(b)) != opp:
                continue
            changed = list((vf[a] | vf[b]) - shared)
            tri = fl[changed]
            old = v[tri]
            new = old.copy()
            new[(tri == a) | (tri == b)] = x
            n_old = _cross(old[:, 1] - old[:, 0], old[:, 2] - old[:, 0])
            n_new = _cross(new[:, 1] - new[:, 0], new[:, 2] - new[:, 0])
            an = np.sqrt((n_new * n_new).sum(1))
            ao = np.sqrt((n_old * n_old).sum(1))
            if ((n_old * n_new).sum(1) <= min_cos * ao * an).any():
                continue
            # quality (1 for an equilateral triangle) may not drop below the limit, unless it was already lower
            q_new = (2 * np.sqrt(3) * an / np.maximum(((new[:, [1, 2, 0]] - new) ** 2).sum(-1).sum(-1), 1e-30)).min()
            if q_new < min_quality and q_new < (2 * np.sqrt(3) * ao / np.maximum(
                    ((old[:, [1, 2, 0]] - old) ** 2).sum(-1).sum(-1), 1e-30)).min():
                continue
            # collapse b into a
            for fi in vf[b] - shared:
                row = fl[fi]
                row[row == b] = a
            vf[a] = (vf[a] | vf[b]) - shared
            for w in opp:
                vf[w] -= shared
            face_alive[list(shared)] = False
            alive_faces -= 2
            vf[b] = set()
            v[a] = x
            Q[a] += Q[b]
            version[a] += 1
            version[b] = -1
            nbrs = np.array(sorted(neighbours(a)))
            costs, xs = _edge_costs(Q, v, np.full(len(nbrs), a), nbrs)
            va = int(version[a])
            for cc, w, p in zip(costs.tolist(), nbrs.tolist(), xs.tolist()):
                heapq.heappush(heap, (cc, a, w, va, int(version[w]), tuple(p)))
        if alive_faces <= target_faces:
            break
    keep = np.flatnonzero(version >= 0)
    remap = np.full(nv, -1, np.int64)
    remap[keep] = np.arange(len(keep))
    return v[keep], remap[fl[face_alive]]


def flip_edges(v: np.ndarray, f: np.ndarray, min_cos: float = 0.9, passes: int = 3) -> np.ndarray:
    """Flip edges between nearly coplanar triangles where that raises the smaller of their minimum angles."""
    f = f.copy()
    vl = v.tolist()
    fl = f.tolist()
    he = {}
    for i, (a, b, c) in enumerate(fl):
        he[(a, b)] = i
        he[(b, c)] = i
        he[(c, a)] = i
    valence = np.bincount(f.ravel(), minlength=len(v)) // 2  # each edge appears in two faces per endpoint

    def third(face, a, b):
        return next(x for x in face if x != a and x != b)

    def min_angle_cos(p, q, r):  # largest cosine of the three angles (smaller angle = larger cosine)
        best = -1.0
        for x, y, z in ((p, q, r), (q, r, p), (r, p, q)):
            u = (y[0] - x[0], y[1] - x[1], y[2] - x[2])
            w = (z[0] - x[0], z[1] - x[1], z[2] - x[2])
            nu = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]) ** 0.5
            nw = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]) ** 0.5
            if nu == 0 or nw == 0:
                return 1.0
            best = max(best, (u[0] * w[0] + u[1] * w[1] + u[2] * w[2]) / (nu * nw))
        return best

    def normal(p, q, r):
        u = (q[0] - p[0], q[1] - p[1], q[2] - p[2])
        w = (r[0] - p[0], r[1] - p[1], r[2] - p[2])
        n = (u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0])
        ln = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]) ** 0.5
        return (n[0] / ln, n[1] / ln, n[2] / ln) if ln > 0 else (0.0, 0.0, 0.0)

    def dot(x, y):
        return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]

    for _ in range(passes):
        flipped = 0
        for (a, b) in list(he.keys()):
            if a > b or (a, b) not in he or (b, a) not in he:
                continue
            f1, f2 = he[(a, b)], he[(b, a)]
            c, d = third(fl[f1], a, b), third(fl[f2], a, b)
            if c == d or (c, d) in he or (d, c) in he or valence[a] <= 3 or valence[b] <= 3:
                continue
            pa, pb, pc, pd = vl[a], vl[b], vl[c], vl[d]
            n1, n2 = normal(pa, pb, pc), normal(pb, pa, pd)
            if dot(n1, n2) < min_cos:
                continue
            m1, m2 = normal(pc, pa, pd), normal(pd, pb, pc)
            if dot(m1, m2) < min_cos or dot(m1, n1) < min_cos or dot(m2, n2) < min_cos:
                continue
            if max(min_angle_cos(pc, pa, pd), min_angle_cos(pd, pb, pc)) >= \
                    max(min_angle_cos(pa, pb, pc), min_angle_cos(pb, pa, pd)) - 1e-9:
                continue
            fl[f1], fl[f2] = [c, a, d], [d, b, c]
            del he[(a, b)], he[(b, a)]
            he[(c, a)] = he[(a, d)] = he[(d, c)] = f1
            he[(d, b)] = he[(b, c)] = he[(c, d)] = f2
            valence[a] -= 1
            valence[b] -= 1
            valence[c] += 1
            valence[d] += 1
            flipped += 1
        if not flipped:
            break
    return np.array(fl, dtype=np.int64)


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    n = _cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], n)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-20)


def project_to_surface(field, p: np.ndarray, steps: int = 3, eps: float = 1e-4) -> np.ndarray:
    """Newton steps along the field's gradient onto its zero level set."""
    for _ in range(steps):
        d = field(p)
        g = np.stack([(field(p + e) - field(p - e)) / (2 * eps) for e in np.eye(3) * eps], -1)
        p = p - (d / np.maximum((g * g).sum(1), 1e-12))[:, None] * g
    return p


def relax(v: np.ndarray, f: np.ndarray, field, iters: int = 4, step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Even out the triangles: edge flips, tangential Laplacian smoothing, re-projection onto the implicit surface."""
    for _ in range(iters):
        f = flip_edges(v, f)
        A = vertex_adjacency(len(v), f)
        centroid = (A @ v) / np.asarray(A.sum(1))
        n = vertex_normals(v, f)
        dv = centroid - v
        dv -= (dv * n).sum(1, keepdims=True) * n
        v = project_to_surface(field, v + step * dv)
    return v, flip_edges(v, f)


# ---------------------------------------------------------------------------------------------------------------
# Skin weights, parts, colours
# ---------------------------------------------------------------------------------------------------------------

def _seg_dist(p, a, b):
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def bone_segments(s: Spec, P: np.ndarray, extra: dict) -> tuple[list[list[tuple[np.ndarray, np.ndarray]]], np.ndarray]:
    """For each canonical joint: the segment(s) its bone covers, and the body thickness around it."""
    segs: list[list] = [[] for _ in HANDS_JOINTS]
    rad = np.zeros(len(HANDS_JOINTS))
    sc = s.height / 1.7
    segs[J["Hips"]] = [(P[J["Hips"]] - (0, 0.07 * sc, 0), P[J["Spine"]]), (P[J["LeftUpLeg"]], P[J["RightUpLeg"]])]
    rad[J["Hips"]] = s.pelvis[0]
    for name, nxt, r in (("Spine", "Spine1", s.waist[0]), ("Spine1", "Spine2", s.waist[0]),
                         ("Spine2", "Neck", s.chest[0]), ("Neck", "Head", s.neck_r * 1.4)):
        segs[J[name]] = [(P[J[name]], P[J[nxt]])]
        rad[J[name]] = r
    segs[J["Head"]] = [(P[J["Head"]], extra["head_top"] - (0, s.head_r[1] * 0.6, 0))]
    rad[J["Head"]] = max(s.head_r) * 1.3
    for side in ("Left", "Right"):
        chain = [(side + "Shoulder", P[J[side + "Arm"]], s.trap_r * 1.3),
                 (side + "Arm", P[J[side + "ForeArm"]], s.upper_arm_r[0]),
                 (side + "ForeArm", P[J[side + "Hand"]], s.forearm_r[0]),
                 (side + "Hand", P[J[side + "HandMiddle1"]], s.hand_size[0]),
                 (side + "UpLeg", P[J[side + "Leg"]], s.thigh_r[0]),
                 (side + "Leg", P[J[side + "Foot"]], s.calf_r[0]),
                 (side + "Foot", P[J[side + "ToeBase"]], s.foot_w * 1.2),
                 (side + "ToeBase", extra[side + "ToeTip"], s.foot_w)]
        for name, end, r in chain:
            segs[J[name]] = [(P[J[name]], end)]
            rad[J[name]] = r
        heel = P[J[side + "Foot"]] * (1, 0, 1) + (0, 0.03 * sc, -0.2 * s.foot_len)
        segs[J[side + "Foot"]].append((P[J[side + "Foot"]], heel))
        for finger in FINGERS:
            name = f"{side}Hand{finger}"
            ends = [P[J[f"{name}{k}"]] for k in (1, 2, 3)] + [extra[name + "Tip"]]
            for k in range(3):
                segs[J[f"{name}{k + 1}"]] = [(ends[k], ends[k + 1])]
                rad[J[f"{name}{k + 1}"]] = FINGER_RADIUS[finger] * s.hand_size[1]
    return segs, rad


def allowed_bones() -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """For each part: the bones its vertices may be weighted to, and the bones their weights start from (by
    distance) before smoothing over the mesh spreads the others in across the part's border. A finger starts on
    its own bones only (the palm's bone is nearer than the finger's for most of a short finger, and the finger
    would not bend), the palm on the hand; the hand blends into the fingers' roots and they into it."""
    names = {
        "torso": ["Hips", "Spine", "Spine1", "Spine2", "Neck", "LeftShoulder", "RightShoulder", "LeftArm",
                  "RightArm", "LeftUpLeg", "RightUpLeg"],
        "neck": ["Spine2", "Neck", "Head", "LeftShoulder", "RightShoulder"],
        "head": ["Neck", "Head"],
    }
    for side, tag in (("Left", "L"), ("Right", "R")):
        names["arm_" + tag] = ["Spine2", side + "Shoulder", side + "Arm", side + "ForeArm", side + "Hand"]
        names["leg_" + tag] = ["Hips", side + "UpLeg", side + "Leg", side + "Foot", side + "ToeBase"]
        for finger in FINGERS:
            names[f"{finger.lower()}_{tag}"] = [f"{side}Hand{finger}{k}" for k in (1, 2, 3)]
    start = {g: [J[n] for n in ns] for g, ns in names.items()}
    allowed = {g: list(js) for g, js in start.items()}
    for side, tag in (("Left", "L"), ("Right", "R")):
        allowed["arm_" + tag] += [J[f"{side}Hand{finger}1"] for finger in FINGERS]
        for finger in FINGERS:
            allowed[f"{finger.lower()}_{tag}"].append(J[side + "Hand"])
    return allowed, start


def vertex_adjacency(nv: int, f: np.ndarray) -> sparse.csr_matrix:
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    A = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(nv, nv)).tocsr()
    A = ((A + A.T) > 0).astype(np.float64)
    return A


def skin(v: np.ndarray, f: np.ndarray, group: np.ndarray, segs, rad, power: float = 4.0, smooth_iters: int = 6):
    """Top-4 skin weights ``(V, 4)`` and indices, from bone distances within each part, smoothed on the mesh."""
    nv, nj = len(v), len(HANDS_JOINTS)
    d = np.full((nv, nj), np.inf)
    for j in range(nj):
        for a, b in segs[j]:
            d[:, j] = np.minimum(d[:, j], _seg_dist(v, a, b))
    mask = np.zeros((nv, nj), bool)
    first = np.zeros((nv, nj), bool)
    allowed, start = allowed_bones()
    for gi, gname in enumerate(GROUP_NAMES):
        mask[np.ix_(group == gi, allowed[gname])] = True
        first[np.ix_(group == gi, start[gname])] = True
    W = np.where(first, (d / rad[None, :] + 1e-3) ** -power, 0.0)
    W /= W.sum(1, keepdims=True)
    A = vertex_adjacency(nv, f)
    deg = np.asarray(A.sum(1)).ravel()
    for _ in range(smooth_iters):
        W = 0.5 * W + 0.5 * (A @ W) / deg[:, None]
        # bones never reach outside their part's neighbourhood (a leg never moves an arm vertex, and so on)
        W = np.where(mask, W, 0.0)
        W /= W.sum(1, keepdims=True)
    W[W < 0.01] = 0.0
    idx = np.argsort(-W, axis=1)[:, :4]
    w = np.take_along_axis(W, idx, 1)
    w /= w.sum(1, keepdims=True)
    idx = np.where(w > 0, idx, idx[:, :1])  # unused slots point at the dominant bone with weight 0
    return idx, w


PART_OF_JOINT = np.array([
    {"Neck": 1, "Head": 1}.get(n, 2 if any(k in n for k in ("Arm", "Hand")) else
                               3 if any(k in n for k in ("UpLeg", "Leg", "Foot", "Toe")) else 0)
    for n in HANDS_JOINTS])
assert tuple(PART_NAMES) == ("torso", "head", "arm", "leg")


def colours(s: Spec, v: np.ndarray, group: np.ndarray, P: np.ndarray, extra: dict) -> np.ndarray:
    sc = s.height / 1.7
    col = np.tile(np.array(s.skin), (len(v), 1))
    g = np.array(GROUP_NAMES)[group]
    belt = s.hip_y + 0.075 * sc
    torso = g == "torso"
    col[torso & (v[:, 1] >= belt)] = s.shirt
    col[torso & (v[:, 1] < belt)] = s.trousers
    for side, sx, tag in (("Left", 1, "L"), ("Right", -1, "R")):
        arm = g == "arm_" + tag
        along = sx * (v[:, 0] - P[J[side + "Arm"]][0])
        col[arm & (along < s.sleeve * s.upper_arm)] = s.shirt
        leg = g == "leg_" + tag
        knee_y, ank_y = P[J[side + "Leg"]][1], P[J[side + "Foot"]][1]
        trouser_lo = ank_y + 0.02 * sc + s.trouser_end * (knee_y - ank_y)
        col[leg & (v[:, 1] >= trouser_lo)] = s.trousers
        col[leg & (v[:, 1] < ank_y + 0.012 * sc)] = s.shoes
        if s.trouser_end > 0:  # socks
            col[leg & (v[:, 1] >= ank_y + 0.012 * sc) & (v[:, 1] < ank_y + 0.09 * sc)] = (0.95, 0.95, 0.95)
    # face: hair, eyes, mouth
    head = g == "head"
    q = (v - extra["head_centre"]) / np.array(s.head_r)
    if s.hair is not None:
        hairline = np.where(q[:, 2] > 0, 0.30 + 0.25 * q[:, 2], 0.30 + 0.95 * q[:, 2])
        col[head & (q[:, 1] > hairline)] = s.hair
    front = head & (q[:, 2] > 0.55)
    for sx in (1, -1):
        eye = front & (((q[:, 0] - sx * 0.38) / 0.16) ** 2 + ((q[:, 1] + 0.02) / 0.10) ** 2 < 1)
        col[eye] = (0.12, 0.10, 0.10)
    mouth = front & ((q[:, 0] / 0.26) ** 2 + ((q[:, 1] + 0.55) / 0.045) ** 2 < 1)
    col[mouth] = (0.70, 0.30, 0.30)
    return np.clip(col, 0, 1)


# ---------------------------------------------------------------------------------------------------------------
# Building a character
# ---------------------------------------------------------------------------------------------------------------

def build(s: Spec, faces: int = 10000, mc_faces: int = 50000, verbose: bool = True) -> Character:
    """One character: skeleton, implicit body, mesh, weights, parts, colours; validated."""
    t0 = time.time()
    P, extra = joint_positions(s)
    groups, joins = body_groups(s, P, extra)

    def field(p):
        return body_field(groups, joins, p)

    # marching cubes on a grid fine enough for about `mc_faces` triangles (faces scale as 1 / spacing**2)
    h0 = 0.016
    _, f0 = polygonise(groups, joins, h0)
    h = h0 * np.sqrt(len(f0) / mc_faces)
    hands = [hand_box(groups, tag) for tag in ("L", "R")]
    v, f = polygonise(groups, joins, h, hands, FINGER_GRID * min(FINGER_RADIUS.values()) * s.hand_size[1])
    t1 = time.time()
    if not is_watertight(f):
        raise RuntimeError(f"{s.name}: marching cubes gave a mesh that is not watertight")
    n_mc = len(f)
    centre = v[f].mean(1)
    in_hand = np.any([np.all((centre >= lo) & (centre <= hi), axis=1) for lo, hi in hands], axis=0)
    v, f = decimate(v, f, faces, np.where(in_hand, HAND_DETAIL, 1.0))
    t2 = time.time()
    v, f = relax(v, f, field)
    if not is_watertight(f) or signed_volume(v, f) <= 0:
        raise RuntimeError(f"{s.name}: decimation broke the mesh")
    gd = np.stack([g(v) for g in groups], 1)
    group = np.argmin(gd, 1)
    segs, rad = bone_segments(s, P, extra)
    idx, w = skin(v, f, group, segs, rad)
    parts = PART_OF_JOINT[idx[:, 0]]
    col = colours(s, v, group, P, extra)
    # lowest vertex on y = 0, exact height
    lift = v[:, 1].min()
    v[:, 1] -= lift
    P[:, 1] -= lift
    k = s.height / np.ptp(v[:, 1])
    v *= k
    P *= k
    offsets = P.copy()
    for j, p in enumerate(HANDS_PARENTS):
        if p >= 0:
            offsets[j] = P[j] - P[p]
    ch = Character(s.name, canonical_skeleton(offsets), v.astype(np.float32), f.astype(np.int32),
                   idx.astype(np.int16), w.astype(np.float32), parts.astype(np.int8), col.astype(np.float32))
    validate(ch, s)
    if verbose:
        print(f"{s.name:6s} height {ch.height:.3f} m  V {len(v):5d}  F {len(f):5d}  "
              f"(grid {h * 1000:.1f} mm, coarse {len(f0)}, MC {n_mc} faces; field+MC {t1 - t0:.1f} s, "
              f"decimate {t2 - t1:.1f} s, total {time.time() - t0:.1f} s)")
    return ch


def validate(ch: Character, s: Spec) -> None:
    v = ch.rest_vertices.astype(np.float64)
    for name in ("rest_vertices", "skin_weights", "colors"):
        if not np.isfinite(getattr(ch, name)).all():
            raise RuntimeError(f"{ch.name}: NaN in {name}")
    if abs(ch.height - s.height) > 0.03:
        raise RuntimeError(f"{ch.name}: height {ch.height:.3f} m, wanted {s.height:.3f} m")
    if abs(v[:, 1].min()) > 1e-4:
        raise RuntimeError(f"{ch.name}: lowest vertex not on the floor")
    if not is_watertight(ch.faces) or signed_volume(v, ch.faces) <= 0:
        raise RuntimeError(f"{ch.name}: mesh not watertight or inside out")
    if not np.allclose(ch.skin_weights.sum(1), 1, atol=1e-4):
        raise RuntimeError(f"{ch.name}: skin weights do not sum to 1")
    if set(np.unique(ch.parts)) != set(range(len(PART_NAMES))):
        raise RuntimeError(f"{ch.name}: a body part has no vertices")
    if ch.skeleton.names != HANDS_JOINTS:
        raise RuntimeError(f"{ch.name}: not the canonical skeleton")


# ---------------------------------------------------------------------------------------------------------------
# Preview
# ---------------------------------------------------------------------------------------------------------------

def render_preview(chars: list[Character], path: str | Path) -> None:
    """Front and side views of all characters (orthographic, Lambert-shaded, painter's algorithm)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, axes = plt.subplots(2, len(chars), figsize=(3.2 * len(chars), 7.5))
    axes = np.atleast_2d(axes).reshape(2, len(chars))
    light = np.array([0.35, 0.45, 1.0])
    light /= np.linalg.norm(light)
    top = max(c.height for c in chars) + 0.05
    for col, ch in enumerate(chars):
        v, f = ch.rest_vertices.astype(np.float64), ch.faces
        colors = ch.colors if ch.colors is not None else np.full((len(v), 3), 0.8)
        for row, (ax, rot) in enumerate(zip(axes[:, col], (np.eye(3), np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]])))):
            w = v @ rot.T  # view from +Z (front) and from +X (the character's left side)
            tri = w[f]
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
            front = n[:, 2] > 0
            shade = 0.35 + 0.65 * np.clip(n @ light, 0, 1)
            fc = colors[f].mean(1) * shade[:, None]
            order = np.argsort(tri[:, :, 2].mean(1))
            order = order[front[order]]
            ax.add_collection(PolyCollection(tri[order][:, :, :2], facecolors=np.clip(fc[order], 0, 1),
                                             edgecolors="none", antialiased=False))
            ax.set_xlim(-1.1, 1.1) if row == 0 else ax.set_xlim(-0.5, 0.5)
            ax.set_ylim(-0.05, top)
            ax.set_aspect("equal")
            ax.axis("off")
            if row == 0:
                ax.set_title(f"{ch.name} {ch.height:.2f} m, {len(f)} tris", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ASSETS_DIR, help="output folder (default: assets/characters)")
    ap.add_argument("--only", nargs="*", help="build only these characters")
    ap.add_argument("--preview", type=Path, help="also render a front/side preview PNG of the built characters")
    args = ap.parse_args(argv)
    specs = [s for s in SPECS if not args.only or s.name.lower() in {n.lower() for n in args.only}]
    if not specs:
        ap.error(f"no such character; known: {', '.join(s.name for s in SPECS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    chars = []
    for s in specs:
        ch = build(s)
        path = args.out / f"{s.name}.npz"
        ch.save(path)
        chars.append(ch)
        print(f"  wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    print(f"{len(chars)} characters in {time.time() - t0:.1f} s")
    if args.preview:
        render_preview(chars, args.preview)
        print(f"preview: {args.preview}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
