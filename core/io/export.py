"""Writing an animated character as FBX, GLB or BVH.

FBX and GLB go through Blender's own exporters in a worker process (:mod:`core.io.blender`); BVH through
:func:`core.io.bvh.write_bvh`. What a file holds: one armature object named ``Armature`` with Mixamo bone names
(``mixamorig:Hips``, ...), the skinned mesh (unless skeleton-only) with its vertex colours, and one take named
``mixamo.com`` at the clip's frame rate, keyed on every frame, no leaf bones.

Size and orientation (the two complaints users have about other tools: characters lying on their back, and
100x too big or small). An FBX here is laid out like Mixamo's own downloads, which Unity, Unreal and Blender
all import right: Y up, facing +Z, ``UnitScaleFactor = 1`` (centimetres) with coordinates in centimetres, and
identity transforms on the root nodes (no -90° X rotation, no 100x scale on the armature). Blender's exporter
is asked for ``axis_up='Y'``, ``axis_forward='-Z'``, ``apply_unit_scale=True`` and ``FBX_SCALE_NONE`` (the
unit scale goes into the coordinates, the file's unit stays the centimetre), and the worker gives the armature
object the inverse of that global transform so nothing is left on the root node (see blender_worker.py). So:

* Unity ("Convert Units" on, its default) reads centimetres as 0.01 m: a 1.7 m character is 1.7 units, with
  scale 1 on every transform, standing up.
* Unreal works in centimetres: 170 cm, standing up, without its "convert scene unit" option.
* Blender's importer applies the file's unit (0.01 on the armature object) and Y-up: 1.7 m, standing up.

``FBX_SCALE_UNITS`` (metres with ``UnitScaleFactor = 100``) would be as right on paper, but leaves Unreal
converting the scene's unit and differs from the Mixamo files engines are tuned on; ``FBX_SCALE_ALL`` without
``bake_space_transform`` puts the axis change on the root node, and ``bake_space_transform`` is marked
experimental and "known to be broken with armatures/animations" by Blender.

FBX targets (``target``; GLB and BVH are the same for every target):

* ``"unity"`` (the default): the Mixamo-like layout above, what Unity is used to from Mixamo: "Convert Units"
  turns the centimetres into metres, the Humanoid avatar maps the ``mixamorig:`` names by itself, and Humanoid
  root motion comes from the body's centre of mass, so no root bone is needed.
* ``"unreal"``: the same layout plus one bone ``root`` at the origin above the hips (above every top bone of an
  uploaded rig), keyed with the hips' travel on the ground plane ``(x - x_rest, 0, z - z_rest)``
  (:func:`ground_travel`); the hips keep their height and sway under it, so every joint stays where the motion
  puts it. Unreal wants a single root bone and takes root motion ("Enable Root Motion") from it; with the Mixamo
  layout that bone is the hips, and the root motion would be their whole path, bob and sway included. The
  armature object is named ``Armature``: Unreal (4.24 and later) drops a root node of that name instead of
  adding it as an extra bone. Centimetres with identity root nodes, as for Unity, so Unreal's "convert scene
  unit" is not needed.
* ``"blender"``: Blender's own axes and metres: ``axis_up='Z'``, ``axis_forward='Y'`` (no axis change) and
  ``FBX_SCALE_UNITS`` (coordinates in metres, ``UnitScaleFactor = 100``), the armature object the identity.
  Blender's importer reads a Mixamo-layout file as centimetres and puts scale 0.01 and a 90° X rotation on
  the armature object; this one comes in with scale 1 and no rotation, 1.7 m tall, standing on Z.

An uploaded character's armature object first gets the target's transform (the identity root node of the
Mixamo layout, or Blender's identity) with its old transform moved into its bones and meshes (see
blender_worker.py ``_relayout``): nothing moves in the world, and Soldier.glb's 180° / 0.1 root node, say,
does not reach an engine (Unreal would drop it with the ``Armature`` node).

A GLB is glTF's native Y-up metres (the glTF exporter converts Blender's Z-up itself).

Bone orientations: Blender bones point along their local Y axis. A skeleton whose rests carry orientations
(imported from FBX/GLB) keeps them as the bones' frames; a BVH-style skeleton (identity rests) gets frames
that aim Y at the main child with the least twist from the parent. With ``K_j = R_rest_world_j⁻¹ · F_j``
(``F_j`` the bone's world frame), a local rotation ``q`` becomes the pose rotation ``K_j⁻¹ · q · K_j``
(= ``R_rest⁻¹ · q · R_rest`` in the bone's frame) and the root's translation ``F_0⁻¹ (p(t) - p_rest)``.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..character import Character
from ..errors import InputError
from ..motion import Motion
from ..rotations import matrix_to_quat, quat_conjugate, quat_make_continuous, quat_multiply
from ..skeleton import CANONICAL_JOINTS, Skeleton, SkeletonMappingError, canonical_main_child, map_to_canonical
from .blender import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, run_blender_worker
from .bvh import write_bvh
from .uploads import check_glb_self_contained

__all__ = ["export_character_motion", "export_character_motion_files", "export_bone_names", "bone_frames", "same_rig",
           "on_rig", "ground_travel", "EXPORT_FORMATS", "EXPORT_TARGETS", "TAKE_NAME", "MIXAMO_PREFIX"]

EXPORT_FORMATS = ("fbx", "glb", "bvh")
EXPORT_TARGETS = ("unity", "unreal", "blender")  # what an FBX is laid out for (module docstring); unity: Mixamo's
TAKE_NAME = "mixamo.com"
MIXAMO_PREFIX = "mixamorig:"
BLENDER_NAME_BYTES = 63
MAX_COORDINATE_M = 10_000.0  # anything farther than 10 km from the origin is a unit error, not a motion


def export_bone_names(skeleton: Skeleton) -> tuple[str, ...]:
    """Mixamo names for a rig's bones, as Unity's and Unreal's humanoid mappers expect them.

    A Mixamo-named rig (any or no ``mixamorig*:`` prefix) gets ``mixamorig:`` on every bone. Another humanoid
    rig gets ``mixamorig:<canonical name>`` on its 22 canonical bones and keeps its other names. A rig that does
    not map onto the canonical joints keeps all its names.
    """
    try:
        mapping = map_to_canonical(skeleton)
    except SkeletonMappingError:
        mapping = None
    names = list(skeleton.names)
    if mapping is not None and mapping.profile == "mixamo":
        names = [MIXAMO_PREFIX + re.sub(r"^mixamorig\d*_", "", n.rsplit(":", 1)[-1], flags=re.IGNORECASE)
                 for n in names]
    elif mapping is not None:
        for k, i in enumerate(mapping.indices):
            if i >= 0:
                names[i] = MIXAMO_PREFIX + CANONICAL_JOINTS[k]
    names = [n.encode()[:BLENDER_NAME_BYTES].decode(errors="ignore") for n in names]  # Blender cuts longer names
    seen: dict[str, int] = {}
    unique = []
    for n in names:  # a renamed (or cut) bone may collide with a kept name: number the later one
        count = seen.get(n, 0)
        seen[n] = count + 1
        unique.append(n if count == 0 else f"{n}.{count:03d}")
    return tuple(unique)


def _main_children(skeleton: Skeleton) -> list[int | None]:
    """For each joint, the child its bone should point at (None for leaves)."""
    J = skeleton.num_joints
    toward: dict[int, int] = {}
    try:
        idx = map_to_canonical(skeleton).indices
        for k, i in enumerate(idx):
            c = canonical_main_child(k)
            if i >= 0 and c is not None and idx[c] >= 0:
                toward[i] = idx[c]
    except SkeletonMappingError:
        pass
    out: list[int | None] = []
    for j in range(J):
        kids = skeleton.children(j)
        if not kids:
            out.append(None)
            continue
        target = toward.get(j)
        pick = kids[0]
        if target is not None:
            for c in kids:
                if c == target or skeleton.is_ancestor(c, target):
                    pick = c
                    break
        out.append(pick)
    return out


def bone_frames(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """World frames ``(J, 3, 3)`` (columns = bone X, Y, Z; Y along the bone) and lengths ``(J,)`` of exported bones.

    Rests that carry orientations (any non-identity ``rest_rotations``) are kept as they are; identity rests get
    frames aiming Y at the main child, twisted as little as possible from the parent's frame.
    """
    rest = skeleton.rest_pose()
    P = rest.positions.numpy()
    W = rest.rotations.numpy()
    J = skeleton.num_joints
    main = _main_children(skeleton)
    lengths = np.zeros(J)
    for j in range(J):
        c = main[j]
        lengths[j] = np.linalg.norm(P[c] - P[j]) if c is not None else 0.0
    keep = not np.allclose(skeleton.rest_rotations, [1.0, 0, 0, 0], atol=1e-9)
    frames = W.copy() if keep else np.zeros((J, 3, 3))
    for j, p in enumerate(skeleton.parents):
        if lengths[j] < 1e-4:  # leaves and joints on top of their child: half the parent's bone
            lengths[j] = 0.5 * lengths[p] if p >= 0 else 0.1
        lengths[j] = max(lengths[j], 0.01)
        if keep:
            continue
        parent = frames[p] if p >= 0 else np.eye(3)
        c = main[j]
        d = P[c] - P[j] if c is not None else None
        if d is None or np.linalg.norm(d) < 1e-4:
            y = parent[:, 1]
        else:
            y = d / np.linalg.norm(d)
        x = parent[:, 0] - (parent[:, 0] @ y) * y
        if np.linalg.norm(x) < 1e-3:  # bone along the parent's X: carry the parent's Z instead
            z = parent[:, 2] - (parent[:, 2] @ y) * y
            z /= np.linalg.norm(z)
            x = np.cross(y, z)
        x /= np.linalg.norm(x)
        frames[j] = np.stack([x, y, np.cross(x, y)], axis=1)
    return frames, lengths


def _pose_channels(motion: Motion, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender pose-bone quaternions ``(T, J, 4)`` and the root bone's location ``(T, 3)`` (metres)."""
    sk = motion.skeleton
    rest = sk.rest_pose()
    F = torch.as_tensor(frames)
    K = matrix_to_quat(rest.rotations.transpose(-1, -2) @ F)  # (J, 4): rest frame -> bone frame
    q = torch.as_tensor(motion.rotations)
    pose = quat_multiply(quat_conjugate(K), quat_multiply(q, K))
    pose = quat_make_continuous(pose, dim=0)
    root = (motion.root_positions - sk.offsets[0]) @ frames[0]  # F_0^T (p - p_rest), row form
    return pose.numpy(), root


def ground_travel(motion: Motion) -> np.ndarray:
    """``(T, 3)`` the root's path on the ground plane from its rest place: ``(x - x_rest, 0, z - z_rest)``, metres
    (what an Unreal ``root`` bone carries)."""
    travel = motion.root_positions - motion.skeleton.offsets[0]
    travel[:, 1] = 0.0
    return travel


def _build_request(character: Character | None, motion: Motion) -> tuple[dict, dict[str, np.ndarray]]:
    """The worker builds the file from our data: one armature, one merged mesh with vertex colours."""
    sk = motion.skeleton
    frames, lengths = bone_frames(sk)
    pose, root = _pose_channels(motion, frames)
    arrays: dict[str, np.ndarray] = {"heads": sk.rest_positions(), "frames": frames, "lengths": lengths,
                                     "pose": pose, "root_location": root}
    if character is not None:
        arrays.update(vertices=character.rest_vertices, faces=character.faces, skin_indices=character.skin_indices,
                      skin_weights=character.skin_weights)
        if character.colors is not None:
            arrays["colors"] = np.clip(character.colors, 0.0, 1.0)
    request = {"op": "export", "bone_names": list(export_bone_names(sk)), "parents": list(sk.parents),
               "fps": float(motion.fps), "take": TAKE_NAME, "has_mesh": character is not None}
    return request, arrays


def _animate_file_request(source: Path, motion: Motion, skeleton_only: bool) -> tuple[dict, dict[str, np.ndarray]]:
    """The worker animates the user's own file: our joints' world transforms key its bones of the same names."""
    fmt = source.suffix.lower().lstrip(".")
    if fmt == "glb":
        check_glb_self_contained(source)  # checked at import already; the file may have been swapped since
    pose = motion.fk(torch.float64)
    arrays = {"world_rotations": pose.rotations.numpy(), "world_positions": pose.positions.numpy(),
              "rest_positions": motion.skeleton.rest_positions()}
    request = {"op": "animate_file", "source": str(source.resolve()), "source_format": fmt,
               "joint_names": list(motion.skeleton.names), "fps": float(motion.fps), "take": TAKE_NAME,
               "skeleton_only": skeleton_only}
    return request, arrays


def same_rig(a: Skeleton, b: Skeleton, tolerance_m: float = 1e-4) -> bool:
    """Whether two skeletons are the same rig: names, hierarchy, rest offsets (the root's aside) and orientations."""
    return (a.names == b.names and a.parents == b.parents
            and np.allclose(a.offsets[1:], b.offsets[1:], atol=tolerance_m)
            and np.allclose(np.abs(np.sum(a.rest_rotations * b.rest_rotations, axis=1)), 1.0, atol=1e-6))


def on_rig(motion: Motion, skeleton: Skeleton, tolerance_m: float = 1e-4) -> Motion | None:
    """``motion`` on ``skeleton`` when it plays on that very rig, its joints perhaps listed in another order (a
    BVH lists them depth first: a built-in character's fingers follow their hand there, not the 22 body joints);
    None when it is another rig (see :func:`same_rig`)."""
    names = motion.skeleton.names
    if sorted(names) != sorted(skeleton.names) or len(set(names)) != len(names):
        return None
    order = [names.index(n) for n in skeleton.names]
    sk = motion.skeleton
    parents = tuple(-1 if sk.parents[i] < 0 else skeleton.names.index(names[sk.parents[i]]) for i in order)
    reordered = Skeleton(skeleton.names, parents, sk.offsets[order], sk.rest_rotations[order])
    if not same_rig(reordered, skeleton, tolerance_m):
        return None
    return Motion(skeleton, motion.rotations[:, order], motion.root_positions, motion.fps, motion.name)


def _check(character: Character | None, motion: Motion) -> None:
    if motion.num_frames == 0:
        raise InputError("the motion has no frames: nothing to export")
    if character is not None and not same_rig(character.skeleton, motion.skeleton):
        raise InputError(f"the motion plays on another skeleton than character {character.name!r}: retarget it "
                         "onto the character first (core.retarget.copy.copy_retarget)")
    if not (np.isfinite(motion.rotations).all() and np.isfinite(motion.root_positions).all()):
        raise InputError("the motion has non-finite rotations or root positions")
    reach = max(float(np.abs(motion.root_positions).max()), float(np.abs(motion.skeleton.offsets).max()))
    if reach > MAX_COORDINATE_M:
        raise InputError(f"the motion reaches {reach:.3g} m from the origin: wrong units? (limit "
                         f"{MAX_COORDINATE_M:g} m)")
    if character is not None and not 0.05 <= character.height <= 100.0:
        raise InputError(f"character {character.name!r} is {character.height:.3g} m tall: wrong units?")


def _format_of(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"cannot export {path.name!r}: the file name must end in "
                         + ", ".join("." + f for f in EXPORT_FORMATS))
    return fmt


def export_character_motion(character: Character | None, motion: Motion, path: str | os.PathLike, *,
                            skeleton_only: bool = False, target: str = "unity", timeout: float = DEFAULT_TIMEOUT_S,
                            memory_mb: int = DEFAULT_MEMORY_MB) -> Path:
    """Write ``motion`` played by ``character`` to ``path`` (.fbx, .glb or .bvh, by its suffix); see the module
    docstring for what the file holds.

    Args:
        character: the skinned character, or None for a skeleton-only file (as does ``skeleton_only``).
        motion: a motion on the character's skeleton (``motion.skeleton.names == character.skeleton.names``).
        path: the output file; written atomically.
        skeleton_only: write the armature and its animation only.
        target: what an FBX is laid out for, one of :data:`EXPORT_TARGETS` (module docstring); GLB/BVH ignore it.
        timeout, memory_mb: limits for the Blender worker.

    Raises:
        InputError: no frames, a motion on another skeleton, non-finite or absurd values, an unknown suffix or
            target, or Blender failing (the message says why).
    """
    return export_character_motion_files(character, motion, [path], skeleton_only=skeleton_only, target=target,
                                         timeout=timeout, memory_mb=memory_mb)[0]


def export_character_motion_files(character: Character | None, motion: Motion,
                                  paths: Sequence[str | os.PathLike], *, skeleton_only: bool = False,
                                  target: str = "unity", timeout: float = DEFAULT_TIMEOUT_S,
                                  memory_mb: int = DEFAULT_MEMORY_MB,
                                  check: Callable[[], None] | None = None) -> list[Path]:
    """Like :func:`export_character_motion` for several files at once (one Blender start for all of them).

    ``check()`` is called while Blender works (see :func:`~core.io.blender.run_blender_worker`): whatever it raises
    (a cancelled job) stops the worker, and no file is written."""
    if target not in EXPORT_TARGETS:
        raise InputError(f"unknown FBX target {target!r}: choose {', '.join(EXPORT_TARGETS)}")
    outputs = [Path(p) for p in paths]
    formats = [_format_of(p) for p in outputs]
    source = character.source if character is not None and character.source is not None else None
    if source is not None and not Path(source).is_file():
        source = None  # a library entry whose file went missing: rebuild the character instead
    if skeleton_only:
        character = None
    _check(character, motion)
    for p in outputs:
        if not p.parent.is_dir():
            raise InputError(f"cannot write {str(p)!r}: folder {str(p.parent)!r} does not exist")

    blender_jobs = [(p, f) for p, f in zip(outputs, formats) if f != "bvh"]
    for p, f in zip(outputs, formats):
        if f == "bvh":
            write_bvh(motion, p)
    if not blender_jobs:
        return outputs

    # Blender writes into a private temporary folder, not next to the outputs: an FBX records where its embedded
    # textures were written, and beside the outputs that was the job's folder (in the page's history: the
    # browser's hash and the job id), readable by whoever the user later shares the file with.
    scratch = Path(tempfile.mkdtemp(prefix="smt-export-"))
    staged = [scratch / f"result{i}{p.suffix}" for i, (p, _) in enumerate(blender_jobs)]
    if source is not None:
        request, arrays = _animate_file_request(Path(source), motion, skeleton_only)
    else:
        request, arrays = _build_request(character, motion)
    if target == "unreal":
        arrays["travel"] = ground_travel(motion)
        if source is None:  # under the root bone the hips keep what is left of their path: F_0^T (p - p_rest - travel)
            arrays["root_location_under_root"] = arrays["root_location"] - arrays["travel"] @ arrays["frames"][0]
    request["target"] = target
    request["outputs"] = [{"path": str(s.resolve()), "format": f} for s, (_, f) in zip(staged, blender_jobs)]
    names = ", ".join(p.name for p, _ in blender_jobs)
    try:
        run_blender_worker(request, arrays, what=f"writing {names}", timeout=timeout, memory_mb=memory_mb,
                           check=check)
        for s, (p, _) in zip(staged, blender_jobs):
            partial = p.with_name(f".{p.stem}.{os.getpid()}.partial{p.suffix}")
            try:
                shutil.copyfile(s, partial)  # then an atomic rename where the output lives
                os.chmod(partial, 0o644)
                os.replace(partial, p)
            finally:
                partial.unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outputs
