"""What Blender shows a user who opens a file with its importers' default options (File > Import), as JSON.

    python blender_probe.py FILE OUT.json FRAME [FRAME ...]

Run in a subprocess by the tests (bpy must own its process); depends on bpy and numpy only. Reports the armature
object's transform, its bones (rest heads in world space, parents), the skinned meshes' world bounds at rest,
the world heads of every bone at the given frames of the first take, and each material's base-colour and
normal-map images as Blender's own material wrapper finds them (what its exporters read).
"""
from __future__ import annotations

import json
import sys

import numpy as np


def main(path: str, out: str, frames: list[int]) -> None:
    import bpy
    from bpy_extras import node_shader_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    if path.lower().endswith(".fbx"):
        bpy.ops.import_scene.fbx(filepath=path)
    else:
        bpy.ops.import_scene.gltf(filepath=path)
    scene = bpy.context.scene
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    arm = max(arms, key=lambda o: len(o.data.bones))
    loc, rot, scale = arm.matrix_world.decompose()
    report: dict = {"armature": arm.name, "location": list(loc), "rotation": list(rot), "scale": list(scale)}
    A = np.array(arm.matrix_world)
    report["bones"] = {b.name: {"parent": b.parent.name if b.parent else None,
                                "head": (A @ np.append(np.array(b.head_local), 1.0))[:3].tolist()}
                       for b in arm.data.bones}
    arm.data.pose_position = "REST"
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for ob in bpy.data.objects:
        if ob.type != "MESH":
            continue
        me = ob.evaluated_get(depsgraph).to_mesh()
        co = np.empty(len(me.vertices) * 3, dtype=np.float64)
        me.vertices.foreach_get("co", co)
        world = co.reshape(-1, 3) @ np.array(ob.matrix_world)[:3, :3].T + np.array(ob.matrix_world)[:3, 3]
        if len(world):
            lo, hi = np.minimum(lo, world.min(0)), np.maximum(hi, world.max(0))
        ob.evaluated_get(depsgraph).to_mesh_clear()
    report["mesh_bounds"] = [lo.tolist(), hi.tolist()] if np.isfinite(lo).all() else None
    arm.data.pose_position = "POSE"
    report["frames"] = {}
    for f in frames:
        scene.frame_set(f)
        report["frames"][str(f)] = {pb.name: (A @ np.append(np.array(pb.head), 1.0))[:3].tolist()
                                    for pb in arm.pose.bones}
    report["materials"] = {}
    for mat in bpy.data.materials:
        if mat.users == 0:
            continue
        wrap = node_shader_utils.PrincipledBSDFWrapper(mat, is_readonly=True)
        report["materials"][mat.name] = {
            key: (tex.image.name if tex is not None and tex.image is not None else None)
            for key, tex in (("base_color", wrap.base_color_texture), ("normal_map", wrap.normalmap_texture))}
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]])
