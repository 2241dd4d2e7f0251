"""Hostile files: every test builds its attack itself and shows it refused with one clear line, with no byte of
the canary (a file the attack points at) in any message or output, no temporary folder left, and the next job
working.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.character_library import load_character
from core.errors import InputError
from core.io import uploads
from core.io.blender import BlenderTimeoutError, blender_available, run_blender_worker
from core.io.bvh import BVHError, read_bvh, write_bvh
from core.io.character_import import import_character, read_motion_file
from core.io.export import export_character_motion
from core.io.uploads import UnsafeInputError, check_glb_self_contained, check_input_file
from core.motion import Motion

from ...synthetic import random_motion

needs_blender = pytest.mark.skipif(not blender_available(), reason="bpy (Blender as a Python module) not installed")
CANARY = b"CANARY-7f3a9c SECRET=hunter2 root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def canary(tmp_path) -> Path:
    path = tmp_path / "secret" / "canary.bin"
    path.parent.mkdir()
    path.write_bytes(CANARY * 64)
    return path


def _one_line_without_canary(message: str) -> None:
    assert "\n" not in message
    for word in (b"CANARY", b"hunter2", b"root:x"):
        assert word.decode() not in message


# ------------------------------------------------------------------------------------------------- GLB

def _read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    json_len = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + json_len])
    rest = data[20 + json_len:]
    binary = rest[8:8 + struct.unpack_from("<I", rest, 0)[0]] if rest else b""
    return doc, binary


def _write_glb(path: Path, doc: dict, binary: bytes) -> Path:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(js), 0x4E4F534A) + js
    if binary:
        chunks += struct.pack("<II", len(binary), 0x004E4942) + binary
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks)
    return path


@pytest.fixture(scope="module")
def kit_glb(tmp_path_factory) -> Path:
    """Kit as a GLB written by our own exporter: a clean, self-contained file to turn hostile."""
    if not blender_available():
        pytest.skip("bpy (Blender as a Python module) not installed")
    c = load_character("Kit")
    path = tmp_path_factory.mktemp("glb") / "kit.glb"
    export_character_motion(c, Motion.rest(c.skeleton, 2), path)
    return path


def _with_outside_colours(kit_glb: Path, out: Path, uri: str) -> Path:
    """Kit whose first mesh takes its vertex colours from a second buffer at ``uri`` (outside the file)."""
    doc, binary = _read_glb(kit_glb)
    prim = doc["meshes"][0]["primitives"][0]
    count = doc["accessors"][prim["attributes"]["POSITION"]]["count"]
    doc["buffers"].append({"uri": uri, "byteLength": count * 4})
    doc["bufferViews"].append({"buffer": len(doc["buffers"]) - 1, "byteLength": count * 4})
    doc["accessors"].append({"bufferView": len(doc["bufferViews"]) - 1, "componentType": 5121, "normalized": True,
                             "count": count, "type": "VEC4"})
    prim["attributes"]["COLOR_0"] = len(doc["accessors"]) - 1
    return _write_glb(out, doc, binary)


@needs_blender
@pytest.mark.parametrize("how", ["relative", "absolute", "file-uri"])
def test_glb_whose_buffer_points_outside_is_refused_before_blender(kit_glb, canary, tmp_path, how):
    upload = tmp_path / "upload"
    upload.mkdir()
    uri = {"relative": "../secret/canary.bin", "absolute": str(canary), "file-uri": "file://" + str(canary)}[how]
    hostile = _with_outside_colours(kit_glb, upload / "hero.glb", uri)
    before = set(os.listdir(tmp_path))
    with pytest.raises(UnsafeInputError, match=r"hero.glb: buffer 1's URI refers to a file outside the GLB") as e:
        import_character(hostile)
    _one_line_without_canary(str(e.value))
    assert set(os.listdir(tmp_path)) == before
    assert import_character(kit_glb).name == "kit"  # the next job works


@needs_blender
def test_glb_whose_image_points_outside_is_refused(kit_glb, canary, tmp_path):
    doc, binary = _read_glb(kit_glb)
    doc["images"] = [{"uri": str(canary.parent / "face.png")}]
    doc["textures"] = [{"source": 0}]
    hostile = _write_glb(tmp_path / "face.glb", doc, binary)
    with pytest.raises(UnsafeInputError, match=r"image 0's URI refers to a file outside the GLB"):
        import_character(hostile)
    # Also as a motion source, and wherever an extension hides a URI.
    doc.pop("images")
    doc.pop("textures")
    doc["extensions"] = {"EXT_whatever": {"deep": [{"uri": "/proc/self/environ"}]}}
    hostile = _write_glb(tmp_path / "ext.glb", doc, binary)
    with pytest.raises(UnsafeInputError, match=r"a URI in the JSON refers to a file outside"):
        read_motion_file(hostile)


def test_glb_data_uris_are_bounded_and_json_checked(tmp_path, monkeypatch):
    doc = {"asset": {"version": "2.0"}, "buffers": [{"uri": "data:application/octet-stream;base64,AAAA",
                                                      "byteLength": 3}]}
    check_glb_self_contained(_write_glb(tmp_path / "ok.glb", doc, b""))  # inside the file: fine
    monkeypatch.setattr(uploads, "MAX_DATA_URI_BYTES", 16)
    with pytest.raises(UnsafeInputError, match="buffer 0's URI is a data URI of"):
        check_glb_self_contained(tmp_path / "ok.glb")
    (tmp_path / "junk.glb").write_bytes(b"glTF" + struct.pack("<IIII", 2, 40, 20, 0x4E4F534A) + b"{not json" + b" " * 11)
    with pytest.raises(UnsafeInputError, match="not valid JSON"):
        check_glb_self_contained(tmp_path / "junk.glb")
    doc = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": 4}, {"byteLength": 4}]}
    with pytest.raises(UnsafeInputError, match="buffer 1 has no data"):
        check_glb_self_contained(_write_glb(tmp_path / "two.glb", doc, b"abcd"))


def test_glb_with_a_2000_deep_node_chain_says_so(tmp_path):
    nodes = [{"children": [i + 1]} for i in range(1999)] + [{}]
    path = _write_glb(tmp_path / "deep.glb", {"asset": {"version": "2.0"}, "nodes": nodes}, b"")
    with pytest.raises(UnsafeInputError) as e:
        import_character(path)
    assert "2000 levels deep; at most 256" in str(e.value) and "Recursion" not in str(e.value)


# ------------------------------------------------------------------------------------------------- FBX

_FBX_WITH_OUTSIDE_TEXTURE = '''
import json, sys
from pathlib import Path
import bpy
req = json.loads(Path(sys.argv[1]).read_text())
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.fbx(filepath=req["src"])
img = bpy.data.images.new("canary", 4, 4)
img.filepath_raw = req["texture"]
img.source = "FILE"
mat = bpy.data.materials.new("skin")
mat.use_nodes = True
tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
tex.image = img
mat.node_tree.links.new(tex.outputs["Color"], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
for ob in bpy.data.objects:
    if ob.type == "MESH":
        ob.data.materials.clear()
        ob.data.materials.append(mat)
bpy.ops.export_scene.fbx(filepath=req["out"], path_mode="ABSOLUTE", embed_textures=False, add_leaf_bones=False)
Path(req["result"]).write_text(json.dumps({"ok": True}))
'''


@needs_blender
def test_fbx_texture_path_outside_the_file_is_never_opened(tmp_path):
    """An FBX names its texture by an outside path; here that path is a FIFO, which blocks whoever opens it."""
    c = load_character("Kit")
    export_character_motion(c, Motion.rest(c.skeleton, 2), tmp_path / "kit.fbx")
    texture = tmp_path / "outside" / "canary.png"
    texture.parent.mkdir()
    script = tmp_path / "make_hostile.py"
    script.write_text(_FBX_WITH_OUTSIDE_TEXTURE)
    run_blender_worker({"op": "make", "src": str(tmp_path / "kit.fbx"), "texture": str(texture),
                        "out": str(tmp_path / "hostile.fbx")}, script=script)
    assert str(texture).encode() in (tmp_path / "hostile.fbx").read_bytes()
    os.mkfifo(texture)
    t = time.perf_counter()
    got = import_character(tmp_path / "hostile.fbx", timeout=60)
    assert time.perf_counter() - t < 30
    assert got.colors is None or not np.any((got.colors[:, 0] > 0.9) & (got.colors[:, 1] < 0.1))


# ------------------------------------------------------------------------------------------------- the worker

_DUMP_ENV = '''
import json, os, sys
from pathlib import Path
req = json.loads(Path(sys.argv[1]).read_text())
Path(req["result"]).write_text(json.dumps({"ok": True, "env": dict(os.environ), "cwd": os.getcwd(),
                                           "cwd_entries": os.listdir(".")}))
'''

_BPY_THEN_HANG = '''
import time
import bpy
time.sleep(120)
'''


def test_worker_gets_an_allow_listed_environment_and_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SMT_TEST_SECRET", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    script = tmp_path / "dump.py"
    script.write_text(_DUMP_ENV)
    info = run_blender_worker({"op": "dump"}, script=script).info
    env = info["env"]
    assert "hunter2" not in json.dumps(env)
    assert env["OMP_NUM_THREADS"] == "1" and "PATH" in env
    assert info["cwd_entries"] == [] and env["HOME"] == info["cwd"]
    assert Path(env["TMPDIR"]).parent == Path(info["cwd"]).parent  # both inside the job's own folder
    assert not Path(info["cwd"]).exists()  # removed with the job


@needs_blender
def test_a_killed_worker_leaves_no_folder_behind(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    script = tmp_path / "hang.py"
    script.write_text(_BPY_THEN_HANG)
    with pytest.raises(BlenderTimeoutError):
        run_blender_worker({"op": "hang"}, script=script, timeout=8)
    assert list(tmp.iterdir()) == []


# ------------------------------------------------------------------------------------------------- BVH and plain files

def test_symlinked_upload_is_refused_without_echoing_its_target(tmp_path, canary):
    link = tmp_path / "x.bvh"
    link.symlink_to(canary)
    with pytest.raises(BVHError, match=r"x.bvh: the motion file is a symbolic link") as e:
        read_bvh(link)
    _one_line_without_canary(str(e.value))
    glb = tmp_path / "hero.glb"
    glb.symlink_to(canary)
    with pytest.raises(UnsafeInputError, match="hero.glb: the character or animation file is a symbolic link"):
        import_character(glb)


def test_a_bvh_made_of_secret_bytes_is_refused_without_echoing_them(tmp_path, canary):
    path = tmp_path / "secret.bvh"
    path.write_bytes(canary.read_bytes())
    with pytest.raises(BVHError) as e:
        read_bvh(path)
    _one_line_without_canary(str(e.value))
    path.write_bytes(b"HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 " + CANARY.split(b"\n")[0] + b"\n}\n")
    with pytest.raises(BVHError) as e:
        read_bvh(path)
    _one_line_without_canary(str(e.value))


def test_pipes_and_devices_are_refused(tmp_path):
    fifo = tmp_path / "clip.bvh"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeInputError, match="not a regular file"):
        check_input_file(fifo)
    with pytest.raises(BVHError, match="not a regular file"):
        read_bvh(fifo)  # would block forever if opened
    with pytest.raises(UnsafeInputError, match="not a regular file"):
        check_input_file("/dev/zero")


_HEADER = "HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation " \
          "Yrotation\n  End Site\n  {\n    OFFSET 0 10 0\n  }\n}\nMOTION\nFrames: {frames}\nFrame Time: {ft}\n"


@pytest.mark.parametrize("frames,ft,message", [
    (100_000_000, "0.0083333", r"100000000 frames at 120 fps is 1388.\.. minutes; the limit is 10 minutes"),
    (10, "1e-9", r"line 13: a frame time of 1e-09 s is 1e\+09 frames per second; accepted: 1 to 1000"),
    (10, "30", r"a frame time of 30 s is 0.0333 frames per second"),
])
def test_absurd_bvh_headers_are_refused_before_allocating(tmp_path, frames, ft, message):
    path = tmp_path / "huge.bvh"
    path.write_text(_HEADER.replace("{frames}", str(frames)).replace("{ft}", ft) + "0 0 0 0 0 0\n")
    t = time.perf_counter()
    with pytest.raises(BVHError, match=message):
        read_bvh(path)
    assert time.perf_counter() - t < 1.0


def test_motion_values_are_bounded_by_frames_times_channels(tmp_path, monkeypatch):
    import core.io.bvh as bvh

    monkeypatch.setattr(bvh, "MAX_MOTION_VALUES", 50)
    path = tmp_path / "wide.bvh"
    path.write_text(_HEADER.replace("{frames}", "9").replace("{ft}", "0.0333") + "0 0 0 0 0 0\n" * 9)
    with pytest.raises(BVHError, match=r"9 frames of 6 channels is more motion data than one job takes"):
        read_bvh(path)


def test_a_2000_deep_bvh_chain_says_what_is_wrong(tmp_path):
    depth = 2000
    text = "HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Zrotation Xrotation Yrotation\n"
    for k in range(depth - 1):
        text += f"JOINT j{k}\n{{\n OFFSET 0 1 0\n CHANNELS 3 Zrotation Xrotation Yrotation\n"
    text += "}\n" * depth + "MOTION\nFrames: 1\nFrame Time: 0.0333\n" + " 0" * (3 * depth) + "\n"
    path = tmp_path / "deep.bvh"
    path.write_text(text)
    with pytest.raises(BVHError) as e:
        read_bvh(path)
    assert "nested more than 256 levels deep" in str(e.value) and "Recursion" not in str(e.value)
    # a sane file right after
    m = random_motion(load_character("Kit").skeleton, frames=3, fps=30, seed=1)
    write_bvh(m, tmp_path / "ok.bvh")
    assert read_bvh(tmp_path / "ok.bvh").num_frames == 3
    assert sys.getrecursionlimit() >= 1000
    with pytest.raises(InputError):
        read_bvh(tmp_path / "missing.bvh")
