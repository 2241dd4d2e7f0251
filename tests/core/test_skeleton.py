"""Skeleton name mapping onto the canonical 22 joints: shared rigs, name prefixes, unmappable rigs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.motion import to_canonical
from core.skeleton import (CANONICAL_JOINTS, CANONICAL_PARENTS, Skeleton, SkeletonMappingError, map_to_canonical,
                           normalize_joint_name)

from ..synthetic import random_motion, tpose_offsets

# One file per rig family in ../shared/data, the profile it must match, and a few joints it must pick.
SHARED_RIGS = [
    ("motion/cmu/02_01.bvh", "cmu", {"Spine": "LowerBack", "Spine2": "Spine1", "LeftToeBase": "LeftToeBase"}),
    ("motion/cmu/08_01_trimmed.bvh", "daz", {"Hips": "hip", "Spine1": None, "LeftToeBase": "lFoot_End"}),
    ("motion/cmu/002_03_ccbase.bvh", "ccbase", {"Hips": "CC_Base_Hip", "LeftHand": "CC_Base_L_Hand"}),
    ("motion/bandai_namco_1/data/dataset-1_walk_normal_001.bvh", "bandai",
     {"Hips": "Hips", "Spine1": None, "Spine2": "Chest", "RightToeBase": "Toes_R"}),
    ("motion/mixamo_r2et/Mousey_Salsa_Dancing.bvh", "mixamo", {"LeftHand": "mixamorig:LeftHand"}),
    ("motion/mixamo_r2et/Ortiz_Salsa_Dancing.bvh", "mixamo", {"Head": "mixamorig:Head"}),
    ("motion/mixamo_r2et/Sporty_Granny_Salsa_Dancing.bvh", "mixamo", {"Spine2": "mixamorig:Spine2"}),
    ("characters/Sporty_Granny_Hip_Hop_Dancing.bvh", "mixamo", {"Hips": "Hips", "RightFoot": "RightFoot"}),
]


@pytest.mark.parametrize("rel,profile,picks", SHARED_RIGS, ids=[r[0].rsplit("/", 1)[-1] for r in SHARED_RIGS])
def test_shared_rigs_map(shared_data: Path, rel: str, profile: str, picks: dict):
    sk = read_bvh(shared_data / rel).skeleton
    mapping = map_to_canonical(sk)
    assert mapping.profile == profile
    assert len(mapping.indices) == 22
    for canonical, joint in picks.items():
        i = mapping.indices[CANONICAL_JOINTS.index(canonical)]
        assert (sk.names[i] if i >= 0 else None) == joint


def _renamed(names) -> Skeleton:
    return Skeleton(tuple(names), CANONICAL_PARENTS, tpose_offsets())


@pytest.mark.parametrize("prefix", ["", "mixamorig:", "mixamorig7:", "mixamorig_", "Armature|mixamorig:"])
def test_mixamo_prefixes_map(prefix: str):
    mapping = map_to_canonical(_renamed(prefix + n for n in CANONICAL_JOINTS))
    assert mapping.profile == "mixamo"
    assert mapping.indices == tuple(range(22))


def test_normalize_joint_name():
    assert normalize_joint_name("mixamorig7:LeftArm") == "leftarm"
    assert normalize_joint_name("mixamorig_LeftArm") == "leftarm"
    assert normalize_joint_name("CC_Base_L_Thigh") == "ccbaselthigh"


def test_mapping_is_order_independent():
    """Extra bones and another joint order do not change which joints are picked."""
    names = list(CANONICAL_JOINTS) + ["LeftHandIndex1", "HeadTop_End", "Hat"]
    parents = list(CANONICAL_PARENTS) + [CANONICAL_JOINTS.index("LeftHand"), 5, 22 + 1]
    offsets = np.vstack([tpose_offsets(), [[0.05, 0, 0], [0, 0.2, 0], [0, 0.05, 0]]])
    mapping = map_to_canonical(Skeleton(names, parents, offsets))
    assert mapping.indices == tuple(range(22))


def test_unmappable_rig_names_missing_joints():
    names = [n if n != "LeftHand" else "LeftPalm" for n in CANONICAL_JOINTS]
    with pytest.raises(SkeletonMappingError, match=r"no joint for LeftHand \(closest naming scheme: mixamo") as info:
        map_to_canonical(_renamed(names))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)

    names = [n.replace("Left", "L_").replace("Right", "R_") for n in CANONICAL_JOINTS]
    with pytest.raises(SkeletonMappingError) as info:
        map_to_canonical(_renamed(names))
    # "L_Hand" reads as DAZ's "lHand", so the closest scheme is DAZ and the message lists what DAZ still lacks.
    assert "closest naming scheme: daz" in str(info.value)
    for missing in ("LeftShoulder", "LeftArm", "RightToeBase"):
        assert missing in str(info.value)


def test_mapping_checks_the_hierarchy():
    parents = list(CANONICAL_PARENTS)
    parents[CANONICAL_JOINTS.index("LeftHand")] = CANONICAL_JOINTS.index("Spine2")  # a hand on the chest
    sk = Skeleton(CANONICAL_JOINTS, parents, tpose_offsets())
    with pytest.raises(SkeletonMappingError, match=r"'LeftHand' \(canonical LeftHand\) is not below 'LeftForeArm'"):
        map_to_canonical(sk)


def test_cmu_style_spine_on_the_hips_canonicalises():
    """CMU's LowerBack sits exactly on the Hips (zero offset); the T-pose frame must still find 'up'."""
    names = list(CANONICAL_JOINTS)
    names[1:4] = ["LowerBack", "Spine", "Spine1"]  # the CMU profile's trunk: hips, lowerback, spine, spine1
    offsets = tpose_offsets()
    offsets[2] += offsets[1]  # LowerBack's own bone moves into its child
    offsets[1] = 0.0
    sk = Skeleton(names, CANONICAL_PARENTS, offsets)
    assert map_to_canonical(sk).profile == "cmu"
    motion = random_motion(sk, frames=10, seed=4)
    canonical = to_canonical(motion)
    rest = canonical.skeleton.rest_positions()
    assert rest[:, 1].max() - rest[:, 1].min() > 1.0
    diff = canonical.positions() - motion.positions()
    assert np.abs(diff - diff.reshape(-1, 3).mean(0)).max() < 1e-9
