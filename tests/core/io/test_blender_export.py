"""FBX/GLB export through Blender's worker: round trips through Blender's importers, an independent reader
(assimp), the file's own header, shared reference files, and bad input.

Every test here starts Blender in a subprocess (~1-2 s each); files are made once per module.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess

import numpy as np
import pytest

from core.character_library import load_character
from core.errors import InputError
from core.io.blender import blender_available
from core.io.bvh import read_bvh
from core.io.character_import import CharacterImportError, import_file, import_motions
from core.io.export import TAKE_NAME, bone_frames, export_bone_names, export_character_motion, \
    export_character_motion_files
from core.motion import Motion
from core.skeleton import FINGER_JOINTS, Skeleton, canonical_skeleton

from ...synthetic import random_motion, reoriented_rig, tpose_offsets

pytestmark = pytest.mark.skipif(not blender_available(), reason="bpy (Blender as a Python module) not installed")

MM = 1e-3


def _positions_by_name(motion: Motion, names: tuple[str, ...]) -> np.ndarray:
    """``(T, J, 3)`` joint positions of ``motion`` in the order of ``names`` (matched without namespaces)."""
    own = [n.rsplit(":", 1)[-1] for n in motion.skeleton.names]
    return motion.positions()[:, [own.index(n.rsplit(":", 1)[-1]) for n in names]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Ava with a 40-frame random motion at 24 fps, written as FBX, GLB and BVH by one call."""
    out = tmp_path_factory.mktemp("export")
    character = load_character("Ava")
    motion = random_motion(character.skeleton, frames=40, fps=24.0, scale=0.6, seed=3)
    paths = export_character_motion_files(character, motion, [out / "ava.fbx", out / "ava.glb", out / "ava.bvh"])
    return character, motion, dict(zip(("fbx", "glb", "bvh"), paths))


@pytest.mark.parametrize("fmt", ["fbx", "glb"])
def test_export_reimport_matches_source(exported, fmt):
    character, motion, paths = exported
    got = import_file(paths[fmt])
    assert got.armature == "Armature"
    assert got.skeleton.num_joints == 52  # the 22 canonical bones and 30 finger bones; no leaf bones added
    assert all(n.startswith("mixamorig:") for n in got.skeleton.names)
    assert {f"mixamorig:{n}" for n in FINGER_JOINTS} <= set(got.skeleton.names)
    assert len(got.motions) == 1
    m = got.motions[0]
    assert m.name == TAKE_NAME and m.fps == pytest.approx(24.0) and m.num_frames == motion.num_frames
    # Every joint's world position at every frame, against the source motion.
    err = np.linalg.norm(_positions_by_name(m, character.skeleton.names) - motion.positions(), axis=-1)
    assert err.max() < 1 * MM
    # Mesh, skin, colours, size: the same character comes back (standing on the floor, 1.7 m).
    c = got.character
    assert c.height == pytest.approx(character.height, abs=1 * MM)
    assert np.abs(c.rest_vertices - character.rest_vertices).max() < 1 * MM
    assert np.array_equal(c.faces, character.faces)
    order = [[n.rsplit(":", 1)[-1] for n in c.skeleton.names].index(n) for n in character.skeleton.names]
    assert np.abs(c.dense_weights().numpy()[:, order] - character.dense_weights().numpy()).max() < 1e-5
    assert np.abs(c.colors - character.colors).max() < 2.5 / 255
    # Labels come from the weights: nearly every vertex gets its built-in label (shoulders are the exception).
    assert (c.parts == character.parts).mean() > 0.97


def test_bvh_export_is_the_bvh_writer(exported):
    _, motion, paths = exported
    back = read_bvh(paths["bvh"], units="m")
    assert set(back.skeleton.names) == set(motion.skeleton.names)  # fingers included (written depth first)
    assert np.abs(_positions_by_name(back, motion.skeleton.names) - motion.positions()).max() < 1e-6


def test_fbx_header_is_mixamo_layout(exported):
    """Y up, Z front, centimetres (UnitScaleFactor 1) and the clip's frame rate, read from the file's bytes."""
    data = exported[2]["fbx"].read_bytes()

    def prop(name: bytes, kind: bytes, fmt: str):
        types = {b"D": rb"doubleS\x06\x00\x00\x00Number", b"I": rb"intS\x07\x00\x00\x00Integer"}[kind]
        m = re.search(re.escape(name) + rb"S.{4}" + types + rb"S\x00\x00\x00\x00" + kind + rb"(.{%d})" %
                      struct.calcsize(fmt), data, re.S)
        assert m is not None, name
        return struct.unpack(fmt, m.group(1))[0]

    assert prop(b"UpAxis", b"I", "<i") == 1 and prop(b"UpAxisSign", b"I", "<i") == 1
    assert prop(b"FrontAxis", b"I", "<i") == 2 and prop(b"FrontAxisSign", b"I", "<i") == 1
    assert prop(b"UnitScaleFactor", b"D", "<d") == 1.0
    assert prop(b"CustomFrameRate", b"D", "<d") == pytest.approx(24.0)


@pytest.mark.skipif(shutil.which("assimp") is None,
                    reason="assimp not installed (apt-get install assimp-utils): independent FBX reader check skipped")
def test_assimp_reads_our_fbx(exported, tmp_path):
    """An independent reader (the Open Asset Import Library) sees the bones, the mesh, the take and its length,
    a character standing up along +Y, 170 units (cm) tall, with identity root nodes."""
    character, motion, paths = exported
    info = subprocess.run(["assimp", "info", str(paths["fbx"])], capture_output=True, text=True, timeout=120).stdout
    count = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+)\s*$", info, flags=re.M)}
    assert count["Meshes"] == 1 and count["Animations"] == 1
    assert count["Vertices"] == len(character.rest_vertices)
    assert count["Faces"] == len(character.faces)
    assert count["Bones"] == 52  # every bone of the built-in carries skin weights, fingers included
    lo = [float(v) for v in re.search(r"Minimum point\s+\(([^)]*)\)", info).group(1).split()]
    hi = [float(v) for v in re.search(r"Maximum point\s+\(([^)]*)\)", info).group(1).split()]
    assert lo[1] == pytest.approx(0.0, abs=0.1) and hi[1] == pytest.approx(100 * character.height, abs=0.1)
    assert "'mixamo.com'" in info

    dump = tmp_path / "dump.xml"
    subprocess.run(["assimp", "dump", str(paths["fbx"]), str(dump), "-s"], capture_output=True, timeout=120,
                   check=True)
    xml = dump.read_text()
    anim = re.search(r'<Animation name="([^"]+)" duration="([^"]+)" tick_cnt="([^"]+)"', xml)
    assert anim.group(1) == TAKE_NAME
    assert float(anim.group(2)) == pytest.approx(motion.num_frames - 1)  # ticks = frames at the clip's rate
    assert float(anim.group(3)) == pytest.approx(24.0)
    nodes = re.findall(r'<Node name="([^"]+)">\s*<Matrix4>([^<]+)</Matrix4>', xml)
    names = [n for n, _ in nodes]
    assert sum(n.startswith("mixamorig:") for n in names) == 52
    for name, matrix in nodes:
        if name in ("RootNode", "Armature", "Body"):  # nothing rotated or scaled at the root
            assert np.allclose(np.array(matrix.split(), dtype=float).reshape(4, 4), np.eye(4), atol=1e-5), name


def test_rest_orientations_and_ntsc_rate_survive_a_round_trip(tmp_path):
    """A joint-orient rig (random rest rotations) at 29.97 fps: the files' bones carry the orientations, and
    skeleton-only FBX and GLB read back have the same world rest frames, frame rate and joint paths."""
    base = canonical_skeleton(tpose_offsets())
    rig, _ = reoriented_rig(base, seed=5)
    motion = random_motion(rig, frames=12, fps=29.97, seed=2)
    frames, _ = bone_frames(rig)
    assert np.allclose(frames, rig.rest_pose().rotations.numpy())  # carried, not re-aimed
    paths = export_character_motion_files(None, motion, [tmp_path / "rig.fbx", tmp_path / "rig.glb"])
    for path in paths:
        back = import_file(path, want_mesh=False).motions[0]
        assert back.fps == pytest.approx(29.97, abs=1e-3) and back.num_frames == 12
        order = [[n.rsplit(":", 1)[-1] for n in back.skeleton.names].index(n) for n in rig.names]
        rest_back = back.skeleton.rest_pose().rotations.numpy()[order]
        assert np.abs(rest_back - rig.rest_pose().rotations.numpy()).max() < 1e-5
        assert np.abs(_positions_by_name(back, rig.names) - motion.positions()).max() < 1 * MM


def test_identity_rests_get_bones_along_the_limbs():
    sk = load_character("Ava").skeleton
    frames, lengths = bone_frames(sk)
    rest = sk.rest_positions()
    arm, forearm = sk.index("LeftArm"), sk.index("LeftForeArm")
    along = (rest[forearm] - rest[arm]) / np.linalg.norm(rest[forearm] - rest[arm])
    assert frames[arm][:, 1] @ along == pytest.approx(1.0)
    assert np.allclose(frames.transpose(0, 2, 1) @ frames, np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(frames), 1.0)
    assert (lengths >= 0.01).all()


def test_bone_names_follow_mixamo():
    offsets = tpose_offsets()
    for prefix in ("", "mixamorig:", "mixamorig7:", "mixamorig1_"):
        sk = canonical_skeleton(offsets)
        sk = Skeleton(tuple(prefix + n for n in sk.names), sk.parents, sk.offsets)
        assert export_bone_names(sk)[:2] == ("mixamorig:Hips", "mixamorig:Spine")


def test_skeleton_only_fbx(exported, tmp_path):
    character, motion, _ = exported
    path = export_character_motion(character, motion, tmp_path / "bones.fbx", skeleton_only=True)
    with pytest.raises(CharacterImportError, match="no mesh"):
        import_file(path, want_animations=False)
    (back,) = import_motions(path)
    assert np.abs(_positions_by_name(back, character.skeleton.names) - motion.positions()).max() < 1 * MM


def test_bad_exports_say_why(exported, tmp_path):
    character, motion, _ = exported
    with pytest.raises(InputError, match="no frames"):
        export_character_motion(character, motion.slice(0, 0), tmp_path / "x.fbx")
    other = random_motion(canonical_skeleton(tpose_offsets()), frames=3)
    other = Motion(Skeleton(tuple("X" + n for n in other.skeleton.names), other.skeleton.parents,
                            other.skeleton.offsets), other.rotations, other.root_positions, other.fps)
    with pytest.raises(InputError, match="another skeleton"):
        export_character_motion(character, other, tmp_path / "x.fbx")
    with pytest.raises(InputError, match="must end in"):
        export_character_motion(character, motion, tmp_path / "x.obj")
    bad = Motion(motion.skeleton, motion.rotations, motion.root_positions * np.nan, motion.fps)
    with pytest.raises(InputError, match="non-finite"):
        export_character_motion(character, bad, tmp_path / "x.glb")
    far = Motion(motion.skeleton, motion.rotations, motion.root_positions + 1e6, motion.fps)
    with pytest.raises(InputError, match="wrong units"):
        export_character_motion(character, far, tmp_path / "x.glb")
    with pytest.raises(InputError, match="does not exist"):
        export_character_motion(character, motion, tmp_path / "missing" / "x.fbx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_sporty_granny_fbx_matches_its_bvh_twin(shared_data):
    """Mixamo's FBX (88 bones, no prefix, cm, 60 fps) read as a Motion matches the same clip as BVH."""
    folder = shared_data / "characters"
    fbx = folder / "Sporty_Granny_Hip_Hop_Dancing.fbx"
    if not fbx.exists():
        pytest.skip("Sporty_Granny_Hip_Hop_Dancing.fbx absent from the shared data")
    (motion,) = import_motions(fbx)
    twin = read_bvh(folder / "Sporty_Granny_Hip_Hop_Dancing.bvh")
    assert motion.fps == twin.fps == 60 and motion.num_frames == twin.num_frames
    common = [n for n in motion.skeleton.names if n in twin.skeleton.names]
    assert len(common) == motion.skeleton.num_joints == 88
    a = motion.positions()[:, [motion.skeleton.index(n) for n in common]]
    b = twin.positions()[:, [twin.skeleton.index(n) for n in common]]
    assert np.linalg.norm(a - b, axis=-1).max() < 1 * MM
