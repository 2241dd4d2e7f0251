"""The user's own character comes back whole: exports animate the uploaded file itself (its meshes, materials,
images and every bone under its own name), and the animated bones land where the result motion puts them."""
from __future__ import annotations

import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from core.character_library import load_character, save_user_character
from core.io.blender import blender_available
from core.io.character_import import import_character, import_file
from core.io.export import export_character_motion_files
from core.retarget.copy import copy_retarget
from core.skeleton import canonical_skeleton, map_to_canonical

from ...conftest import SHARED_DATA, SHARED_DATA_MISSING
from ...synthetic import random_motion, tpose_offsets

pytestmark = pytest.mark.skipif(not blender_available(), reason="bpy (Blender as a Python module) not installed")


def _shared(name: str):
    path = SHARED_DATA / "characters" / name
    if not path.exists():
        pytest.skip(SHARED_DATA_MISSING if not SHARED_DATA.is_dir() else f"{name} absent from the shared data")
    return path


def _assimp_counts(path) -> dict[str, int]:
    """Meshes, materials and embedded textures as an independent reader (assimp) sees them."""
    out = subprocess.run(["assimp", "info", str(path)], capture_output=True, text=True, timeout=120).stdout
    return {key: int(re.search(rf"^{key}:\s+(\d+)", out, re.M).group(1))
            for key in ("Meshes", "Materials", "Textures \\(embed.\\)")}


def _imported(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_file(path, want_mesh=True)


@pytest.mark.parametrize("name,fmt", [(n, f) for n in ("Xbot.glb", "Samba_Dancing.fbx", "Soldier.glb",
                                                       "RobotExpressive.glb") for f in ("fbx", "glb")])
def test_own_character_is_animated_whole(name, fmt, tmp_path):
    src = _shared(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        character = import_character(src)
    assert character.source == src.resolve()
    motion = copy_retarget(random_motion(canonical_skeleton(tpose_offsets(1.7)), frames=24, seed=2),
                           character.skeleton)
    paths = export_character_motion_files(character, motion, [tmp_path / f"own.{fmt}"])
    original = _imported(src)
    file_frame = import_file(src, want_mesh=False, want_animations=False).skeleton
    mapped = [k for k in map_to_canonical(character.skeleton).indices if k >= 0]
    for path in paths:
        back = _imported(path)
        # Every bone of the upload, under its own name, in the same hierarchy; the mesh moves with them.
        assert back.skeleton.names == original.skeleton.names
        assert back.skeleton.parents == original.skeleton.parents
        assert len(back.meshes) == len(original.meshes)
        assert [m.name for m in back.motions] == ["mixamo.com"] and back.motions[0].num_frames == 24
        # The canonical joints land where the result puts them, in the file's own frame: a character stands on
        # y = 0 here, a file keeps its origin where its author put it (animations are read in that frame).
        got = back.motions[0].positions()[:, mapped] - (file_frame.offsets[0] - character.skeleton.offsets[0])
        assert np.abs(got - motion.positions()[:, mapped]).max() < 1e-3, path.name
        if shutil.which("assimp"):
            # Embedded images too, exactly: Soldier's base-colour and normal maps both reach its FBX.
            got, want = _assimp_counts(path), _assimp_counts(src)
            # assimp counts glTF primitives as meshes: Blender joins a mesh's primitives that share a material
            # (RobotExpressive: 21 -> 19), the mesh objects themselves are all there (checked above).
            if src.suffix == ".glb":
                got.pop("Meshes"), want.pop("Meshes")
            assert got == want, path.name


def test_own_character_skeleton_only_and_the_library_keeps_the_file(tmp_path, monkeypatch):
    src = _shared("Xbot.glb")
    monkeypatch.setenv("SMT_HOME", str(tmp_path / "home"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = save_user_character(import_character(src), "bot")
        character = load_character("bot")
    assert saved.with_suffix(".glb").is_file() and character.source == saved.with_suffix(".glb")
    motion = copy_retarget(random_motion(canonical_skeleton(tpose_offsets(1.7)), frames=6, seed=1),
                           character.skeleton)
    (path,) = export_character_motion_files(character, motion, [tmp_path / "bones.fbx"], skeleton_only=True)
    back = import_file(path, want_mesh=False)
    assert back.meshes == [] and len(back.skeleton.names) == len(character.skeleton.names)


def test_an_fbx_made_from_an_r2et_shape_is_animated_in_place_of_its_bones(tmp_path):
    """Nothing Mixamo-specific: a character written by our own exporter from an R2ET test shape, then uploaded."""
    from bench.bench_optimize import load_r2et_character
    from core.io.export import export_character_motion
    from core.motion import Motion

    shape = SHARED_DATA / "characters" / "r2et_shapes" / "Sporty_Granny.npz"
    if not shape.exists():
        pytest.skip(SHARED_DATA_MISSING if not SHARED_DATA.is_dir() else "Sporty_Granny.npz absent")
    made = load_r2et_character(shape)
    upload = tmp_path / "granny.fbx"
    export_character_motion(made, Motion.rest(made.skeleton, 2), upload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        character = import_character(upload)
    motion = copy_retarget(random_motion(canonical_skeleton(tpose_offsets(1.7)), frames=12, seed=4),
                           character.skeleton)
    (path,) = export_character_motion_files(character, motion, [tmp_path / "animated.fbx"])
    back = _imported(path)
    file_frame = import_file(upload, want_mesh=False, want_animations=False).skeleton
    assert back.skeleton.names == character.skeleton.names
    got = back.motions[0].positions() - (file_frame.offsets[0] - character.skeleton.offsets[0])
    assert np.abs(got - motion.positions()).max() < 1e-3


def test_an_fbx_does_not_record_the_server_folder_it_was_written_to(tmp_path):
    # Blender's FBX exporter records where it wrote the embedded textures: staged beside the output, that was
    # the job's folder (in the page's history: the browser's hash and the job id), inside every shared download.
    src = _shared("Soldier.glb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        character = import_character(src)
    motion = copy_retarget(random_motion(canonical_skeleton(tpose_offsets(1.7)), frames=4, seed=1),
                           character.skeleton)
    folder = tmp_path / "job-6f1c2e9ab4d3"
    folder.mkdir()
    (path,) = export_character_motion_files(character, motion, [folder / "result.fbx"])
    data = path.read_bytes()
    assert b"Image" in data or b"Texture" in data  # it does embed textures
    assert folder.name.encode() not in data and str(tmp_path).encode() not in data
    assert sorted(p.name for p in folder.iterdir()) == ["result.fbx"]  # and leaves nothing beside it
