"""Importing users' characters and animations (FBX/GLB through Blender's worker): every shared character file,
the name mapping of the rigs met in practice, the user library, and bad input of every kind.
"""
from __future__ import annotations

import json
import struct
import time
import warnings

import numpy as np
import pytest

import app
from core.character import PART_NAMES, Character
from core.character_library import load_character, save_user_character, user_character_names
from core.errors import InputError
from core.io import character_import
from core.io.blender import BlenderTimeoutError, BlenderWorkerError, blender_available, run_blender_worker
from core.io.character_import import CharacterImportError, import_character, import_file, read_motion_file
from core.io.export import export_bone_names, export_character_motion
from core.motion import Motion, to_canonical
from core.skeleton import CANONICAL_JOINTS, Skeleton, SkeletonMappingError, canonical_skeleton, map_to_canonical

from ...conftest import SHARED_DATA, SHARED_DATA_MISSING
from ...synthetic import random_motion, tpose_offsets

needs_blender = pytest.mark.skipif(not blender_available(), reason="bpy (Blender as a Python module) not installed")

# What each shared file holds: (is a character, animations, rig family, height range in metres).
SHARED_FILES = {
    "Samba_Dancing.fbx": (True, 1, "mixamo", (1.7, 1.9)),
    "Sporty_Granny_Hip_Hop_Dancing.fbx": (False, 1, "mixamo", None),
    "Xbot.glb": (True, 6, "mixamo", (1.7, 1.9)),
    "Soldier.glb": (True, 4, "mixamo", (0.2, 0.25)),  # the file is modelled 22 cm tall (three.js scales it up)
    # 4.53 m: the file's bind pose computed from its own nodes and inverse bind matrices (parts hung from joints)
    "RobotExpressive.glb": (True, 14, "quaternius", (4.4, 4.7)),
}
_imported: dict[str, object] = {}


def _shared(name: str):
    """The shared file imported once per test session (skeleton, character where it has one, motions)."""
    path = SHARED_DATA / "characters" / name
    if not path.exists():
        pytest.skip(SHARED_DATA_MISSING if not SHARED_DATA.is_dir() else f"{name} absent from the shared data")
    if name not in _imported:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _imported[name] = import_file(path, want_mesh=SHARED_FILES[name][0])
    return _imported[name]


@needs_blender
@pytest.mark.parametrize("name", list(SHARED_FILES))
def test_every_shared_character_file_imports(name):
    is_character, n_anims, family, heights = SHARED_FILES[name]
    got = _shared(name)
    mapping = map_to_canonical(got.skeleton)  # maps onto the 22 joints, hierarchy checked
    assert mapping.profile == family and len(mapping.indices) == 22
    assert len(got.motions) == n_anims
    for m in got.motions:
        assert m.num_frames >= 1 and m.fps in (24.0, 30.0, 60.0)  # glTF: the rate its keys were made at
        assert np.isfinite(m.rotations).all() and np.allclose(np.linalg.norm(m.rotations, axis=-1), 1.0)
        canonical = to_canonical(m)  # what retargeting does with it
        assert canonical.skeleton.names == CANONICAL_JOINTS
    if not is_character:
        assert got.character is None
        return
    c: Character = got.character
    assert heights[0] < c.height < heights[1]
    assert c.rest_vertices[:, 1].min() == pytest.approx(0.0, abs=1e-9)  # standing on the floor
    assert np.allclose(c.skin_weights.sum(axis=1), 1.0) and (c.skin_weights >= 0).all()
    assert c.faces.min() >= 0 and c.faces.max() < len(c.rest_vertices)
    assert set(np.unique(c.parts)) == set(range(len(PART_NAMES)))
    assert c.colors is not None and c.colors.shape == c.rest_vertices.shape
    # Body-part labels from the skin weights: the top of the head, the soles, the hands.
    assert PART_NAMES[c.parts[c.rest_vertices[:, 1].argmax()]] == "head"
    assert PART_NAMES[c.parts[c.rest_vertices[:, 1].argmin()]] == "leg"
    for hand in ("LeftHand", "RightHand"):
        at = c.skeleton.rest_positions()[mapping.indices[CANONICAL_JOINTS.index(hand)]]
        assert PART_NAMES[c.parts[np.linalg.norm(c.rest_vertices - at, axis=1).argmin()]] == "arm"


@needs_blender
def test_mixamo_character_rest_pose_and_orientations():
    """Samba (Mixamo FBX, cm): a T-pose facing +Z, hips about 1 m up, the file's own bone orientations."""
    got = _shared("Samba_Dancing.fbx")
    sk = got.skeleton
    assert sk.names[0] == "mixamorig:Hips" and sk.num_joints == 67
    rest = sk.rest_pose()
    P, W = rest.positions.numpy(), rest.rotations.numpy()
    arm, fore = sk.index("mixamorig:LeftArm"), sk.index("mixamorig:LeftForeArm")
    bone = (P[fore] - P[arm]) / np.linalg.norm(P[fore] - P[arm])
    assert bone @ [1.0, 0, 0] > 0.95  # T-pose, the character's left is +X
    assert np.allclose(W.transpose(0, 2, 1) @ W, np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(W), 1.0)
    # Mixamo's files orient bones their own way (the arm's Y axis points up, not along the arm): kept as is.
    assert W[arm][:, 1] @ [0.0, 1.0, 0.0] > 0.999
    toe, foot = sk.index("mixamorig:LeftToeBase"), sk.index("mixamorig:LeftFoot")
    assert P[toe][2] > P[foot][2]  # feet point forward: facing +Z
    assert 0.9 < P[0][1] < 1.1


@needs_blender
def test_robot_expressive_maps_after_repairs():
    """The non-Mixamo rig: names (Abdomen, Torso, UpperArm.L, Palm2.L, ...), IK feet hanging from the root
    re-parented under the shins, leaf nodes as toes, rooted at the hips."""
    got = _shared("RobotExpressive.glb")
    sk = got.skeleton
    idx = map_to_canonical(sk).indices
    named = {CANONICAL_JOINTS[k]: (sk.names[i] if i >= 0 else None) for k, i in enumerate(idx)}
    assert named["Hips"] == "Hips" and named["Spine"] == "Abdomen" and named["Spine1"] is None
    assert named["Spine2"] == "Torso" and named["LeftHand"] == "Palm2.L" and named["RightArm"] == "UpperArm.R"
    assert named["LeftFoot"] == "Foot.L" and named["LeftToeBase"] == "Foot.L_end"
    assert sk.names[sk.parents[sk.index("Foot.L")]] == "LowerLeg.L"
    assert sk.names[0] == "Hips" and "Bone" not in sk.names and "PoleTarget.L" not in sk.names
    assert any("re-parented" in w for w in got.warnings) and any("rooted at Hips" in w for w in got.warnings)
    # Bone-parented rigid parts and the skinned hands are all in the merged mesh.
    assert len(got.meshes) >= 10 and len(got.character.rest_vertices) > 7000


@needs_blender
def test_an_imported_character_exports_and_comes_back(tmp_path):
    """A real rig with its own bone orientations (X Bot, 65 bones) plays its walk and survives FBX export."""
    got = _shared("Xbot.glb")
    xbot: Character = got.character
    walk = next(m for m in got.motions if m.name == "walk")
    assert walk.skeleton is xbot.skeleton
    out = export_character_motion(xbot, walk, tmp_path / "xbot_walk.fbx")
    back = import_file(out)
    assert set(back.skeleton.names) == set(export_bone_names(xbot.skeleton))
    own = [n.rsplit(":", 1)[-1] for n in back.skeleton.names]
    order = [own.index(n.rsplit(":", 1)[-1]) for n in xbot.skeleton.names]
    assert np.abs(back.motions[0].positions()[:, order] - walk.positions()).max() < 1e-3
    assert back.character.height == pytest.approx(xbot.height, abs=1e-3)
    assert len(back.character.rest_vertices) == len(xbot.rest_vertices)


def test_name_mapping_handles_prefixes_and_quaternius_names():
    offsets = tpose_offsets()
    for prefix in ("", "mixamorig:", "mixamorig7:", "mixamorig1_"):
        sk = canonical_skeleton(offsets)
        sk = Skeleton(tuple(prefix + n for n in sk.names), sk.parents, sk.offsets)
        assert map_to_canonical(sk).indices == tuple(range(22)), prefix
    robot = ["Hips", "Abdomen", "Torso", "Neck", "Head", "Shoulder.L", "UpperArm.L", "LowerArm.L", "Palm2.L",
             "Shoulder.R", "UpperArm.R", "LowerArm.R", "Palm2.R", "UpperLeg.L", "LowerLeg.L", "Foot.L", "Foot.L_end",
             "UpperLeg.R", "LowerLeg.R", "Foot.R", "Foot.R_end"]
    parents = [-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]
    mapping = map_to_canonical(Skeleton(robot, parents, np.ones((21, 3))))
    assert mapping.profile == "quaternius" and mapping.indices[2] == -1  # Spine1 synthesised between
    # An IK rig's feet outside the leg chain: found by name, refused with the hierarchy checked.
    ik = list(parents)
    ik[15] = 0
    with pytest.raises(SkeletonMappingError, match="not below"):
        map_to_canonical(Skeleton(robot, ik, np.ones((21, 3))))
    assert map_to_canonical(Skeleton(robot, ik, np.ones((21, 3))), check_hierarchy=False).indices[16] == 15


# ----------------------------------------------------------------------------------------------------------
# The user library and the CLI
# ----------------------------------------------------------------------------------------------------------

@needs_blender
def test_user_library_through_the_cli(tmp_path, monkeypatch, capsys):
    robot = _shared("RobotExpressive.glb").character  # the real import is tested above: spare a Blender start
    monkeypatch.setattr(character_import, "import_character", lambda path, name=None: Character(
        name, robot.skeleton, robot.rest_vertices, robot.faces, robot.skin_indices, robot.skin_weights,
        robot.parts, robot.colors))
    monkeypatch.setenv("SMT_HOME", str(tmp_path / "home"))
    assert app.main(["characters", "--import", "RobotExpressive.glb", "--name", "Robo"]) == 0
    assert user_character_names() == ["Robo"]
    robo = load_character("robo")
    assert robo.name == "Robo" and robo.skeleton.num_joints == _shared("RobotExpressive.glb").skeleton.num_joints
    assert app.main(["characters"]) == 0
    assert "Robo" in capsys.readouterr().out
    with pytest.raises(InputError, match="built-in"):
        save_user_character(robo, "ava")
    with pytest.raises(InputError, match="character name"):
        save_user_character(robo, "../evil")
    with pytest.raises(InputError, match="unknown character 'Nobody'.*yours: Robo"):
        load_character("Nobody")


@needs_blender
def test_cli_export_retargets_and_writes(tmp_path, capsys):
    """`app.py export` reads a BVH on another rig, retargets it onto the character and writes the FBX."""
    from core.io.bvh import write_bvh

    source = random_motion(canonical_skeleton(tpose_offsets(1.6)), frames=10, fps=30)
    write_bvh(source, tmp_path / "clip.bvh")
    out = tmp_path / "out" / "result.fbx"
    assert app.main(["export", str(tmp_path / "clip.bvh"), "--character", "Kit", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"Kaydara FBX Binary")
    assert "10 frames at 30 fps onto Kit" in capsys.readouterr().out
    assert read_motion_file(tmp_path / "clip.bvh").num_frames == 10


def test_read_motion_file_without_animations(monkeypatch, tmp_path):
    monkeypatch.setattr(character_import, "import_motions", lambda *a, **k: [])
    (tmp_path / "still.fbx").write_bytes(b"")
    with pytest.raises(CharacterImportError, match="no animation"):
        read_motion_file(tmp_path / "still.fbx")


# ----------------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------------

def _glb(doc: dict, blob: bytes) -> bytes:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    blob += b"\0" * (-len(blob) % 4)
    total = 12 + 8 + len(js) + 8 + len(blob)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(js), b"JSON") + js
            + struct.pack("<I4s", len(blob), b"BIN\0") + blob)


def _triangle_glb() -> bytes:
    """A valid GLB holding one triangle and no skeleton."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32).tobytes()
    ind = np.array([0, 1, 2], dtype=np.uint16).tobytes()
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"mesh": 0, "name": "Tri"}], "meshes": [{"primitives": [{"attributes": {"POSITION": 0},
                                                                             "indices": 1}]}],
           "buffers": [{"byteLength": len(pos) + len(ind)}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(pos)},
                           {"buffer": 0, "byteOffset": len(pos), "byteLength": len(ind)}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                          "min": [0, 0, 0], "max": [1, 1, 0]},
                         {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"}]}
    return _glb(doc, pos + ind)


def test_files_refused_before_blender_starts(tmp_path):
    cases = {"empty.fbx": (b"", "empty"), "ascii.fbx": (b"; FBX 7.3.0 project file\n", "ASCII FBX"),
             "photo.fbx": (b"\x89PNG\r\n\x1a\n....", "not an FBX"), "text.glb": (b"hello", "not a binary glTF"),
             "model.obj": (b"v 0 0 0\n", "expected a file ending in")}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=message):
            import_character(tmp_path / name)
    with pytest.raises(InputError, match="no such file: missing.glb"):
        import_character(tmp_path / "missing.glb")


@needs_blender
def test_corrupt_files_give_a_specific_error(tmp_path):
    garbage = tmp_path / "garbage.fbx"
    garbage.write_bytes(b"Kaydara FBX Binary  \x00\x1a\x00" + struct.pack("<I", 7400) + bytes(range(256)) * 40)
    with pytest.raises(BlenderWorkerError, match="not a readable FBX file"):
        import_character(garbage)
    for name, message in (("Samba_Dancing.fbx", "corrupt or truncated"),  # Blender finds out
                          ("RobotExpressive.glb", "header or first chunk is inconsistent \\(truncated file")):  # we do
        whole = SHARED_DATA / "characters" / name
        if whole.exists():  # the first half of a real file
            half = tmp_path / ("half" + whole.suffix)
            half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
            with pytest.raises(InputError, match=message):
                import_character(half)


@needs_blender
def test_no_armature(tmp_path):
    (tmp_path / "triangle.glb").write_bytes(_triangle_glb())
    with pytest.raises(BlenderWorkerError, match="no armature"):
        import_character(tmp_path / "triangle.glb")


def _box_character(skeleton: Skeleton, size: float) -> Character:
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (0, 2) for z in (-1, 1)], dtype=np.float64) * size / 2
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                      [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    idx = np.zeros((8, 4), dtype=np.int64)
    w = np.tile([1.0, 0, 0, 0], (8, 1))
    return Character("box", skeleton, corners, faces, idx, w, np.zeros(8, dtype=np.int64))


@needs_blender
def test_non_humanoid_rig(tmp_path):
    tail = Skeleton(("Root", "Tail1", "Tail2"), (-1, 0, 1), [[0, 0.5, 0], [0, 0, -0.3], [0, 0, -0.3]])
    motion = random_motion(tail, frames=3)
    path = export_character_motion(_box_character(tail, 1.0), motion, tmp_path / "tail.fbx")
    with pytest.raises(SkeletonMappingError, match="cannot map this rig onto the 22 canonical joints"):
        import_character(path)


@needs_blender
def test_absurd_size(tmp_path):
    ava = load_character("Ava")
    giant = Character("giant", ava.skeleton.scaled(30.0), ava.rest_vertices * 30.0, ava.faces, ava.skin_indices,
                      ava.skin_weights, ava.parts)
    path = export_character_motion(giant, Motion.rest(giant.skeleton, 2), tmp_path / "giant.glb")
    with pytest.raises(CharacterImportError, match="51 m tall"):
        import_character(path)


def test_a_hanging_worker_is_stopped(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(120)\n")
    t = time.perf_counter()
    with pytest.raises(BlenderTimeoutError, match="did not finish within 1.5 s"):
        run_blender_worker({"op": "noop"}, what="reading slow.fbx", timeout=1.5, script=script)
    assert time.perf_counter() - t < 10


def test_a_worker_is_stopped_by_its_callers_check(tmp_path):
    """A cancelled job's check stops its worker, also one that was still starting (a kill of the running workers,
    sent a moment too early, missed it), and one whose job was cancelled before it started is never started."""
    import os

    script = tmp_path / "hang.py"
    script.write_text("import os, time\nopen(os.environ['HOME'] + '/../../pid', 'w').write(str(os.getpid()))\n"
                      "time.sleep(120)\n")
    stop_at = time.perf_counter() + 3.0  # the stand-in has written its pid by then

    class Stopped(Exception):
        pass

    def check() -> None:
        if time.perf_counter() > stop_at:
            raise Stopped

    with pytest.raises(Stopped):
        run_blender_worker({"op": "noop"}, what="writing result.fbx", script=script, check=check,
                           workdir=tmp_path)
    assert time.perf_counter() - stop_at < 1.0
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    (tmp_path / "pid").unlink()
    with pytest.raises(Stopped):
        run_blender_worker({"op": "noop"}, what="writing result.fbx", script=script, check=check,
                           workdir=tmp_path)
    assert not (tmp_path / "pid").exists()  # never started


def test_the_memory_limit_holds(tmp_path):
    script = tmp_path / "greedy.py"
    script.write_text("blob = bytearray(3 << 30)\n")
    with pytest.raises(BlenderWorkerError, match="memory limit"):
        run_blender_worker({"op": "noop"}, what="reading big.fbx", memory_mb=1024, script=script)


@needs_blender
def test_blender_without_enough_memory_says_so(tmp_path):
    (tmp_path / "triangle.glb").write_bytes(_triangle_glb())
    with pytest.raises(BlenderWorkerError, match="400 MB"):
        import_character(tmp_path / "triangle.glb", memory_mb=400)
