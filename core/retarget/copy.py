"""The Copy retargeter: the baseline every later stage is measured against.

Both motions are first expressed on the canonical T-pose skeleton (:func:`core.motion.to_canonical`), where a
local rotation means the same turn away from the T-pose on any character, so rotations are copied as they
are. The root path is scaled by the ratio of leg lengths, and the feet are kept on the ground: each frame the
target's lowest foot joint is put at the source's lowest-foot height, scaled, above the target's own floor
clearance (so no floating or sinking when proportions differ).
"""
from __future__ import annotations

import numpy as np

from ..motion import (FOOT_JOINTS, Motion, canonical_fingers, canonical_rest, from_canonical, to_canonical,
                      with_fingers)
from ..skeleton import CANONICAL_JOINTS, Skeleton, map_to_canonical

__all__ = ["copy_retarget", "leg_length", "foot_clearance", "ground_feet"]

_FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


def leg_length(canonical: Skeleton) -> float:
    """T-pose height of the hips above the lowest foot joint, metres (a canonical skeleton)."""
    rest = canonical.rest_positions()
    return float(rest[0, 1] - rest[_FEET, 1].min())


def foot_clearance(skeleton: Skeleton) -> float:
    """Rest height of a rig's lowest canonical foot joint above the floor (y = 0), metres."""
    feet = [map_to_canonical(skeleton).indices[k] for k in _FEET]
    return float(skeleton.rest_positions()[feet, 1].min())


def ground_feet(motion: Motion, source_feet_height: np.ndarray, clearance: float) -> Motion:
    """Shift the root vertically so the lowest foot joint is at ``clearance + source_feet_height (T,)``."""
    lowest = motion.positions()[:, _FEET, 1].min(axis=1)
    root = motion.root_positions.copy()
    root[:, 1] += clearance + source_feet_height - lowest
    return Motion(motion.skeleton, motion.rotations, root, motion.fps, motion.name)


def copy_retarget(source: Motion, target: Skeleton) -> Motion:
    """The source motion played on ``target`` by copying canonical local rotations.

    Args:
        source: a motion on any rig that maps onto the canonical 22 joints.
        target: the target skeleton (a built-in character's canonical skeleton, or any mappable rig).

    Returns:
        A :class:`Motion` on ``target``, at the source's frame rate.
    """
    src = to_canonical(source)
    tgt_skeleton = canonical_rest(target)
    ratio = leg_length(tgt_skeleton) / max(leg_length(src.skeleton), 1e-6)

    src_feet = src.positions()[:, _FEET, 1].min(axis=1)  # canonical floor = contact level, so: feet above contact
    moved = Motion(tgt_skeleton, src.rotations.copy(), src.root_positions * ratio, src.fps, source.name)
    moved = ground_feet(moved, src_feet * ratio, foot_clearance(target))
    return with_fingers(from_canonical(moved, target), canonical_fingers(source))  # fingers copy across
