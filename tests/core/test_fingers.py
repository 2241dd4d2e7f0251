"""Finger joints: found by name on rigs of several families, carried through BVH, copied across rigs."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.io.bvh import read_bvh, write_bvh
from core.motion import Motion, canonical_fingers, with_fingers
from core.retarget.copy import copy_retarget
from core.skeleton import (CANONICAL_JOINTS, FINGER_JOINTS, Skeleton, canonical_skeleton, finger_offsets,
                           map_fingers)
from tests.synthetic import reoriented_rig, tpose_offsets


def _hands_skeleton(height: float = 1.7, names=None) -> Skeleton:
    sk = canonical_skeleton(np.vstack([tpose_offsets(height), finger_offsets(0.05 * height)]))
    return sk if names is None else Skeleton(tuple(names), sk.parents, sk.offsets)


def _random_fingers(T: int, seed: int) -> np.ndarray:
    q = Rotation.from_rotvec(np.random.default_rng(seed).normal(0, 0.5, (T * 30, 3))).as_quat()[:, [3, 0, 1, 2]]
    return q.reshape(T, 30, 4)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(a * b, -1)), 0, 1))).max())


def _unreal(name: str) -> str:
    for f in ("Thumb", "Index", "Middle", "Ring", "Pinky"):
        if f in name:
            side = "l" if name.startswith("Left") else "r"
            return f"{f.lower()}_0{name[-1]}_{side}"
    return name


@pytest.mark.parametrize("rename", [lambda n: n, lambda n: f"mixamorig:{n}", lambda n: f"mixamorig7_{n}", _unreal],
                         ids=["canonical", "mixamorig:", "mixamorig7_", "unreal"])
def test_fingers_are_found_by_name(rename):
    sk = _hands_skeleton(names=[rename(n) for n in _hands_skeleton().names])
    found = map_fingers(sk)
    assert {FINGER_JOINTS[k]: sk.names[j] for k, j in found.items()} == {
        n: rename(n) for n in FINGER_JOINTS}


@pytest.mark.parametrize("file, expected", [
    ("RobotExpressive.glb", {"LeftHandThumb1": "Thumb.L", "LeftHandThumb2": "Thumb2.L", "LeftHandIndex1": "Index.L",
                             "LeftHandIndex2": "Index2.L", "LeftHandMiddle1": "Middle1.L",
                             "LeftHandMiddle2": "Middle2.L", "LeftHandRing1": "Ring1.L", "LeftHandRing2": "Ring2.L"}),
    ("Xbot.glb", {f"LeftHand{f}{k}": f"mixamorig:LeftHand{f}{k}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky")
                  for k in (1, 2, 3)}),
], ids=["palm bones (RobotExpressive)", "Mixamo (X Bot)"])
def test_real_rigs_map_their_fingers(shared_data, file, expected):
    from core.io.character_import import import_character

    sk = import_character(shared_data / "characters" / file).skeleton
    found = {FINGER_JOINTS[k]: sk.names[j] for k, j in map_fingers(sk).items()}
    assert {k: v for k, v in found.items() if k.startswith("Left")} == expected
    assert len(found) == 2 * len(expected)


def test_a_rig_without_fingers_ignores_them():
    sk = canonical_skeleton(tpose_offsets())
    assert map_fingers(sk) == {}
    motion = Motion.rest(sk, 3)
    assert canonical_fingers(motion) is None
    assert with_fingers(motion, _random_fingers(3, 0)) is motion


def test_fingers_round_trip_through_a_rig_with_other_bone_orientations():
    fingers = _random_fingers(6, 1)
    rig, _ = reoriented_rig(_hands_skeleton(), seed=4)
    motion = with_fingers(Motion.rest(rig, 6), fingers)
    assert _angle(canonical_fingers(motion), fingers) < 1e-3
    # The hands and everything that is no finger stay as they were.
    body = [rig.index(n) for n in CANONICAL_JOINTS]
    assert np.allclose(motion.rotations[:, body], Motion.rest(rig, 6).rotations[:, body])


def test_copy_retarget_carries_fingers_to_a_character_with_fingers(tmp_path):
    T = 5
    source = Motion(_hands_skeleton(), np.tile([1.0, 0, 0, 0], (T, 52, 1)), np.tile([0, 1.0, 0], (T, 1)), 30.0)
    source.rotations[:, 22:] = _random_fingers(T, 2)
    target = _hands_skeleton(1.2, names=[f"mixamorig:{n}" for n in _hands_skeleton().names])
    moved = copy_retarget(source, target)
    assert _angle(canonical_fingers(moved), source.rotations[:, 22:]) < 1e-5
    # And a BVH carries them: read back, the fingers are the same.
    write_bvh(source, tmp_path / "hands.bvh")
    assert _angle(canonical_fingers(read_bvh(tmp_path / "hands.bvh")), source.rotations[:, 22:]) < 1e-4


def _bones_along_y(skeleton: Skeleton, roll: float, seed: int = 0) -> Skeleton:
    """The same figure as an FBX-style rig: each bone's rest frame has Y along the bone, turned about it by ``roll``
    radians for hands and fingers (one roll along a hand, as exporters give it) and at random elsewhere."""
    rng = np.random.default_rng(seed)
    P = skeleton.rest_positions()
    J = skeleton.num_joints
    world = np.zeros((J, 3, 3))
    for j in range(J):
        kids = skeleton.children(j)
        if not kids:
            world[j] = world[skeleton.parents[j]]
            continue
        main = [k for k in kids if skeleton.names[k].endswith(("Middle1", "Spine"))] or kids
        bone = P[main[0]] - P[j]
        align = Rotation.align_vectors([bone], [[0, 1.0, 0]])[0]
        turn = roll if "Hand" in skeleton.names[j] else rng.uniform(-np.pi, np.pi)
        world[j] = (align * Rotation.from_rotvec([0, turn, 0])).as_matrix()
    local = np.zeros((J, 4))
    offsets = np.zeros((J, 3))
    for j, p in enumerate(skeleton.parents):
        R = world[j] if p < 0 else world[p].T @ world[j]
        local[j] = Rotation.from_matrix(R).as_quat()[[3, 0, 1, 2]]
        offsets[j] = P[j] if p < 0 else world[p].T @ (P[j] - P[p])
    return Skeleton(skeleton.names, skeleton.parents, offsets, local)


def test_fingers_read_the_same_from_a_bvh_of_an_fbx_style_rig(tmp_path):
    # A BVH written from a rig whose bones carry rest orientations has another rest pose (each offset in its
    # parent's bone frame, so every bone along Y): the fingers' canonical rotations must not depend on it (the palm
    # fixes the hand's twist; carried down the arm it came out 20-50 degrees off on X Bot). The thumb is the
    # exception: such a BVH's rest has it along the hand (its own Y), so its base's canonical twist is lost.
    rig = _bones_along_y(_hands_skeleton(), roll=0.7)
    motion = with_fingers(Motion.rest(rig, 4), _random_fingers(4, 3))
    write_bvh(motion, tmp_path / "rig.bvh")
    back = read_bvh(tmp_path / "rig.bvh")
    assert np.allclose(back.positions()[:, [back.skeleton.index(n) for n in rig.names]], motion.positions(),
                       atol=1e-5)
    fingers = [k for k, n in enumerate(FINGER_JOINTS) if "Thumb" not in n]
    diff = np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(canonical_fingers(back) * canonical_fingers(motion), -1)),
                                            0, 1)))[:, fingers]
    assert diff.mean() < 3.0 and diff.max() < 8.0
