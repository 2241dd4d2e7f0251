"""The Skeleton type, the canonical 22-joint topology, and mapping any humanoid rig onto it by name.

Conventions (DESIGN §2): metres, Y up, a character in rest pose faces +Z (its left is +X), quaternions
(w, x, y, z). Joints are topologically ordered (parent index < child index, root = 0, parent of root = -1).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InputError
from .kinematics import Pose, forward_kinematics

__all__ = [
    "Skeleton", "SkeletonMappingError", "CANONICAL_JOINTS", "CANONICAL_PARENTS", "CANONICAL_TPOSE_DIRECTIONS",
    "CanonicalMapping", "map_to_canonical", "canonical_main_child", "normalize_joint_name", "canonical_skeleton",
    "FINGERS", "FINGER_JOINTS", "FINGER_PARENTS", "finger_offsets", "finger_tpose_direction", "map_fingers",
    "HANDS_JOINTS", "HANDS_PARENTS",
]

CANONICAL_JOINTS: tuple[str, ...] = (
    "Hips", "Spine", "Spine1", "Spine2", "Neck", "Head",
    "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand",
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase",
    "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase",
)
CANONICAL_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 3, 10, 11, 12, 0, 14, 15, 16, 0, 18, 19, 20)

# The direction in which each canonical joint's *main* child lies in the T-pose (character facing +Z).
# Leaves have none (their frame follows their parent's). Used to align any rig's rest frames to the T-pose.
CANONICAL_TPOSE_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "Hips": (0, 1, 0), "Spine": (0, 1, 0), "Spine1": (0, 1, 0), "Spine2": (0, 1, 0), "Neck": (0, 1, 0),
    "LeftShoulder": (1, 0, 0), "LeftArm": (1, 0, 0), "LeftForeArm": (1, 0, 0),
    "RightShoulder": (-1, 0, 0), "RightArm": (-1, 0, 0), "RightForeArm": (-1, 0, 0),
    "LeftUpLeg": (0, -1, 0), "LeftLeg": (0, -1, 0), "LeftFoot": (0, 0, 1),
    "RightUpLeg": (0, -1, 0), "RightLeg": (0, -1, 0), "RightFoot": (0, 0, 1),
}
_MAIN_CHILD = {"Hips": "Spine", "Spine2": "Neck"}  # joints with several canonical children


def canonical_main_child(k: int) -> int | None:
    """Index of the canonical joint that canonical joint ``k``'s bone points at (None for the leaves)."""
    name = CANONICAL_JOINTS[k]
    if name not in CANONICAL_TPOSE_DIRECTIONS:
        return None
    return CANONICAL_JOINTS.index(_MAIN_CHILD[name]) if name in _MAIN_CHILD else CANONICAL_PARENTS.index(k)


# ----------------------------------------------------------------------------------------------------------
# Optional finger joints
# ----------------------------------------------------------------------------------------------------------
# Mixamo's naming: <Side>Hand<Finger><k>, k = 1 at the finger's base (the thumb's carpometacarpal joint, the
# other fingers' knuckle), 2 and 3 the next joints; the tip is no joint. A canonical skeleton with hands is the
# 22 joints followed by these 30 (left hand's five fingers, then the right's), each finger a chain from its Hand.

FINGERS: tuple[str, ...] = ("Thumb", "Index", "Middle", "Ring", "Pinky")
FINGER_JOINTS: tuple[str, ...] = tuple(f"{side}Hand{f}{k}" for side in ("Left", "Right") for f in FINGERS
                                       for k in (1, 2, 3))
FINGER_PARENTS: tuple[int, ...] = tuple(
    (CANONICAL_JOINTS.index(f"{side}Hand") if k == 1 else 22 + 15 * s + 3 * f + k - 2)
    for s, side in enumerate(("Left", "Right")) for f in range(5) for k in (1, 2, 3))
HANDS_JOINTS: tuple[str, ...] = CANONICAL_JOINTS + FINGER_JOINTS
HANDS_PARENTS: tuple[int, ...] = CANONICAL_PARENTS + FINGER_PARENTS

# A left hand in the T-pose (palm down, fingers along +X, thumb towards +Z), in units of the wrist-to-middle-
# knuckle length: each finger's base from the wrist, its bone direction, and its three bone lengths (base to
# joint 2, 2 to 3, 3 to the tip). Proportions of an adult hand (phalanx lengths after Buryanov & Kotiuk 2010).
_HAND_TABLE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]] = {
    "Thumb": ((0.22, -0.08, 0.22), (0.62, -0.25, 0.74), (0.48, 0.36, 0.32)),
    "Index": ((0.96, 0.0, 0.24), (1.0, 0.0, 0.03), (0.46, 0.27, 0.22)),
    "Middle": ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.50, 0.31, 0.23)),
    "Ring": ((0.95, 0.0, -0.21), (1.0, 0.0, -0.03), (0.47, 0.30, 0.23)),
    "Pinky": ((0.87, 0.0, -0.40), (1.0, 0.0, -0.08), (0.37, 0.22, 0.21)),
}


def finger_tpose_direction(name: str) -> np.ndarray:
    """Unit direction ``(3,)`` of finger joint ``name``'s bone in the canonical T-pose (palm down, +Z forward)."""
    side, rest = name[:name.index("Hand")], name[name.index("Hand") + 4:]
    d = np.asarray(_HAND_TABLE[rest[:-1]][1], dtype=np.float64)
    d = d / np.linalg.norm(d)
    return d * (1, 1, 1) if side == "Left" else d * (-1, 1, 1)


def finger_offsets(hand_length: float) -> np.ndarray:
    """``(30, 3)`` T-pose offsets of :data:`FINGER_JOINTS` for a hand ``hand_length`` metres from wrist to the
    middle knuckle (each joint's translation from its parent, parents' frames = world axes)."""
    out = np.zeros((30, 3))
    for s, sign in enumerate((1.0, -1.0)):
        for f, finger in enumerate(FINGERS):
            base, direction, lengths = _HAND_TABLE[finger]
            d = np.asarray(direction) / np.linalg.norm(direction)
            mirror = np.array([sign, 1.0, 1.0])
            out[15 * s + 3 * f] = np.asarray(base) * mirror * hand_length
            for k in (1, 2):
                out[15 * s + 3 * f + k] = d * mirror * lengths[k - 1] * hand_length
    return out


def finger_tip_offsets(hand_length: float) -> np.ndarray:
    """``(10, 3)`` offset of each finger's tip from its joint 3 (left five, then right five), T-pose."""
    out = np.zeros((10, 3))
    for s, sign in enumerate((1.0, -1.0)):
        for f, finger in enumerate(FINGERS):
            _, direction, lengths = _HAND_TABLE[finger]
            out[5 * s + f] = np.asarray(direction) / np.linalg.norm(direction) * (sign, 1, 1) * lengths[2] * hand_length
    return out


# How rig families name finger joints (normalised; {s} = left/right, {S} = l/r, {f} = finger, {k} = 1..3), each
# family a list of spellings tried in order. Unreal's mannequin: thumb_01_l; RobotExpressive (Quaternius):
# Thumb.L, Thumb2.L, Index.L, Middle1.L (two bones a finger, no pinky, each chain below its own palm bone);
# DAZ: lThumb1; CC_Base: CC_Base_L_Thumb1.
_FINGER_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("{s}hand{f}{k}",), ("{f}0{k}{S}",), ("{f}{k}{S}", "{f}{S}"), ("{S}{f}{k}",), ("ccbase{S}{f}{k}",),
)


def map_fingers(skeleton: "Skeleton") -> dict[int, int]:
    """Finger joints of a rig found by name: ``{index into FINGER_JOINTS: rig joint index}`` (empty: no fingers).

    The naming family that finds most joints wins. A finger counts only when it lies below the rig's hand of the
    same side (or below the hand's parent, for palm-bone rigs), so a stray bone elsewhere is never driven.
    """
    lookup: dict[str, int] = {}
    for j, name in enumerate(skeleton.names):
        lookup.setdefault(normalize_joint_name(name), j)
    try:
        idx = map_to_canonical(skeleton, check_hierarchy=False).indices
    except SkeletonMappingError:
        return {}
    hands = {side: idx[CANONICAL_JOINTS.index(f"{side}Hand")] for side in ("Left", "Right")}
    out: dict[int, int] = {}
    for family in _FINGER_PATTERNS:
        found: dict[int, int] = {}
        for n, joint in enumerate(FINGER_JOINTS):
            side = "Left" if joint.startswith("Left") else "Right"
            finger, k = joint[len(side) + 4:-1], joint[-1]
            for pattern in family:
                if "{k}" not in pattern and k != "1":
                    continue
                j = lookup.get(pattern.format(s=side.lower(), S=side[0].lower(), f=finger.lower(), k=k))
                if j is not None and j != hands[side] and (skeleton.is_ancestor(hands[side], j)
                                                           or _same_side_palm(skeleton, hands[side], j)):
                    found[n] = j
                    break
        if len(found) > len(out):
            out = found
    return out


def _same_side_palm(skeleton: "Skeleton", hand: int, j: int) -> bool:
    """RobotExpressive-style rigs map the hand onto a middle palm bone, its sibling palms carry the other
    fingers: a finger below the hand's parent counts too."""
    p = skeleton.parents[hand]
    return p >= 0 and skeleton.is_ancestor(p, j)


class SkeletonMappingError(InputError):
    """A rig's joints cannot be mapped onto the canonical 22-joint topology."""


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint hierarchy in its rest pose.

    names: ``J`` joint names.
    parents: ``J`` parent indices (root first, ``-1``).
    offsets: ``(J, 3)`` rest translation of each joint from its parent, in the parent's frame, metres.
    rest_rotations: ``(J, 4)`` bone rest orientations relative to the parent (identity for BVH).
    end_sites: ``J`` flags for BVH "End Site" leaves, which carry no rotation of their own.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    rest_rotations: np.ndarray = field(default=None)  # type: ignore[assignment]
    end_sites: tuple[bool, ...] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        J = len(self.names)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.float64).reshape(J, 3))
        rest = np.tile([1.0, 0, 0, 0], (J, 1)) if self.rest_rotations is None else self.rest_rotations
        object.__setattr__(self, "rest_rotations", np.asarray(rest, dtype=np.float64).reshape(J, 4))
        ends = (False,) * J if self.end_sites is None else tuple(bool(e) for e in self.end_sites)
        object.__setattr__(self, "end_sites", ends)
        if len(self.parents) != J or len(self.end_sites) != J:
            raise ValueError("names, parents and end_sites must have one entry per joint")
        if J == 0 or self.parents[0] != -1:
            raise ValueError("a skeleton needs a root joint first, with parent -1")
        for j, p in enumerate(self.parents[1:], start=1):
            if not 0 <= p < j:
                raise ValueError(f"joint {self.names[j]!r} has parent {p}: joints must be topologically ordered")
        if len(set(self.names)) != J:
            raise ValueError("joint names must be unique")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r} in this skeleton") from None

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    def is_ancestor(self, a: int, b: int) -> bool:
        """Whether joint ``a`` is a strict ancestor of joint ``b``."""
        while b >= 0:
            b = self.parents[b]
            if b == a:
                return True
        return False

    def rest_pose(self, dtype: torch.dtype = torch.float64) -> Pose:
        """World transforms of the rest pose: ``(J, 3)`` positions, ``(J, 3, 3)`` rotations."""
        J = self.num_joints
        identity = torch.zeros(J, 4, dtype=dtype)
        identity[:, 0] = 1
        return forward_kinematics(self.parents, torch.as_tensor(self.offsets, dtype=dtype), identity,
                                  torch.as_tensor(self.offsets[0], dtype=dtype),
                                  torch.as_tensor(self.rest_rotations, dtype=dtype))

    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` world joint positions in the rest pose, metres."""
        return self.rest_pose().positions.numpy()

    def bone_lengths(self) -> np.ndarray:
        """``(J,)`` distance of each joint from its parent (0 for the root)."""
        lengths = np.linalg.norm(self.offsets, axis=1)
        lengths[0] = 0.0
        return lengths

    def scaled(self, factor: float) -> "Skeleton":
        """The same skeleton with every length multiplied by ``factor`` (e.g. a unit change)."""
        return Skeleton(self.names, self.parents, self.offsets * factor, self.rest_rotations, self.end_sites)

    def __repr__(self) -> str:
        return f"Skeleton({self.num_joints} joints, root={self.names[0]!r})"


# ----------------------------------------------------------------------------------------------------------
# Name mapping
# ----------------------------------------------------------------------------------------------------------

def normalize_joint_name(name: str) -> str:
    """Lower-case alphanumerics without a namespace: ``mixamorig7:LeftArm`` and ``mixamorig_LeftArm`` → ``leftarm``."""
    name = name.rsplit(":", 1)[-1]
    name = re.sub(r"^mixamorig\d*_", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _sided(left_template: str) -> tuple[str, str]:
    return left_template.format(s="left", S="l"), left_template.format(s="right", S="r")


def _profile(trunk: list[str | None], shoulder: str, arm: str, forearm: str, hand: str,
             upleg: str, leg: str, foot: str, toe: str) -> tuple[str | None, ...]:
    """A rig's names for the 22 canonical joints (normalised; None = synthesise midway along the bone)."""
    left = [_sided(t)[0] for t in (shoulder, arm, forearm, hand)]
    right = [_sided(t)[1] for t in (shoulder, arm, forearm, hand)]
    lleg = [_sided(t)[0] for t in (upleg, leg, foot, toe)]
    rleg = [_sided(t)[1] for t in (upleg, leg, foot, toe)]
    return tuple(trunk + left + right + lleg + rleg)


# Each profile names a rig family's joints in canonical order. The best-covering profile wins; a None entry is
# an intermediate spine joint the rig lacks, placed midway between its canonical neighbours.
RIG_PROFILES: dict[str, tuple[str | None, ...]] = {
    "mixamo": _profile(["hips", "spine", "spine1", "spine2", "neck", "head"],
                       "{s}shoulder", "{s}arm", "{s}forearm", "{s}hand", "{s}upleg", "{s}leg", "{s}foot", "{s}toebase"),
    "cmu": _profile(["hips", "lowerback", "spine", "spine1", "neck", "head"],
                    "{s}shoulder", "{s}arm", "{s}forearm", "{s}hand", "{s}upleg", "{s}leg", "{s}foot", "{s}toebase"),
    "daz": _profile(["hip", "abdomen", None, "chest", "neck", "head"],
                    "{S}collar", "{S}shldr", "{S}forearm", "{S}hand", "{S}thigh", "{S}shin", "{S}foot", "{S}footend"),
    "bandai": _profile(["hips", "spine", None, "chest", "neck", "head"],
                       "shoulder{S}", "upperarm{S}", "lowerarm{S}", "hand{S}", "upperleg{S}", "lowerleg{S}", "foot{S}",
                       "toes{S}"),
    "ccbase": _profile(["ccbasehip", "ccbasewaist", "ccbasespine01", "ccbasespine02", "ccbasenecktwist01", "ccbasehead"],
                       "ccbase{S}clavicle", "ccbase{S}upperarm", "ccbase{S}forearm", "ccbase{S}hand",
                       "ccbase{S}thigh", "ccbase{S}calf", "ccbase{S}foot", "ccbase{S}toebase"),
    "unreal": _profile(["pelvis", "spine01", "spine02", "spine03", "neck01", "head"],
                       "clavicle{S}", "upperarm{S}", "lowerarm{S}", "hand{S}", "thigh{S}", "calf{S}", "foot{S}", "ball{S}"),
    # Checked against RobotExpressive.glb: the hand is the middle palm bone, and the toe the foot's leaf node.
    "quaternius": _profile(["hips", "abdomen", None, "torso", "neck", "head"],
                           "shoulder{S}", "upperarm{S}", "lowerarm{S}", "palm2{S}", "upperleg{S}", "lowerleg{S}",
                           "foot{S}", "foot{S}end"),
}


@dataclass(frozen=True)
class CanonicalMapping:
    """Where each canonical joint comes from in a rig.

    profile: the rig family that matched.
    indices: 22 joint indices into the rig's skeleton, ``-1`` where the joint is synthesised midway between
        its canonical parent and child (a rig with fewer spine joints).
    """

    profile: str
    indices: tuple[int, ...]


def map_to_canonical(skeleton: Skeleton, check_hierarchy: bool = True) -> CanonicalMapping:
    """Map a rig onto the canonical 22 joints by name.

    ``check_hierarchy=False`` skips the check that each joint lies below its canonical parent (for importers
    that repair rigs whose feet hang from the root, as IK rigs do).

    Raises:
        SkeletonMappingError: naming the canonical joints that could not be found (for the closest rig family).
    """
    lookup: dict[str, int] = {}
    for j, name in enumerate(skeleton.names):
        lookup.setdefault(normalize_joint_name(name), j)
        if skeleton.end_sites[j] and skeleton.parents[j] >= 0:  # BVH end sites answer to "<parent>end" too
            lookup.setdefault(normalize_joint_name(skeleton.names[skeleton.parents[j]]) + "end", j)
    best: tuple[int, str, list[str], tuple[int, ...]] | None = None
    for profile, names in RIG_PROFILES.items():
        idx = tuple(-1 if n is None else lookup.get(n, -2) for n in names)
        missing = [CANONICAL_JOINTS[k] for k, i in enumerate(idx) if i == -2]
        if best is None or len(missing) < len(best[2]):
            best = (len(missing), profile, missing, idx)
    assert best is not None
    _, profile, missing, idx = best
    if missing:
        raise SkeletonMappingError(
            f"cannot map this rig onto the 22 canonical joints: no joint for {', '.join(missing)} "
            f"(closest naming scheme: {profile}; joints present: {', '.join(skeleton.names[:40])}"
            f"{' ...' if skeleton.num_joints > 40 else ''})")
    for k, i in enumerate(idx if check_hierarchy else ()):
        p = CANONICAL_PARENTS[k]
        while p >= 0 and idx[p] == -1:
            p = CANONICAL_PARENTS[p]
        if i >= 0 and p >= 0 and not skeleton.is_ancestor(idx[p], i):
            raise SkeletonMappingError(
                f"joint {skeleton.names[i]!r} (canonical {CANONICAL_JOINTS[k]}) is not below "
                f"{skeleton.names[idx[p]]!r} (canonical {CANONICAL_JOINTS[p]}) in this rig")
    return CanonicalMapping(profile, idx)


def canonical_skeleton(offsets: np.ndarray) -> Skeleton:
    """A canonical skeleton (identity rest rotations) from ``(22, 3)`` offsets in metres, or ``(52, 3)`` for
    the 22 joints followed by :data:`FINGER_JOINTS`."""
    offsets = np.asarray(offsets, dtype=np.float64)
    if len(offsets) == len(HANDS_JOINTS):
        return Skeleton(HANDS_JOINTS, HANDS_PARENTS, offsets)
    return Skeleton(CANONICAL_JOINTS, CANONICAL_PARENTS, offsets)
