"""FBX for Unity, Unreal or Blender: each target's file opened as its user would open it (Blender's importer with
its default options, in a subprocess: blender_probe.py; assimp), checked against what the target promises
(core.io.export's docstring), for a built-in character and for uploaded ones."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from core.character_library import load_character
from core.errors import InputError
from core.io.blender import blender_available
from core.io.character_import import import_character, import_file
from core.io.export import EXPORT_TARGETS, export_character_motion, export_character_motion_files, ground_travel
from core.motion import Motion
from core.retarget.copy import copy_retarget
from core.skeleton import canonical_skeleton, map_to_canonical

from ...conftest import SHARED_DATA, SHARED_DATA_MISSING
from ...synthetic import random_motion, tpose_offsets

pytestmark = pytest.mark.skipif(not blender_available(), reason="bpy (Blender as a Python module) not installed")

PROBE = Path(__file__).with_name("blender_probe.py")
MM = 1e-3


def _walking(skeleton, frames: int = 20, seed: int = 1) -> Motion:
    """A random pose sequence whose root walks 1 m along x and 2 m along z (travel for a root bone to carry)."""
    m = random_motion(skeleton, frames=frames, seed=seed, scale=0.3)
    root = m.root_positions.copy()
    root[:, 0] += np.linspace(0.0, 1.0, frames)
    root[:, 2] += np.linspace(0.0, 2.0, frames)
    return Motion(skeleton, m.rotations, root, m.fps)


def _probe(path: Path, frames=(1, 8, 16)) -> dict:
    out = path.with_suffix(".probe.json")
    subprocess.run([sys.executable, str(PROBE), str(path), str(out), *map(str, frames)], check=True,
                   capture_output=True, timeout=300)
    return json.loads(out.read_text())


def _header(path: Path, name: bytes, kind: bytes):
    """A property of the FBX file's GlobalSettings, read from its bytes (binary FBX 7.x)."""
    types = {b"D": (rb"doubleS\x06\x00\x00\x00Number", "<d"), b"I": (rb"intS\x07\x00\x00\x00Integer", "<i")}
    pattern, fmt = types[kind]
    m = re.search(re.escape(name) + rb"S.{4}" + pattern + rb"S\x00\x00\x00\x00" + kind + rb"(.{%d})" %
                  struct.calcsize(fmt), path.read_bytes(), re.S)
    assert m is not None, name
    return struct.unpack(fmt, m.group(1))[0]


def _assimp_root_matrices(path: Path, tmp_path: Path) -> dict[str, np.ndarray]:
    """The transforms of the file's top nodes (children of assimp's RootNode), as assimp reads them."""
    dump = tmp_path / f"{path.stem}.xml"
    subprocess.run(["assimp", "dump", str(path), str(dump), "-s"], capture_output=True, timeout=120, check=True)
    xml = dump.read_text()
    root = xml.index('<Node name="RootNode">')
    out = {}
    depth = 0
    for token in re.finditer(r'<Node name="([^"]+)">\s*<Matrix4>([^<]+)</Matrix4>|</Node>', xml[root:]):
        if token.group(0) == "</Node>":
            depth -= 1
            continue
        depth += 1
        if depth == 2:  # children of RootNode
            out[token.group(1)] = np.array(token.group(2).split(), dtype=float).reshape(4, 4)
    return out


def _check_target(target: str, probe: dict, height: float, tops: list[str], hips: str) -> None:
    """What a target promises in Blender, whatever the character (``height``: its rest height, metres)."""
    lo, hi = (np.array(v) for v in probe["mesh_bounds"])
    extent = hi - lo
    # Standing up along Blender's Z at its own height, for every target (Blender reads the file's axes and unit).
    assert extent[2] == pytest.approx(height, rel=0.01) and extent[2] > extent[1]
    if target == "blender":  # no 0.01 scale, no 90° rotation on the armature object
        assert np.allclose(probe["scale"], 1.0, atol=1e-6) and np.allclose(np.abs(probe["rotation"][0]), 1.0)
        assert np.allclose(probe["location"], 0.0, atol=1e-6)
    else:  # Mixamo's layout: Blender's importer applies centimetres and Y up on the armature object
        assert np.allclose(probe["scale"], 0.01, atol=1e-8)
    top = [n for n, b in probe["bones"].items() if b["parent"] is None]
    if target == "unreal":
        assert top == ["root"] and probe["armature"] == "Armature"
        assert probe["bones"][hips]["parent"] == "root"
        assert np.abs(probe["bones"]["root"]["head"]).max() < 1e-4  # at the origin
        rest_hips = np.array(probe["bones"][hips]["head"])
        for frame, heads in probe["frames"].items():
            root, pelvis = np.array(heads["root"]), np.array(heads[hips])
            assert abs(root[2]) < 1e-4, frame  # on the ground plane
            # The root carries the hips' travel on the ground; the hips' own path above it is what is left.
            assert np.abs(root[:2] - (pelvis[:2] - rest_hips[:2])).max() < 1 * MM, frame
        moved = [np.array(h["root"]) for h in probe["frames"].values()]
        assert np.linalg.norm(moved[-1] - moved[0]) > 0.5 * height  # it does travel (~1.3 heights here)
    else:
        assert top == tops


@pytest.fixture(scope="module")
def ava_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("targets")
    character = load_character("Ava")
    motion = _walking(character.skeleton)
    paths = {t: export_character_motion(character, motion, out / f"ava_{t}.fbx", target=t) for t in EXPORT_TARGETS}
    return character, motion, paths


@pytest.mark.parametrize("target", EXPORT_TARGETS)
def test_built_in_character_fbx_targets(ava_files, target, tmp_path):
    character, motion, paths = ava_files
    path = paths[target]
    _check_target(target, _probe(path), character.height, ["mixamorig:Hips"], "mixamorig:Hips")
    # The animation is the same whatever the layout: every joint where the motion puts it.
    back = import_file(path).motions[0]
    own = [n.rsplit(":", 1)[-1] for n in back.skeleton.names]
    order = [own.index(n) for n in character.skeleton.names]
    assert np.abs(back.positions()[:, order] - motion.positions()).max() < 1 * MM
    up, unit = _header(path, b"UpAxis", b"I"), _header(path, b"UnitScaleFactor", b"D")
    assert (up, unit) == ((2, 100.0) if target == "blender" else (1, 1.0))
    if shutil.which("assimp"):
        tops = _assimp_root_matrices(path, tmp_path)
        assert "Armature" in tops
        for node, matrix in tops.items():  # nothing rotated or scaled at the root, Blender's layout included
            assert np.allclose(matrix, np.eye(4), atol=1e-5), node


def test_unreal_root_bone_carries_the_ground_travel_only():
    character = load_character("Ava")
    motion = _walking(character.skeleton)
    travel = ground_travel(motion)
    assert np.allclose(travel[:, 1], 0.0)
    assert np.allclose(travel[:, [0, 2]], motion.root_positions[:, [0, 2]] - character.skeleton.offsets[0][[0, 2]])


def test_unknown_target_is_refused(ava_files, tmp_path):
    character, motion, _ = ava_files
    with pytest.raises(InputError, match="unknown FBX target 'maya'"):
        export_character_motion(character, motion, tmp_path / "x.fbx", target="maya")
    from jobs.spec import JobSpec

    with pytest.raises(InputError, match="unknown FBX target"):
        JobSpec(source=tmp_path / "a.bvh", out_dir=tmp_path, character="Ava", fbx_target="godot")


@pytest.mark.parametrize("name", ["Xbot.glb", "Soldier.glb"])
def test_uploaded_character_fbx_targets(name, tmp_path):
    """The user's own file, laid out for each target: its bones all there under their names (plus Unreal's root),
    the mapped joints where the result puts them, and the root nodes clean (Soldier.glb's armature node carries
    a 180° turn and 0.001 scale of its own: moved into its bones and meshes)."""
    src = SHARED_DATA / "characters" / name
    if not src.exists():
        pytest.skip(SHARED_DATA_MISSING if not SHARED_DATA.is_dir() else f"{name} absent from the shared data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        character = import_character(src)
        original = import_file(src, want_mesh=False, want_animations=False).skeleton
    motion = copy_retarget(_walking(canonical_skeleton(tpose_offsets(1.7))), character.skeleton)
    paths = [tmp_path / f"own_{t}.fbx" for t in EXPORT_TARGETS]
    for target, path in zip(EXPORT_TARGETS, paths):
        export_character_motion_files(character, motion, [path], target=target)
    mapped = [k for k in map_to_canonical(character.skeleton).indices if k >= 0]
    hips = character.skeleton.names[0]
    for target, path in zip(EXPORT_TARGETS, paths):
        probe = _probe(path)
        _check_target(target, probe, character.height, [hips], hips)
        if name == "Soldier.glb":  # both its maps reach Blender's materials (the base colour was lost before)
            assert probe["materials"] and all(m["base_color"] and m["normal_map"]
                                              for m in probe["materials"].values()), probe["materials"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got_file = import_file(path, want_mesh=False)
        assert got_file.skeleton.names == original.names, target  # Unreal's root is above the hips: left out
        back = got_file.motions[0]
        got = back.positions()[:, [back.skeleton.index(character.skeleton.names[k]) for k in mapped]]
        got = got - (original.offsets[0] - character.skeleton.offsets[0])
        assert np.abs(got - motion.positions()[:, mapped]).max() < 1 * MM, target
        if shutil.which("assimp") and target != "blender":
            for node, matrix in _assimp_root_matrices(path, tmp_path).items():
                assert np.allclose(matrix, np.eye(4), atol=1e-5), (target, node)


def test_the_cli_passes_the_target_to_the_file(tmp_path):
    """``app.py export --fbx-for unreal`` (a subprocess, as a user runs it): the FBX has the root bone; the page
    offers the same three targets."""
    from core.io.bvh import write_bvh
    from webapp.ui import FBX_TARGET_CHOICES

    assert sorted(FBX_TARGET_CHOICES.values()) == sorted(EXPORT_TARGETS)
    clip = tmp_path / "walk.bvh"
    write_bvh(_walking(load_character("Ava").skeleton, frames=8), clip)
    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "walk.fbx"
    run = subprocess.run([sys.executable, str(root / "app.py"), "export", str(clip), "--character", "Ava", "--out",
                          str(out), "--fbx-for", "unreal", "--quiet"], cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    probe = _probe(out, frames=(1,))
    assert [n for n, b in probe["bones"].items() if b["parent"] is None] == ["root"]
    bad = subprocess.run([sys.executable, str(root / "app.py"), "export", str(clip), "--character", "Ava", "--out",
                          str(out), "--fbx-for", "maya"], cwd=root, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "invalid choice: 'maya'" in bad.stderr
