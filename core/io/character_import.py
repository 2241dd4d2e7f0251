"""Reading users' characters and animations from FBX and GLB files.

The file is parsed by Blender's importers in the worker process (:mod:`core.io.blender`, with time and memory
limits: these files come from strangers); this module turns what Blender saw into our types:

* :func:`import_character` → a :class:`~core.character.Character`: the skeleton with its rest pose and bone
  orientations (``Skeleton.rest_rotations`` are the files' bone frames, as Blender imports them: FBX with
  ``automatic_bone_orientation`` off, glTF with the "Blender" bone heuristic), every mesh skinned to the
  armature or hanging from one of its bones merged into one (top-4 weights), vertex colours (a colour attribute,
  else the materials' base colour, or their base-colour texture sampled at each vertex when it is embedded), body-part labels from the skin
  weights, and the height.
* :func:`import_motions` → one :class:`~core.motion.Motion` per animation in the file (FBX takes, glTF
  animations), sampled at every frame: FBX at the file's frame rate from time 0 (``anim_offset=0``), glTF (which
  has no frame rate) at :data:`GLTF_FPS`.

Conventions (DESIGN §2): metres, Y up, facing +Z, quaternions (w, x, y, z). Blender's Z-up world maps to ours by
``ours = C^T · blender`` (``C`` as in blender_worker.py); FBX/glTF units are applied by the importers.

Rig repairs, so that the skeleton maps onto the canonical 22 joints (:func:`~core.skeleton.map_to_canonical`):

* glTF leaf nodes outside the skin (``Foot.L_end``, ``mixamorig:HeadTop_End``) become end-site joints.
* A canonical joint that does not hang below its canonical parent (IK rigs hang the feet from the root, as
  RobotExpressive does) is re-parented there. Its world rest pose is unchanged; in a motion its offset from the
  new parent is the rest one (exact where the IK chain reached its target).
* The skeleton is rooted at the hips: bones above or beside them (a ``Root``/``Body`` bone, IK poles) are left
  out, and their skin weights go to the hips. The hips' world motion is kept exactly.

Translation keys on joints other than the root, and scale keys, cannot be carried by a :class:`Motion`; when
they move a joint by more than 1 mm, a warning says which.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..character import PART_NAMES, Character
from ..errors import InputError
from ..limits import MAX_JOINTS
from ..motion import Motion
from ..rotations import matrix_to_quat, quat_make_continuous
from ..skeleton import (CANONICAL_JOINTS, CANONICAL_PARENTS, Skeleton, SkeletonMappingError, map_to_canonical)
from .blender import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, run_blender_worker
from .uploads import check_glb_self_contained, check_input_file

__all__ = ["import_character", "import_motions", "import_file", "read_motion_file", "ImportedFile", "CharacterImportError",
           "IMPORT_SUFFIXES", "GLTF_FPS", "MAX_FILE_BYTES"]

# .gltf (JSON with external files) is left out on purpose: its URIs could point the importer at any file here.
IMPORT_SUFFIXES = (".fbx", ".glb")
GLTF_FPS = 30  # glTF stores seconds; animations are sampled at this rate
MAX_FILE_BYTES = 512 << 20
MAX_FRAMES = 200_000
HEIGHT_RANGE_M = (0.1, 20.0)
C = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # ours -> Blender; Blender -> ours is C.T

# Body part of each canonical joint (core.character.PART_NAMES: torso, head, arm, leg); other joints take the
# part of their nearest canonical ancestor.
_CANONICAL_PART = {n: (1 if n in ("Neck", "Head") else 2 if ("Arm" in n or "Hand" in n) else
                       3 if any(k in n for k in ("UpLeg", "Leg", "Foot", "Toe")) else 0) for n in CANONICAL_JOINTS}


class CharacterImportError(InputError):
    """A character or animation file that cannot be used (the message says why)."""


@dataclass
class ImportedFile:
    """What one file gave: its skeleton, the character (when a mesh was asked for), motions and warnings.

    armature: the name of the file's armature object; meshes: the merged meshes' names.
    """

    skeleton: Skeleton
    character: Character | None = None
    motions: list[Motion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    armature: str = ""
    meshes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------

def _check_file(path: Path) -> str:
    """The importer's format for ``path``, once the file passed the upload checks (:mod:`core.io.uploads`)."""
    suffix = path.suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise CharacterImportError(f"cannot read {path.name!r}: expected a file ending in "
                                   + ", ".join(IMPORT_SUFFIXES))
    check_input_file(path, what="character or animation file", max_bytes=MAX_FILE_BYTES)
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as exc:
        raise CharacterImportError(f"cannot read {path.name!r}: {exc.strerror or exc}") from None
    if suffix == ".fbx":
        if not head.startswith(b"Kaydara FBX Binary"):
            kind = "an ASCII FBX" if head.lstrip().startswith((b";", b"FBXHeaderExtension")) else "not an FBX file"
            raise CharacterImportError(f"{path.name}: {kind}; Blender reads binary FBX 7.1 or later (re-export it "
                                       "as binary FBX, e.g. from Blender, Maya or Mixamo)")
        return "fbx"
    if not head.startswith(b"glTF"):
        raise CharacterImportError(f"{path.name}: not a binary glTF (GLB) file")
    check_glb_self_contained(path)
    return "glb"


def _rotation_part(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest rotations ``(..., 3, 3)`` to the 3x3 blocks of ``(..., 4, 4)`` matrices, and their scales ``(..., 3)``."""
    A = m[..., :3, :3]
    U, S, Vt = np.linalg.svd(A)
    R = U @ Vt
    flip = np.linalg.det(R) < 0  # a mirrored transform: keep a proper rotation (the mirror shows in the scales)
    if flip.any():
        U[flip, :, -1] *= -1
        R = U @ Vt
    return R, S


def _to_ours(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World rotations ``(..., 3, 3)``, positions ``(..., 3)`` and scales from Blender world ``(..., 4, 4)``."""
    R, S = _rotation_part(m)
    return C.T @ R, m[..., :3, 3] @ C, S


def _topological(parents: list[int], root: int) -> list[int]:
    """Joints below ``root`` (itself first), parents before children, children in index order."""
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(p, []).append(j)
    order, stack = [], [root]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    return order


def _repair_hierarchy(names: list[str], parents: list[int], ends: list[bool]) -> tuple[list[int], list[int], list[str]]:
    """Re-parent canonical joints below their canonical parents and root the skeleton at the hips.

    Returns the kept joints in their new topological order (old indices), their new parents (new indices) and
    notes for the user.
    """
    J = len(names)
    rough = Skeleton(names, parents, np.zeros((J, 3)), end_sites=ends) if _is_topological(parents) else None
    if rough is None:  # pragma: no cover - the worker sends bones parents-first
        raise CharacterImportError("the skeleton's bones are not ordered parents-first")
    mapping = map_to_canonical(rough, check_hierarchy=False)
    idx = mapping.indices
    parents = list(parents)
    notes = []

    def is_ancestor(a: int, b: int) -> bool:
        while b >= 0:
            b = parents[b]
            if b == a:
                return True
        return False

    for k, i in enumerate(idx):
        if i < 0 or k == 0:
            continue
        p = CANONICAL_PARENTS[k]
        while p >= 0 and idx[p] < 0:
            p = CANONICAL_PARENTS[p]
        target = idx[p]
        if not is_ancestor(target, i):
            if is_ancestor(i, target):
                raise SkeletonMappingError(
                    f"joint {names[i]!r} (canonical {CANONICAL_JOINTS[k]}) sits above {names[target]!r} "
                    f"(canonical {CANONICAL_JOINTS[p]}) in this rig: not a humanoid hierarchy")
            notes.append(f"{names[i]} re-parented from {names[parents[i]] if parents[i] >= 0 else 'the root'} "
                         f"to {names[target]}")
            parents[i] = target
    hips = idx[0]
    order = _topological(parents, hips)
    dropped = [names[j] for j in range(J) if j not in set(order)]
    if dropped:
        notes.append(f"skeleton rooted at {names[hips]}; left out {len(dropped)} bones above or beside it: "
                     + ", ".join(dropped[:8]) + (" ..." if len(dropped) > 8 else ""))
    new_index = {old: new for new, old in enumerate(order)}
    new_parents = [-1 if n == 0 else new_index[parents[old]] for n, old in enumerate(order)]
    return order, new_parents, notes


def _is_topological(parents: list[int]) -> bool:
    return bool(parents) and parents[0] == -1 and all(0 <= p < j for j, p in enumerate(parents) if j > 0)


def _skeleton(names: list[str], parents: list[int], ends: list[bool], R: np.ndarray, P: np.ndarray) -> Skeleton:
    """A skeleton from world rest rotations ``(J, 3, 3)`` and positions ``(J, 3)`` (ours)."""
    J = len(names)
    local = np.empty((J, 3, 3))
    offsets = np.empty((J, 3))
    for j, p in enumerate(parents):
        if p < 0:
            local[j], offsets[j] = R[j], P[j]
        else:
            local[j] = R[p].T @ R[j]
            offsets[j] = R[p].T @ (P[j] - P[p])
    rest = matrix_to_quat(torch.as_tensor(local)).numpy()
    return Skeleton(tuple(names), tuple(parents), offsets, rest, tuple(ends))


def _motion(skeleton: Skeleton, world: np.ndarray, bone_of: list[int], info: dict) -> tuple[Motion, str]:
    """A motion from per-frame Blender world matrices ``(T, B, 4, 4)`` of the file's bones, and a note naming
    the joints that FK with the rest offsets cannot follow (translation keys below the root, scale keys)."""
    J = skeleton.num_joints
    T = world.shape[0]
    W = np.empty((T, J, 3, 3))
    pos = np.empty((T, J, 3))
    R_rest = torch.as_tensor(skeleton.rest_rotations)
    from ..rotations import quat_to_matrix

    rest_local = quat_to_matrix(R_rest).numpy()
    scale_dev = 0.0
    for j in range(J):
        b = bone_of[j]
        if b >= 0:
            R, p, S = _to_ours(world[:, b])
            W[:, j], pos[:, j] = R, p
            scale_dev = max(scale_dev, float(np.abs(S / S[:1].clip(1e-12) - 1).max()))
        else:  # an end site follows its parent rigidly
            p = skeleton.parents[j]
            W[:, j] = W[:, p] @ rest_local[j]
            pos[:, j] = pos[:, p] + W[:, p] @ skeleton.offsets[j]
    local = np.empty_like(W)
    for j, p in enumerate(skeleton.parents):
        parent_w = W[:, p] if p >= 0 else np.eye(3)
        local[:, j] = rest_local[j].T @ np.swapaxes(parent_w, -1, -2) @ W[:, j]
    q = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_quat(scalar_first=True).reshape(T, J, 4)  # scipy: fast
    q = quat_make_continuous(torch.as_tensor(q), dim=0).numpy()
    motion = Motion(skeleton, q, pos[:, 0].copy(), info["fps"], info["name"])
    # Where FK with the rest offsets puts each joint (its rotations are the file's, exactly), against the file.
    fk = np.empty_like(pos)
    for j, p in enumerate(skeleton.parents):
        fk[:, j] = pos[:, 0] if p < 0 else fk[:, p] + W[:, p] @ skeleton.offsets[j]
    drift = np.linalg.norm(fk - pos, axis=-1).max(axis=0)
    worst = [j for j in np.argsort(-drift)[:2] if drift[j] > 1e-3]
    note = ", ".join(f"{skeleton.names[j]} {drift[j] * 100:.1f} cm" for j in worst)
    return motion, (f"{info['name']}: {note}" if note else "")


def _take_name(action_name: str) -> str:
    """FBX takes come back as 'Armature|mixamo.com|Layer0': the take's own name."""
    parts = action_name.split("|")
    if len(parts) >= 3 and parts[-1].lower().startswith("layer"):
        return parts[-2]
    return parts[-1] if len(parts) == 2 else action_name


def _parts(skeleton: Skeleton, skin_indices: np.ndarray, skin_weights: np.ndarray) -> np.ndarray:
    """``(V,)`` body-part labels: the part with the largest summed skin weight at each vertex."""
    idx = map_to_canonical(skeleton).indices
    part_of_joint = np.zeros(skeleton.num_joints, dtype=np.int64)
    canonical_of = {i: k for k, i in enumerate(idx) if i >= 0}
    for j in range(skeleton.num_joints):
        a = j
        while a >= 0 and a not in canonical_of:
            a = skeleton.parents[a]
        part_of_joint[j] = _CANONICAL_PART[CANONICAL_JOINTS[canonical_of[a]]] if a >= 0 else 0
    votes = np.zeros((len(skin_indices), len(PART_NAMES)))
    np.add.at(votes, (np.arange(len(skin_indices))[:, None].repeat(4, 1), part_of_joint[skin_indices]), skin_weights)
    return votes.argmax(axis=1)


def import_file(path: str | os.PathLike, *, want_mesh: bool = True, want_animations: bool = True,
                timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                name: str | None = None) -> ImportedFile:
    """Read an FBX/GLB file: skeleton, character (``want_mesh``) and motions (``want_animations``).

    Raises:
        CharacterImportError: unreadable or unsupported file, no armature, no mesh (when asked for), an absurd
            size, too many frames; SkeletonMappingError: a rig that does not map onto the canonical 22 joints;
            BlenderWorkerError: Blender failed, ran out of time or memory.
    """
    path = Path(path)
    fmt = _check_file(path)
    request = {"op": "import", "path": str(path.resolve()), "format": fmt, "want_mesh": want_mesh,
               "want_animations": want_animations, "gltf_fps": GLTF_FPS, "max_frames": MAX_FRAMES}
    res = run_blender_worker(request, what=f"reading {path.name}", timeout=timeout, memory_mb=memory_mb)
    info, arrays = res.info, res.arrays
    notes = list(info.get("warnings", []))
    names, parents, ends = info["names"], info["parents"], info["end_sites"]
    if len(names) > MAX_JOINTS:
        raise CharacterImportError(f"{path.name}: the armature has {len(names)} bones; at most {MAX_JOINTS} are "
                                   "accepted")
    R_all, P_all, _ = _to_ours(arrays["rest_world"])

    order, new_parents, repair_notes = _repair_hierarchy(names, parents, ends)
    notes += repair_notes
    skeleton = _skeleton([names[o] for o in order], new_parents, [ends[o] for o in order], R_all[order], P_all[order])
    map_to_canonical(skeleton)  # the repaired rig must map with its hierarchy checked

    n_bones = ends.count(False)
    bone_of = [o if not ends[o] else -1 for o in order]
    out = ImportedFile(skeleton, warnings=notes, seconds=dict(info.get("seconds", {})), armature=info["armature"],
                       meshes=list(info.get("meshes", [])))
    out.seconds["worker_wall"] = res.seconds

    if want_mesh:
        if "vertices" not in arrays:
            raise CharacterImportError(f"{path.name}: no mesh is skinned to (or parented to) the skeleton "
                                       f"{info['armature']!r}: an animation-only file cannot be a character")
        out.character = _character(path, name or path.stem, skeleton, arrays, order, n_bones)
        out.skeleton = skeleton = out.character.skeleton  # the same rig, standing on the floor
    if want_animations:
        drifts = []
        for k, m in enumerate(info["motions"]):
            m = dict(m, name=_take_name(m["name"]))
            if m["frames"] < 1:
                continue
            motion, drift = _motion(skeleton, arrays[f"motion{k}"], bone_of, m)
            out.motions.append(motion)
            if drift:
                drifts.append(drift)
        if drifts:
            notes.append(f"{len(drifts)} of {len(out.motions)} animations translate or scale joints below the root, "
                         "which a Motion cannot carry (they keep their rest offsets; largest moves): "
                         + "; ".join(drifts[:4]) + (" ..." if len(drifts) > 4 else ""))
    for note in notes:
        warnings.warn(f"{path.name}: {note}", stacklevel=3)
    return out


def _character(path: Path, name: str, skeleton: Skeleton, arrays: dict, order: list[int], n_bones: int) -> Character:
    verts = arrays["vertices"] @ C  # Blender world -> ours (row vectors)
    faces = arrays["faces"].astype(np.int64)
    # File bone index -> new joint index; bones left out of the skeleton hand their weights to the root (hips).
    remap = np.zeros(n_bones, dtype=np.int64)
    for new, old in enumerate(order):
        if old < n_bones:
            remap[old] = new
    idx = remap[arrays["skin_indices"]]
    w = np.clip(arrays["skin_weights"], 0.0, None)
    total = w.sum(axis=1)
    bare = total <= 1e-8
    if bare.any():  # vertices weighted to nothing: give them to the nearest joint
        joints = skeleton.rest_positions()
        nearest = np.linalg.norm(verts[bare, None, :] - joints[None], axis=-1).argmin(axis=1)
        idx[bare] = nearest[:, None]
        w[bare] = [1.0, 0.0, 0.0, 0.0]
        total = w.sum(axis=1)
    w = w / total[:, None]
    # Stand the rest pose on the floor (y = 0) like the built-in characters: files put their origin anywhere
    # (RobotExpressive's is at the hips). Only the root's rest offset moves; motions set the root themselves.
    floor = float(verts[:, 1].min())
    verts = verts - [0.0, floor, 0.0]
    offsets = skeleton.offsets.copy()
    offsets[0, 1] -= floor
    skeleton = Skeleton(skeleton.names, skeleton.parents, offsets, skeleton.rest_rotations, skeleton.end_sites)
    height = float(np.ptp(verts[:, 1]))
    lo, hi = HEIGHT_RANGE_M
    if not lo <= height <= hi:
        raise CharacterImportError(f"{path.name}: the character is {height:.3g} m tall, outside {lo:g}-{hi:g} m "
                                   "(wrong units in the file?)")
    colors = arrays.get("colors")
    return Character(name, skeleton, verts, faces, idx, w, _parts(skeleton, idx, w),
                     None if colors is None else np.asarray(colors, dtype=np.float64), source=path.resolve())


def import_character(path: str | os.PathLike, *, name: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                     memory_mb: int = DEFAULT_MEMORY_MB) -> Character:
    """A :class:`Character` from a rigged, skinned FBX/GLB file (see the module docstring).

    Raises:
        CharacterImportError, SkeletonMappingError, BlenderWorkerError: as :func:`import_file`.
    """
    return import_file(path, want_mesh=True, want_animations=False, timeout=timeout, memory_mb=memory_mb,
                       name=name).character  # type: ignore[return-value]


def import_motions(path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT_S,
                   memory_mb: int = DEFAULT_MEMORY_MB) -> list[Motion]:
    """Every animation in an FBX/GLB file as a :class:`Motion` on the file's (repaired) skeleton.

    Returns an empty list for a file without animations.
    """
    return import_file(path, want_mesh=False, want_animations=True, timeout=timeout, memory_mb=memory_mb).motions


def read_motion_file(path: str | os.PathLike, take: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                     memory_mb: int = DEFAULT_MEMORY_MB) -> Motion:
    """One motion from a .bvh, .fbx or .glb file: the animation named ``take``, else the file's first.

    Raises:
        InputError: unreadable file, no animation in it, or no animation of that name.
    """
    path = Path(path)
    if path.suffix.lower() == ".bvh":
        from .bvh import read_bvh

        return read_bvh(path)
    motions = import_motions(path, timeout=timeout, memory_mb=memory_mb)
    if not motions:
        raise CharacterImportError(f"{path.name}: the file holds no animation")
    if take is None:
        return motions[0]
    for m in motions:
        if m.name == take:
            return m
    raise CharacterImportError(f"{path.name}: no animation named {take!r}; the file has "
                               + ", ".join(repr(m.name) for m in motions))
