"""The Blender side of FBX/GLB export and import: run as a script in a subprocess, the only module that imports bpy.

    python blender_worker.py REQUEST.json

bpy (Blender as a Python module) must own a process's main thread, pins its own numpy and takes ~0.6 s to
import, so :mod:`core.io.blender` starts this script in a fresh interpreter per job, under a time and memory
limit, and the web server never imports bpy. The script depends on nothing but bpy and numpy (no ``core``
import: no torch start-up cost, and nothing of ours runs next to a stranger's file).

Protocol (all paths absolute, all arrays float64/int64 in one ``.npz``):

* ``REQUEST.json``: ``{"op": "export" | "import", "arrays": "<in.npz>" | null, "result": "<result.json>",
  "result_arrays": "<result.npz>", ...op fields}``.
* ``result.json``: ``{"ok": true, ...}`` or ``{"ok": false, "error": "<one line for the user>",
  "traceback": "..."}``; the exit status is 0 either way. Anything else (no result, a signal) is a crash.

The maths (bone frames, pose quaternions, coordinate conversion) is done by the parent, in our conventions;
this script only moves arrays into and out of Blender. Coordinates: ours are Y-up metres facing +Z; Blender's
world is Z-up: ``blender = C @ ours`` with ``C = [[1,0,0],[0,0,-1],[0,1,0]]`` ((x, y, z) -> (x, -z, y)).

Export layouts (how one character is laid out in the Blender scene before each exporter runs):

* FBX: the exporter maps Blender's world to FBX space with ``G = Scale(100) @ A`` (``apply_unit_scale``,
  ``FBX_SCALE_NONE``, ``axis_forward='-Z'``, ``axis_up='Y'``; ``A = C^-1``) and writes ``G @ matrix_world`` on
  every root node. The armature object gets ``matrix_world = G^-1 = C @ Scale(0.01)`` and holds its data in
  our own Y-up centimetres, so the file's root nodes carry identity transforms and the bones, mesh and keys are
  our data in centimetres with ``UnitScaleFactor = 1``: the layout of Mixamo's own files (see core.io.export).
* FBX for Blender (``target`` "blender"): no axis change and no unit in the coordinates (``axis_up='Z'``,
  ``axis_forward='Y'``, ``FBX_SCALE_UNITS``): laid out like a GLB below, the root nodes are the identity.
  FBX for Unreal: the Mixamo layout, with a ``root`` bone at the world origin above the top bones
  (:func:`_add_root_bone`).
* GLB: glTF is Y-up metres and the exporter converts Blender's Z-up itself, so the armature object is the
  identity and its data is ``C @ ours`` in metres.

An uploaded file is laid out the same way before it is written as FBX: its armature object gets the layout's
matrix, its old transform going into the bones and meshes (:func:`_relayout`).

Script auto-execution stays off (``use_scripts_auto_execute``); FBX and glTF carry no scripts. Nothing outside
the file is opened: an FBX names its textures by path (``../``, absolute), so while it is imported Blender's
image loader only ever looks in the worker's empty working folder (:func:`_images_from_the_file_only`), and only
images packed inside the file are ever sampled; a GLB's references were refused by the parent before the worker
started (``core.io.uploads``).
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

C = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # ours (Y-up) -> Blender (Z-up)


class WorkerError(Exception):
    """A problem with the input that the user should see as one line; ``kind`` "memory" for a memory shortage."""

    def __init__(self, message: str, kind: str = "input") -> None:
        super().__init__(message)
        self.kind = kind


# ----------------------------------------------------------------------------------------------------------
# Scene helpers
# ----------------------------------------------------------------------------------------------------------

def _reset(bpy) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    prefs = bpy.context.preferences
    prefs.filepaths.use_scripts_auto_execute = False
    if prefs.filepaths.use_scripts_auto_execute:  # pragma: no cover - would be a Blender bug
        raise RuntimeError("could not turn Blender's script auto-execution off")


def _clear_scene(bpy) -> None:
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.armatures, bpy.data.actions,
                       bpy.data.materials):
        for item in list(collection):
            collection.remove(item)


def _mat4(rot: np.ndarray, pos: np.ndarray):
    from mathutils import Matrix

    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = pos
    return Matrix(m.tolist())


def _matrices(prop_collection, attr: str, n: int) -> np.ndarray:
    """``(n, 4, 4)`` row-major matrices of a collection's matrix property (Blender stores them column-major)."""
    buf = np.empty(n * 16, dtype=np.float32)
    prop_collection.foreach_get(attr, buf)
    return buf.reshape(n, 4, 4).transpose(0, 2, 1).astype(np.float64)


# ----------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------

def _layout(fmt: str, target: str = "unity") -> tuple[np.ndarray, float, np.ndarray]:
    """(rotation D applied to our data, scale s applied to our lengths, armature object's matrix_world)."""
    if fmt == "fbx" and target != "blender":
        obj = np.eye(4)
        obj[:3, :3] = C * 0.01
        return np.eye(3), 100.0, obj
    return C, 1.0, np.eye(4)


def _build_armature(bpy, req: dict, a: dict, fmt: str):
    D, s, obj_matrix = _layout(fmt, req.get("target", "unity"))
    from mathutils import Matrix

    names, parents = req["bone_names"], req["parents"]
    arm_data = bpy.data.armatures.new("Armature")
    arm = bpy.data.objects.new("Armature", arm_data)
    bpy.context.scene.collection.objects.link(arm)
    arm.matrix_world = Matrix(obj_matrix.tolist())
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    edit = []
    heads, frames, lengths = a["heads"], a["frames"], a["lengths"]
    for j, name in enumerate(names):
        eb = arm_data.edit_bones.new(name)
        eb.head = (0.0, 0.0, 0.0)
        eb.tail = (0.0, float(lengths[j] * s), 0.0)
        eb.matrix = _mat4(D @ frames[j], D @ heads[j] * s)
        eb.use_connect = False
        if parents[j] >= 0:
            eb.parent = edit[parents[j]]
        edit.append(eb)
    bpy.ops.object.mode_set(mode="OBJECT")
    if len(arm_data.bones) != len(names):
        raise RuntimeError(f"Blender kept {len(arm_data.bones)} of {len(names)} bones")
    if fmt == "fbx" and req.get("target") == "unreal":
        _add_root_bone(bpy, arm)
    for pb in arm.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return arm


def _add_root_bone(bpy, arm, length_m: float = 0.25) -> str:
    """For Unreal: a bone at the world origin, pointing up, made the parent of every top bone; its name.

    Unreal wants one root bone and takes root motion from it. Named ``root`` (Unreal's own skeletons' name;
    Blender numbers it if the rig has a ``root`` already). At rest it moves nothing: a child's pose is its rest
    relative to a parent at rest.
    """
    A_inv = np.linalg.inv(np.array(arm.matrix_world))
    tops = [b.name for b in arm.data.bones if b.parent is None]
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    bone = arm.data.edit_bones.new("root")
    bone.head = (A_inv @ [0.0, 0.0, 0.0, 1.0])[:3].tolist()
    bone.tail = (A_inv @ [0.0, 0.0, length_m, 1.0])[:3].tolist()
    for name in tops:
        arm.data.edit_bones[name].parent = bone
    name = bone.name
    bpy.ops.object.mode_set(mode="OBJECT")
    return name


def _root_bone_keys(arm, name: str, travel_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quaternions ``(T, 4)`` and locations ``(T, 3)`` that move top bone ``name`` by ``travel_world (T, 3)``
    (Blender world) from its rest."""
    A_inv = np.linalg.inv(np.array(arm.matrix_world))
    rest = np.array(arm.data.bones[name].matrix_local)[:3, :3]
    rest = rest / np.linalg.norm(rest, axis=0)
    T = len(travel_world)
    return np.tile([1.0, 0.0, 0.0, 0.0], (T, 1)), travel_world @ A_inv[:3, :3].T @ rest


def _build_mesh(bpy, arm, req: dict, a: dict, fmt: str):
    D, s, _ = _layout(fmt, req.get("target", "unity"))
    verts = (a["vertices"] @ D.T) * s
    faces = a["faces"]
    me = bpy.data.meshes.new("Body")
    me.vertices.add(len(verts))
    me.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    me.loops.add(faces.size)
    me.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    me.polygons.add(len(faces))
    me.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    me.update(calc_edges=True)
    if hasattr(me, "shade_smooth"):
        me.shade_smooth()
    obj = bpy.data.objects.new("Body", me)
    bpy.context.scene.collection.objects.link(obj)
    obj.parent = arm  # identity parent inverse: the mesh sits exactly where the armature is

    mat = bpy.data.materials.new("Body")
    if "colors" in a:
        rgba = np.concatenate([a["colors"], np.ones((len(verts), 1))], axis=1).astype(np.float32)
        attr = me.color_attributes.new("Color", "BYTE_COLOR", "POINT")
        attr.data.foreach_set("color_srgb", rgba.ravel())
        me.color_attributes.active_color = attr
        # A material that shows the colours (and makes the glTF exporter write COLOR_0).
        nodes = mat.node_tree.nodes
        bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
        col = nodes.new("ShaderNodeVertexColor")
        col.layer_name = "Color"
        mat.node_tree.links.new(col.outputs["Color"], bsdf.inputs["Base Color"])
    me.materials.append(mat)

    # Skin: one vertex group per bone. Blender has no bulk setter for weights: one add() per (vertex, weight),
    # ~40k calls for 10k vertices, a few hundredths of a second.
    idx, w = a["skin_indices"], a["skin_weights"]
    groups = [obj.vertex_groups.new(name=n) for n in req["bone_names"]]
    for k in range(idx.shape[1]):
        keep = w[:, k] > 0
        for v, j, weight in zip(np.nonzero(keep)[0].tolist(), idx[keep, k].tolist(), w[keep, k].tolist()):
            groups[j].add([v], weight, "ADD")
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    return obj


def _key_bones(bpy, arm, take: str, rotations: dict, locations: dict, fps: float, fmt: str) -> None:
    """One new action ``take`` on ``arm``, keyed on every frame (linear): bone name → ``(T, 4)`` pose quaternions
    (w, x, y, z) in ``rotations`` and ``(T, 3)`` pose locations in ``locations``; the scene's rate and range."""
    from bpy_extras import anim_utils

    T = len(next(iter(rotations.values())))
    action = bpy.data.actions.new(take)
    if arm.animation_data is None:
        arm.animation_data_create()
    slot = action.slots.new(id_type="OBJECT", name=arm.name)
    arm.animation_data.action = action
    arm.animation_data.action_slot = slot
    bag = anim_utils.action_ensure_channelbag_for_slot(action, slot)
    frames = np.arange(T, dtype=np.float64)
    linear = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value

    def curve(path: str, index: int, values: np.ndarray, group: str) -> None:
        fc = bag.fcurves.new(path, index=index, group_name=group)
        fc.keyframe_points.add(T)
        fc.keyframe_points.foreach_set("co", np.column_stack([frames, values]).astype(np.float32).ravel())
        fc.keyframe_points.foreach_set("interpolation", np.full(T, linear, dtype=np.int32))
        fc.update()

    for name, q in rotations.items():
        arm.pose.bones[name].rotation_mode = "QUATERNION"
        base = f'pose.bones["{bpy.utils.escape_identifier(name)}"]'
        for i in range(4):
            curve(base + ".rotation_quaternion", i, q[:, i], name)
    for name, loc in locations.items():
        base = f'pose.bones["{bpy.utils.escape_identifier(name)}"]'
        for i in range(3):
            curve(base + ".location", i, loc[:, i], name)
    scene = bpy.context.scene
    scene.render.fps = max(1, int(round(fps)))
    # Blender's rate is fps / fps_base; the glTF add-on (5.0.1) computes times with fps * fps_base instead, so
    # a GLB gets the inverse base (the same for whole rates, right for 29.97 and other fractional ones).
    scene.render.fps_base = scene.render.fps / fps if fmt == "fbx" else fps / scene.render.fps
    scene.frame_start, scene.frame_end = 0, T - 1
    scene.frame_set(0)


def _animate(bpy, arm, req: dict, a: dict, fmt: str) -> None:
    _, s, _ = _layout(fmt, req.get("target", "unity"))
    names = req["bone_names"]
    rotations = {name: a["pose"][:, j] for j, name in enumerate(names)}
    locations = {names[0]: a["root_location"] * s}
    root = next((b.name for b in arm.data.bones if b.parent is None), names[0])
    if root != names[0]:  # an Unreal root bone above the hips: it takes the travel, the hips the rest
        rotations[root], locations[root] = _root_bone_keys(arm, root, a["travel"] @ C.T)
        locations[names[0]] = a["root_location_under_root"] * s
    _key_bones(bpy, arm, req["take"], rotations, locations, float(req["fps"]), fmt)


def _export(bpy, req: dict, a: dict) -> dict:
    seconds: dict[str, float] = {}
    for out in req["outputs"]:
        fmt, path = out["format"], out["path"]
        t = time.perf_counter()
        _clear_scene(bpy)
        arm = _build_armature(bpy, req, a, fmt)
        if req["has_mesh"]:
            _build_mesh(bpy, arm, req, a, fmt)
        _animate(bpy, arm, req, a, fmt)
        seconds[f"build_{fmt}"] = time.perf_counter() - t
        t = time.perf_counter()
        _write(bpy, fmt, path, req["take"], whole_file=False, target=req.get("target", "unity"))
        seconds[f"write_{fmt}"] = time.perf_counter() - t
    return {"seconds": seconds}


def _write(bpy, fmt: str, path: str, take: str, whole_file: bool, target: str = "unity") -> None:
    """Write the scene as FBX (laid out for ``target``) or GLB; ``whole_file``: the user's own file (its images
    embedded, shape keys kept)."""
    if fmt == "fbx":
        # The exporter bakes the animation by stepping through the frames; skinned meshes would be deformed on
        # every step for nothing. It finds the skin from the modifier whether it is shown or not.
        for ob in bpy.data.objects:
            for mod in ob.modifiers:
                if mod.type == "ARMATURE":
                    mod.show_viewport = mod.show_render = False
        if whole_file:
            _base_colour_maps_for_fbx(bpy)
        _write_fbx(bpy, path, take, embed=whole_file, target=target)
    else:
        _write_glb(bpy, path, morphs=whole_file)
    if not Path(path).is_file():
        raise RuntimeError(f"the {fmt.upper()} exporter wrote no file")


def _base_colour_maps_for_fbx(bpy) -> None:
    """Plug base-colour images straight into Base Color, as the FBX exporter needs to find them.

    The glTF importer puts a Mix node (multiply by ``baseColorFactor``) between a material's image and the
    Principled BSDF's Base Color; the FBX exporter only takes an image linked directly (its
    ``PrincipledBSDFWrapper``), so it wrote Soldier.glb's normal maps but dropped both base-colour maps. FBX has
    no multiply either: the image goes straight in and the factor becomes the material's colour (FBX
    ``DiffuseColor``). Only the scene about to be written as FBX changes.
    """
    for mat in bpy.data.materials:
        if mat.node_tree is None:
            continue
        links = mat.node_tree.links
        for bsdf in [n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"]:
            base = bsdf.inputs["Base Color"]
            mix = base.links[0].from_node if base.links else None
            if mix is None or mix.type != "MIX" or mix.data_type != "RGBA" or mix.blend_type != "MULTIPLY":
                continue
            a, b = mix.inputs["A"], mix.inputs["B"]
            if mix.inputs["Factor"].links or mix.inputs["Factor"].default_value != 1.0:
                continue
            for image_side, factor_side in ((a, b), (b, a)):
                if (image_side.links and image_side.links[0].from_node.type == "TEX_IMAGE"
                        and not factor_side.links):
                    base.default_value = factor_side.default_value
                    links.new(image_side.links[0].from_socket, base)
                    break


def _write_fbx(bpy, path: str, take: str, embed: bool, target: str = "unity") -> None:
    """Blender's FBX exporter with the layout of core.io.export's docstring; ``embed``: images inside the file."""
    # The global take is named after the scene (see io_scene_fbx fbx_animations): name it like Mixamo.
    bpy.context.scene.name = take
    if target == "blender":  # Blender's own axes, metres with the unit in the header
        axes, scaling = {"axis_forward": "Y", "axis_up": "Z"}, "FBX_SCALE_UNITS"
    else:  # Mixamo's: Y up, centimetres in the coordinates
        axes, scaling = {"axis_forward": "-Z", "axis_up": "Y"}, "FBX_SCALE_NONE"
    bpy.ops.export_scene.fbx(
        filepath=path, check_existing=False, object_types={"ARMATURE", "MESH", "EMPTY"},
        apply_unit_scale=True, apply_scale_options=scaling, global_scale=1.0, **axes, bake_space_transform=False,
        use_mesh_modifiers=False, mesh_smooth_type="FACE", colors_type="SRGB", use_custom_props=False,
        add_leaf_bones=False, primary_bone_axis="Y", secondary_bone_axis="X", armature_nodetype="NULL",
        use_armature_deform_only=False, bake_anim=True, bake_anim_use_all_bones=True,
        bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
        bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
        path_mode="COPY" if embed else "AUTO", embed_textures=embed)


def _write_glb(bpy, path: str, morphs: bool) -> None:
    bpy.ops.export_scene.gltf(
        filepath=path, check_existing=False, export_format="GLB", export_yup=True,
        export_animations=True, export_animation_mode="ACTIONS", export_force_sampling=False,
        export_frame_step=1, export_anim_slide_to_zero=False, export_def_bones=False,
        export_leaf_bone=False, export_skins=True, export_influence_nb=4, export_morph=morphs,
        export_materials="EXPORT", export_vertex_color="MATERIAL", export_cameras=False,
        export_lights=False, export_extras=False, export_optimize_animation_size=False,
        export_optimize_disable_viewport=True)


# ----------------------------------------------------------------------------------------------------------
# The user's own file, animated
# ----------------------------------------------------------------------------------------------------------

def _matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations → ``(..., 4)`` quaternions (w, x, y, z), from the largest of the four
    candidates (numerically safe for every rotation)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = np.argmax(cand, axis=-1)
    q = np.empty(m.shape[:-2] + (4,))
    r = np.sqrt(np.maximum(np.take_along_axis(cand, k[..., None], -1)[..., 0], 1e-12))
    w = np.stack([r, (m[..., 2, 1] - m[..., 1, 2]) / r, (m[..., 0, 2] - m[..., 2, 0]) / r,
                  (m[..., 1, 0] - m[..., 0, 1]) / r], -1)
    x = np.stack([(m[..., 2, 1] - m[..., 1, 2]) / r, r, (m[..., 0, 1] + m[..., 1, 0]) / r,
                  (m[..., 0, 2] + m[..., 2, 0]) / r], -1)
    y = np.stack([(m[..., 0, 2] - m[..., 2, 0]) / r, (m[..., 0, 1] + m[..., 1, 0]) / r, r,
                  (m[..., 1, 2] + m[..., 2, 1]) / r], -1)
    z = np.stack([(m[..., 1, 0] - m[..., 0, 1]) / r, (m[..., 0, 2] + m[..., 2, 0]) / r,
                  (m[..., 1, 2] + m[..., 2, 1]) / r, r], -1)
    for i, cand_q in enumerate((w, x, y, z)):
        q[k == i] = cand_q[k == i]
    q *= 0.5
    q *= np.where(q[..., :1] < 0, -1.0, 1.0)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    # Continuous in time (no sign flips between frames) for the linear interpolation of the keys.
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1
    return q


def _drop_animation(bpy) -> None:
    """Every action and NLA strip of the file goes (its own takes); drivers and shape keys stay."""
    for datablocks in (bpy.data.objects, bpy.data.shape_keys):
        for item in datablocks:
            if item.animation_data is not None:
                item.animation_data.action = None
                for track in list(item.animation_data.nla_tracks):
                    item.animation_data.nla_tracks.remove(track)
    for act in list(bpy.data.actions):
        bpy.data.actions.remove(act)


def _pose_from_world(arm, names: list[str], W: np.ndarray, P: np.ndarray, rest_P: np.ndarray,
                     root: str | None = None, travel: np.ndarray | None = None):
    """Pose quaternions and locations for the file's bones from our joints' world transforms.

    ``W (T, J, 3, 3)`` world rotations, ``P (T, J, 3)`` world positions and ``rest_P (J, 3)`` rest positions, in
    our Y-up metres with the character standing on y = 0; ``names[0]`` is the hips. Our joints are the file's
    bones under the same names, with the same bone frames (both sides read the file with the same settings), so
    a joint's armature-space matrix follows from its world transform; every other bone keeps its rest relative
    to its parent. A bone's pose (basis) is then ``rel_rest⁻¹ · pose_parent⁻¹ · pose`` in Blender's terms.
    ``root``: a top bone moved by ``travel (T, 3)`` (our axes, metres) from its rest (an Unreal root bone).
    """
    A = np.array(arm.matrix_world)
    A_inv = np.linalg.inv(A)
    scale = np.linalg.norm(A[:3, :3], axis=0)
    R_A = A[:3, :3] / scale
    joint_of = {n: j for j, n in enumerate(names)}
    T = W.shape[0]
    # Where the file stands its hips at rest, against ours (we stand characters on the floor).
    hips_rest = A @ np.array(arm.data.bones[names[0]].matrix_local)[:, 3]
    shift = hips_rest[:3] - C @ rest_P[0]
    pose: dict[str, np.ndarray] = {}
    rotations: dict[str, np.ndarray] = {}
    locations: dict[str, np.ndarray] = {}
    for bone in _bones_parents_first(arm):
        rest = np.array(bone.matrix_local)
        rel = rest if bone.parent is None else np.linalg.inv(np.array(bone.parent.matrix_local)) @ rest
        parent_pose = None if bone.parent is None else pose[bone.parent.name]
        j = joint_of.get(bone.name)
        if bone.name == root:
            rotations[root], locations[root] = _root_bone_keys(arm, root, travel @ C.T)
            pose[root] = np.repeat(rest[None], T, axis=0)
            pose[root][:, :3, 3] += travel @ C.T @ A_inv[:3, :3].T
            continue
        if j is None:  # fingers, props, bones above the hips: at rest relative to their parent
            pose[bone.name] = np.broadcast_to(rest if parent_pose is None else parent_pose @ rel, (T, 4, 4))
            continue
        M = np.zeros((T, 4, 4))
        M[:, 3, 3] = 1.0
        M[:, :3, :3] = R_A.T @ (C @ W[:, j])
        M[:, :3, 3] = (P[:, j] @ C.T + shift) @ A_inv[:3, :3].T + A_inv[:3, 3]
        pose[bone.name] = M
        basis = np.linalg.inv(rest if parent_pose is None else parent_pose @ rel) @ M
        rotations[bone.name] = _matrix_to_quat(basis[:, :3, :3])
        loc = basis[:, :3, 3]
        if np.abs(loc).max() > 1e-5 * max(1.0, float(np.abs(rest[:3, 3]).max())):  # the hips, re-parented bones
            locations[bone.name] = loc
    return rotations, locations


def _relayout(bpy, arm, matrix: np.ndarray) -> None:
    """Give the armature object ``matrix (4, 4)`` without moving anything in the world.

    Its old transform goes into the bones' rest and into the vertices (shape keys too) of the meshes it skins,
    which get the same matrix; objects hung from bones keep their world transform. The rig's bones keep their
    names, hierarchy and orientations relative to their parents (the change is a rotation and a uniform scale
    on all of them).
    """
    from mathutils import Matrix

    bpy.context.view_layer.update()
    old = np.array(arm.matrix_world)
    if np.allclose(old, matrix, atol=1e-9):
        return
    worlds = {ob.name: np.array(ob.matrix_world) for ob in bpy.data.objects}
    skinned = [ob for ob in bpy.data.objects if ob.type == "MESH" and (
        (ob.parent == arm and ob.parent_type in ("OBJECT", "ARMATURE"))
        or (ob.parent is None and any(m.type == "ARMATURE" and m.object == arm for m in ob.modifiers)))]
    arm.data.transform(Matrix((np.linalg.inv(matrix) @ old).tolist()))
    arm.matrix_world = Matrix(matrix.tolist())
    # Armature.transform changes the rest without rebuilding the pose; through edit mode and back does.
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.object.mode_set(mode="OBJECT")
    for ob in skinned:
        _own_data(ob).transform(Matrix((np.linalg.inv(matrix) @ worlds[ob.name]).tolist()), shape_keys=True)
        ob.matrix_parent_inverse.identity()
        ob.matrix_basis = Matrix(matrix.tolist()) if ob.parent is None else Matrix.Identity(4)
    bpy.context.view_layer.update()

    def depth(ob) -> int:
        return 0 if ob.parent is None else 1 + depth(ob.parent)

    for ob in sorted(bpy.data.objects, key=depth):  # parents first: each child is placed under a placed parent
        if ob is arm or ob in skinned:
            continue
        ob.matrix_parent_inverse.identity()
        ob.matrix_world = Matrix(worlds[ob.name].tolist())
        if ob.parent is arm and ob.parent_type == "BONE":
            # The bones' frames changed scale with the armature: a part hung from a bone would carry the
            # difference as its own scale (10^4 for RobotExpressive's parts, as an engine's inspector would
            # show it). Its vertices take the scale instead; an empty (an end site) drops it.
            loc, rot, scale = ob.matrix_basis.decompose()
            if ob.type == "MESH":
                _own_data(ob).transform(Matrix.Diagonal((*scale, 1.0)), shape_keys=True)
            ob.matrix_basis = Matrix.LocRotScale(loc, rot, None)
        bpy.context.view_layer.update()


def _own_data(ob):
    """The object's mesh, copied first if other objects share it (so transforming it moves this object only)."""
    if ob.data.users > 1:
        ob.data = ob.data.copy()
    return ob.data


def _name_armature_object(bpy, arm) -> None:
    """Name the armature object ``Armature``: Unreal drops a root node of that name (any other becomes a bone)."""
    other = bpy.data.objects.get("Armature")
    if other is not None and other is not arm:
        other.name = "Armature (object)"
    arm.name = "Armature"


def _animate_file(bpy, req: dict, a: dict) -> dict:
    """The user's own character file, untouched but for a new take: import it, drop its animations, key its
    bones from our motion, and write each requested format (FBX with its images embedded)."""
    seconds: dict[str, float] = {}
    for out in req["outputs"]:
        fmt, path = out["format"], out["path"]
        t = time.perf_counter()
        _reset(bpy)
        _read_file(bpy, req["source"], req["source_format"])
        arm = _pick_armature(bpy)
        _drop_animation(bpy)
        # A file's static pose (glTF node transforms that differ from the bind pose) goes too: bones the motion
        # does not drive stand at rest, as _pose_from_world assumes.
        for pb in arm.pose.bones:
            pb.matrix_basis.identity()
        if req.get("skeleton_only"):
            for ob in list(bpy.data.objects):
                if ob.type == "MESH":
                    bpy.data.objects.remove(ob)
        target, root = req.get("target", "unity"), None
        if fmt == "fbx":
            _relayout(bpy, arm, _layout(fmt, target)[2])
            if target == "unreal":
                _name_armature_object(bpy, arm)
                root = _add_root_bone(bpy, arm)
        rotations, locations = _pose_from_world(arm, req["joint_names"], a["world_rotations"],
                                                a["world_positions"], a["rest_positions"], root, a.get("travel"))
        _key_bones(bpy, arm, req["take"], rotations, locations, float(req["fps"]), fmt)
        seconds[f"build_{fmt}"] = time.perf_counter() - t
        t = time.perf_counter()
        _write(bpy, fmt, path, req["take"], whole_file=True, target=req.get("target", "unity"))
        seconds[f"write_{fmt}"] = time.perf_counter() - t
    return {"seconds": seconds, "keyed": sorted(rotations), "located": sorted(locations)}


# ----------------------------------------------------------------------------------------------------------
# Import
# ----------------------------------------------------------------------------------------------------------

def _importer_message(exc: Exception, path: str) -> str:
    """The useful line of an importer's error: the exception of a Python traceback, without the file's path."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines()
             if ln.strip() and not ln.strip().startswith("Location:")]
    text = lines[-1] if any("Traceback" in ln for ln in lines) else " ".join(lines)
    for prefix in ("Error:", "Python:"):
        text = text.removeprefix(prefix).strip()
    text = text.replace(f"Couldn't open file '{path}'", "").replace(path, Path(path).name).strip(" ()")
    return text[:300] or "no details"


def _pick_armature(bpy):
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE" and len(o.data.bones) > 0]
    if not arms:
        raise WorkerError("the file has no armature (skeleton); a rigged character or an animation is needed")
    return max(arms, key=lambda o: len(o.data.bones))


def _character_meshes(bpy, arm) -> tuple[list, list[str]]:
    """Mesh objects that belong to the armature: skinned by it, or parented to one of its bones."""
    keep, skipped = [], []
    for ob in bpy.data.objects:
        if ob.type != "MESH" or len(ob.data.vertices) == 0:
            continue
        skinned = any(m.type == "ARMATURE" and m.object == arm for m in ob.modifiers)
        on_bone = ob.parent == arm and ob.parent_type == "BONE" and ob.parent_bone in arm.data.bones
        if skinned or on_bone:
            keep.append(ob)
        else:
            skipped.append(ob.name)
    return keep, skipped


def _end_sites(bpy, arm) -> list:
    """Empties hanging from the armature's bones (glTF leaf nodes outside the skin, e.g. ``Foot.L_end``)."""
    bone_names = set(arm.data.bones.keys())
    found, taken = [], set(bone_names)
    frontier = [arm]
    while frontier:
        nxt = []
        for ob in bpy.data.objects:
            if ob.type != "EMPTY" or ob.name in taken:
                continue
            if (ob.parent == arm and ob.parent_type == "BONE" and ob.parent_bone in bone_names) or \
                    (ob.parent is not None and ob.parent in found):
                found.append(ob)
                taken.add(ob.name)
                nxt.append(ob)
        frontier = nxt
    return found


def _mesh_colours(me, image_cache: dict) -> np.ndarray | None:
    """``(V, 3)`` sRGB colours in [0, 1]: the active colour attribute, else the materials' base colour
    (sampled from an image texture plugged into Base Color, where there is one embedded in the file)."""
    V = len(me.vertices)
    attr = me.color_attributes.active_color if len(me.color_attributes) else None
    if attr is not None:
        n = len(attr.data)
        buf = np.empty(n * 4, dtype=np.float32)
        attr.data.foreach_get("color_srgb", buf)
        rgba = buf.reshape(n, 4)
        if attr.domain == "POINT":
            return rgba[:, :3].astype(np.float64)
        if attr.domain == "CORNER":
            loop_v = np.empty(len(me.loops), dtype=np.int32)
            me.loops.foreach_get("vertex_index", loop_v)
            return _average_per_vertex(loop_v, rgba[:, :3], V)
    if not me.materials:
        return None
    loop_v = np.empty(len(me.loops), dtype=np.int32)
    me.loops.foreach_get("vertex_index", loop_v)
    poly_mat = np.empty(len(me.polygons), dtype=np.int32)
    me.polygons.foreach_get("material_index", poly_mat)
    poly_start = np.empty(len(me.polygons), dtype=np.int32)
    me.polygons.foreach_get("loop_start", poly_start)
    poly_total = np.empty(len(me.polygons), dtype=np.int32)
    me.polygons.foreach_get("loop_total", poly_total)
    loop_mat = np.repeat(poly_mat, poly_total)
    loop_col = np.full((len(me.loops), 3), 0.8)
    uv = None
    if me.uv_layers.active is not None:
        uv = np.empty(len(me.loops) * 2, dtype=np.float32)
        me.uv_layers.active.data.foreach_get("uv", uv)
        uv = uv.reshape(-1, 2)
    for m_index, mat in enumerate(me.materials):
        sel = loop_mat == m_index
        if mat is None or not sel.any():
            continue
        colour, image = _material_base(mat)
        loop_col[sel] = colour
        if image is not None and uv is not None:
            pixels = _image_pixels(image, image_cache)
            if pixels is not None:
                h, w = pixels.shape[:2]
                u = np.mod(uv[sel, 0], 1.0)
                v = np.mod(uv[sel, 1], 1.0)
                px = np.minimum((u * w).astype(int), w - 1)
                py = np.minimum((v * h).astype(int), h - 1)
                loop_col[sel] = pixels[py, px, :3] * colour
    return _average_per_vertex(loop_v, loop_col, V)


def _average_per_vertex(loop_v: np.ndarray, values: np.ndarray, V: int) -> np.ndarray:
    out = np.zeros((V, values.shape[1]))
    np.add.at(out, loop_v, values)
    count = np.bincount(loop_v, minlength=V)[:, None]
    return np.where(count > 0, out / np.maximum(count, 1), 0.8)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _material_base(mat) -> tuple[np.ndarray, object]:
    """A material's base colour (sRGB) and the image texture linked to it, if any."""
    colour = _linear_to_srgb(np.array(mat.diffuse_color[:3], dtype=np.float64))
    image = None
    if mat.node_tree is not None:
        for node in mat.node_tree.nodes:
            if node.type != "BSDF_PRINCIPLED":
                continue
            sock = node.inputs.get("Base Color")
            if sock is None:
                break
            colour = _linear_to_srgb(np.array(sock.default_value[:3], dtype=np.float64))
            # An image feeding Base Color, directly or through a few nodes (the glTF importer puts a Mix that
            # multiplies by the colour factor in between).
            frontier = [link.from_node for link in sock.links]
            for _ in range(3):
                found = next((n for n in frontier if n.type == "TEX_IMAGE" and n.image is not None), None)
                if found is not None:
                    image, colour = found.image, np.ones(3)
                    break
                frontier = [link.from_node for n in frontier for i in n.inputs for link in i.links]
            break
    return colour, image


def _image_pixels(image, cache: dict) -> np.ndarray | None:
    if image.name in cache:
        return cache[image.name]
    pixels = None
    if image.packed_file is None:  # only images inside the file: a path in a stranger's file is not ours to read
        cache[image.name] = None
        return None
    try:
        w, h = image.size  # reading the size loads the packed image; (0, 0) when it cannot be decoded
        if 0 < w * h <= 16_000_000:
            buf = np.empty(w * h * image.channels, dtype=np.float32)
            image.pixels.foreach_get(buf)
            pixels = buf.reshape(h, w, image.channels)
            if image.channels < 3:
                pixels = np.repeat(pixels[..., :1], 3, axis=2)
    except (RuntimeError, ValueError):
        pixels = None
    cache[image.name] = pixels
    return pixels


def _mesh_data(bpy, arm, meshes: list, bone_index: dict[str, int], J: int) -> dict:
    """Rest-pose vertices (Blender world), triangles, top-4 skin weights and colours of all meshes, merged."""
    verts, faces, idx_all, w_all, cols = [], [], [], [], []
    have_colour = False
    cache: dict = {}
    offset = 0
    for ob in meshes:
        me = ob.data
        V = len(me.vertices)
        co = np.empty(V * 3, dtype=np.float32)
        me.vertices.foreach_get("co", co)
        m = np.array(ob.matrix_world)
        verts.append(co.reshape(V, 3) @ m[:3, :3].T + m[:3, 3])
        me.calc_loop_triangles()
        tri = np.empty(len(me.loop_triangles) * 3, dtype=np.int32)
        me.loop_triangles.foreach_get("vertices", tri)
        faces.append(tri.reshape(-1, 3).astype(np.int64) + offset)
        offset += V

        dense = np.zeros((V, J), dtype=np.float32)
        if ob.parent_type == "BONE" and not any(mod.type == "ARMATURE" for mod in ob.modifiers):
            dense[:, bone_index[ob.parent_bone]] = 1.0
        else:
            group_joint = {g.index: bone_index.get(g.name, -1) for g in ob.vertex_groups}
            for v in me.vertices:
                for g in v.groups:
                    j = group_joint.get(g.group, -1)
                    if j >= 0 and g.weight > 0:
                        dense[v.index, j] += g.weight
        top = np.argsort(-dense, axis=1)[:, :4]
        w = np.take_along_axis(dense, top, axis=1).astype(np.float64)
        idx_all.append(top.astype(np.int64))
        w_all.append(w)
        c = _mesh_colours(me, cache)
        have_colour |= c is not None
        cols.append(c if c is not None else np.full((V, 3), 0.8))
    out = {"vertices": np.concatenate(verts), "faces": np.concatenate(faces),
           "skin_indices": np.concatenate(idx_all), "skin_weights": np.concatenate(w_all)}
    if have_colour:
        out["colors"] = np.clip(np.concatenate(cols), 0.0, 1.0)
    return out


def _images_from_the_file_only() -> None:
    """Make Blender's image loader look for every image by its bare name in the (empty) working folder.

    The FBX importer calls ``bpy_extras.image_utils.load_image`` with the path the file gives (``../``, absolute,
    case-insensitive search of directories) before it packs the file's embedded copy, if any, into the image.
    Here no such path is opened (a FIFO would hang the worker, a device would feed it forever): a missing
    image becomes Blender's usual placeholder, and the embedded copy still arrives.
    """
    import os

    from bpy_extras import image_utils

    original = image_utils.load_image
    here = os.getcwd()

    def load_image(imagepath, dirname="", place_holder=False, recursive=False, **kwargs):
        name = os.path.basename(str(imagepath).replace("\\", "/"))
        if name in ("", ".", ".."):
            name = "texture"
        kwargs.update(ncase_cmp=False, check_existing=False)
        return original(os.path.join(here, name), dirname=here, place_holder=place_holder, recursive=False,
                        **kwargs)

    image_utils.load_image = load_image


def _read_file(bpy, path: str, fmt: str, gltf_fps: int = 30) -> None:
    """Import a character or animation file with the settings every reader and writer here relies on (bone
    frames as the file has them: FBX ``automatic_bone_orientation`` off, glTF's "BLENDER" bone heuristic)."""
    scene = bpy.context.scene
    _images_from_the_file_only()
    try:
        if fmt == "fbx":
            result = bpy.ops.import_scene.fbx(
                filepath=path, use_anim=True, anim_offset=0.0, use_image_search=False, use_custom_props=False,
                ignore_leaf_bones=False, automatic_bone_orientation=False, force_connect_children=False,
                primary_bone_axis="Y", secondary_bone_axis="X", axis_forward="-Z", axis_up="Y")
        else:
            scene.render.fps, scene.render.fps_base = int(gltf_fps), 1.0
            result = bpy.ops.import_scene.gltf(filepath=path, bone_heuristic="BLENDER", disable_bone_shape=True,
                                               import_pack_images=False,
                                               import_scene_extras=False, import_shading="NORMALS")
    except RuntimeError as exc:  # the importers report unreadable files this way
        raise WorkerError(f"not a readable {fmt.upper()} file (corrupt or truncated?): "
                          f"{_importer_message(exc, path)}") from None
    if "FINISHED" not in result:
        raise WorkerError(f"Blender cannot read this {fmt.upper()} file (the importer gave up)")
    if fmt != "fbx":
        _put_bone_children_back()


def _put_bone_children_back() -> None:
    """Undo the glTF importer's (5.0.1) misplacement of nodes hanging from a joint in a scaled armature.

    Blender hangs an object parented to a bone from the bone's tail, so the importer moves each such node back
    by the bone's length: ``location -= (0, L, 0)`` in the bone's frame, with ``L`` the joint's length in the
    file. With the "BLENDER" bone heuristic it makes the bone itself ``L / s`` long, ``s`` the armature
    object's largest scale (io_import_scene_gltf2 ``blender/imp/node.py``), so the node lands ``(s - 1) L /
    s`` short of where the file puts it, in bone units (×``s`` in the world). RobotExpressive's armature has
    ``s = 100``: its toe and finger tips and its bone-parented parts (head, feet, ...) sat 0.3 to 1.2 m off,
    and a GLB written from that and read again moved them as far once more. Adding ``(s - 1) · length`` along
    the bone puts them where the file says.
    """
    import bpy

    for ob in bpy.data.objects:
        arm = ob.parent
        if ob.parent_type != "BONE" or arm is None or arm.type != "ARMATURE" or ob.parent_bone not in arm.data.bones:
            continue
        s = max(arm.scale)
        if abs(s - 1.0) > 1e-6:
            ob.location[1] += (s - 1.0) * arm.data.bones[ob.parent_bone].length


def _bones_parents_first(arm) -> list:
    bones = list(arm.data.bones)
    order: list = []
    placed: set[str] = set()
    pending = bones
    while pending:
        rest = []
        for b in pending:
            if b.parent is None or b.parent.name in placed:
                order.append(b)
                placed.add(b.name)
            else:
                rest.append(b)
        pending = rest
    return order


def _import(bpy, req: dict) -> tuple[dict, dict]:
    path, fmt = req["path"], req["format"]
    t = time.perf_counter()
    _read_file(bpy, path, fmt, int(req.get("gltf_fps", 30)))
    seconds = {"read_file": time.perf_counter() - t}
    scene = bpy.context.scene

    arm = _pick_armature(bpy)
    bones = _bones_parents_first(arm)
    names = [b.name for b in bones]
    bone_index = {n: j for j, n in enumerate(names)}
    parents = [bone_index[b.parent.name] if b.parent else -1 for b in bones]
    J = len(bones)

    # Rest pose: drop every animation's influence first.
    for ob in bpy.data.objects:
        if ob.animation_data is not None:
            for track in list(ob.animation_data.nla_tracks):
                ob.animation_data.nla_tracks.remove(track)
    actions_for_arm = []
    if arm.animation_data is not None:
        arm.animation_data.action = None
    for ob in bpy.data.objects:
        if ob is not arm and ob.animation_data is not None:
            ob.animation_data_clear()
    for act in bpy.data.actions:
        slot = _armature_slot(act)
        if slot is not None:
            actions_for_arm.append((act, slot))
    arm.data.pose_position = "REST"
    for pb in arm.pose.bones:
        pb.matrix_basis.identity()
    bpy.context.view_layer.update()
    arm_world = np.array(arm.matrix_world)
    rest_local = np.stack([np.array(b.matrix_local) for b in bones]) if J else np.zeros((0, 4, 4))
    rest_world = arm_world @ rest_local

    ends = _end_sites(bpy, arm)
    end_names = [e.name for e in ends]
    end_parents = []
    for e in ends:
        end_parents.append(bone_index[e.parent_bone] if e.parent == arm else J + ends.index(e.parent))
    end_world = np.stack([np.array(e.matrix_world) for e in ends]) if ends else np.zeros((0, 4, 4))

    arrays: dict[str, np.ndarray] = {"rest_world": np.concatenate([rest_world, end_world])}
    info: dict = {"armature": arm.name, "names": names + end_names, "parents": parents + end_parents,
                  "end_sites": [False] * J + [True] * len(ends), "warnings": [], "motions": []}

    if req.get("want_mesh"):
        meshes, skipped = _character_meshes(bpy, arm)
        if skipped:
            info["warnings"].append("meshes not attached to the skeleton were left out: " + ", ".join(skipped[:8]))
        if meshes:
            t = time.perf_counter()
            arrays.update(_mesh_data(bpy, arm, meshes, bone_index, J))
            info["meshes"] = [m.name for m in meshes]
            seconds["mesh"] = time.perf_counter() - t
        else:
            info["meshes"] = []

    if req.get("want_animations"):
        t = time.perf_counter()
        # Meshes are not needed any more: removing them keeps each frame's evaluation to the armature.
        for ob in list(bpy.data.objects):
            if ob.type == "MESH":
                bpy.data.objects.remove(ob)
        arm.data.pose_position = "POSE"
        scene_fps = scene.render.fps / scene.render.fps_base
        max_frames = int(req.get("max_frames", 1_000_000))
        if arm.animation_data is None:
            arm.animation_data_create()
        for k, (act, slot) in enumerate(sorted(actions_for_arm, key=lambda a: a[0].name)):
            frames, fps = _sampling(act, slot, fmt, scene_fps, float(req.get("gltf_fps", 30)))
            T = len(frames)
            if T > max_frames:
                raise WorkerError(f"animation {act.name!r} has {T} frames; the limit is {max_frames}")
            for pb in arm.pose.bones:
                pb.matrix_basis.identity()
            arm.animation_data.action = act
            arm.animation_data.action_slot = slot
            pb_index = [arm.pose.bones.find(n) for n in names]
            world = np.empty((T, J, 4, 4))
            for i, f in enumerate(frames):
                scene.frame_set(int(np.floor(f)), subframe=float(f - np.floor(f)))
                local = _matrices(arm.pose.bones, "matrix", len(arm.pose.bones))[pb_index]
                world[i] = np.array(arm.matrix_world) @ local
            arrays[f"motion{k}"] = world
            info["motions"].append({"name": act.name, "fps": fps, "first_frame": float(frames[0]) if T else 0.0,
                                    "frames": T})
        seconds["animations"] = time.perf_counter() - t
    info["seconds"] = seconds
    return info, arrays


COMMON_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 90.0, 100.0, 120.0)


def _key_frames(act, slot) -> np.ndarray:
    """Sorted distinct frames at which an action keys the slot's channels."""
    times = []
    for layer in act.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            for fc in (bag.fcurves if bag is not None else ()):
                co = np.empty(len(fc.keyframe_points) * 2, dtype=np.float32)
                fc.keyframe_points.foreach_get("co", co)
                times.append(co[0::2])
    return np.unique(np.round(np.concatenate(times), 4)) if times else np.zeros(0)


def _sampling(act, slot, fmt: str, scene_fps: float, default_fps: float) -> tuple[np.ndarray, float]:
    """The scene frames to sample an action at, and the motion's frame rate.

    Keys on every frame (what exporters write): sampled at the keys themselves. FBX then has the file's own
    rate; glTF (times in seconds, no rate) the rate of the key spacing, snapped to a common rate within 0.05%.
    Sparse, hand-placed keys: a regular grid over the action, at the FBX file's rate, or for glTF the finest
    key spacing snapped to a common rate within 2% (``default_fps`` when that spacing is over 1/20 s).
    """
    keys = _key_frames(act, slot)
    start, end = act.frame_range
    gaps = np.diff(keys)
    regular = len(keys) >= 2 and float(np.ptp(gaps)) < 1e-2 * float(gaps.min())
    if regular:
        rate = scene_fps * (len(keys) - 1) / float(keys[-1] - keys[0])
        fps = scene_fps if fmt == "fbx" else _snap(rate, 5e-4, default_fps)
        return keys.astype(np.float64), fps
    if fmt == "fbx":
        fps = scene_fps
    elif len(keys) >= 2:
        fps = _snap(scene_fps / float(gaps.min()), 0.02, default_fps)
    else:
        fps = default_fps
    step = scene_fps / fps
    n = int(np.floor((end - start) / step + 1e-2)) + 1
    return start + step * np.arange(n), fps


def _snap(rate: float, tolerance: float, default: float) -> float:
    for common in COMMON_RATES:
        if abs(rate - common) < tolerance * common:
            return common
    if rate < 20.0 and tolerance > 1e-3:  # sparse keys say nothing about a rate
        return default
    return round(rate, 3) if rate >= 1.0 else default


def _armature_slot(act):
    """The slot of an action that animates an armature's bones (None if it animates no bones)."""
    for layer in act.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                if any(fc.data_path.startswith("pose.bones[") for fc in bag.fcurves):
                    if bag.slot.target_id_type in ("OBJECT", "UNSPECIFIED"):
                        return bag.slot
    return None


# ----------------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    req = json.loads(Path(argv[1]).read_text())
    result_path = Path(req["result"])
    try:
        t = time.perf_counter()
        try:
            import bpy
        except ImportError as exc:
            import importlib.util

            if importlib.util.find_spec("bpy") is None:
                raise WorkerError("Blender as a Python module is not installed: pip install bpy==5.0.1") from None
            low_memory = any(k in str(exc).lower() for k in ("map segment", "allocate", "memory"))
            raise WorkerError(f"Blender could not start ({exc})", "memory" if low_memory else "input") from None
        _reset(bpy)
        start = time.perf_counter() - t
        if req["op"] in ("export", "animate_file"):
            with np.load(req["arrays"]) as z:
                arrays = {k: z[k] for k in z.files}
            result = (_export if req["op"] == "export" else _animate_file)(bpy, req, arrays)
            out_arrays: dict = {}
        elif req["op"] == "import":
            result, out_arrays = _import(bpy, req)
        elif req["op"] == "version":
            result, out_arrays = {"version": bpy.app.version_string}, {}
        else:
            raise RuntimeError(f"unknown op {req['op']!r}")
        result.setdefault("seconds", {})["start_blender"] = start
        if out_arrays:
            np.savez(req["result_arrays"], **out_arrays)
        result["ok"] = True
    except WorkerError as exc:
        result = {"ok": False, "error": str(exc), "kind": exc.kind}
    except MemoryError:
        result = {"ok": False, "error": "ran out of memory", "kind": "memory"}
    except RecursionError:  # the importers walk the node tree recursively
        result = {"ok": False, "error": "the file's bone or node hierarchy is nested too deeply to read "
                  "(thousands of levels; real rigs have tens)"}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides what the user sees
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
