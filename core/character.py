"""The Character type: a skeleton, a skinned rest mesh, body-part labels, and its own ``.npz`` storage.

Where characters come from (built-ins, the user's library, FBX/GLB files) is :mod:`core.character_library`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .kinematics import dense_skin_weights, linear_blend_skinning, skinning_transforms
from .motion import Motion
from .skeleton import Skeleton

__all__ = ["Character", "PART_NAMES"]

# Per-vertex body-part labels. "arm" vertices (arms and hands) are the limbs of the penetration loss;
# torso and head are the body they must not enter.
PART_NAMES: tuple[str, ...] = ("torso", "head", "arm", "leg")


@dataclass(eq=False)
class Character:
    """A rigged, skinned character.

    name: display name.
    skeleton: its :class:`Skeleton` (rest pose = T-pose for built-ins).
    rest_vertices: ``(V, 3)`` mesh vertices in the rest pose, metres.
    faces: ``(F, 3)`` triangle vertex indices, counter-clockwise seen from outside.
    skin_indices: ``(V, 4)`` joint indices of the top-4 skin weights.
    skin_weights: ``(V, 4)`` skin weights, rows summing to 1.
    parts: ``(V,)`` index into :data:`PART_NAMES` for each vertex.
    colors: optional ``(V, 3)`` vertex colours in [0, 1].
    source: the FBX/GLB file the character was imported from, if any: exports animate that file itself, so the
        user gets their own character back whole (meshes, materials, textures, every bone).
    """

    name: str
    skeleton: Skeleton
    rest_vertices: np.ndarray
    faces: np.ndarray
    skin_indices: np.ndarray
    skin_weights: np.ndarray
    parts: np.ndarray
    colors: np.ndarray | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        V = len(self.rest_vertices)
        checks = {"rest_vertices": (V, 3), "skin_indices": (V, 4), "skin_weights": (V, 4), "parts": (V,)}
        for attr, shape in checks.items():
            if np.shape(getattr(self, attr)) != shape:
                raise ValueError(f"{attr} must have shape {shape}, got {np.shape(getattr(self, attr))}")
        if np.ndim(self.faces) != 2 or np.shape(self.faces)[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {np.shape(self.faces)}")
        if self.skin_indices.max(initial=0) >= self.skeleton.num_joints:
            raise ValueError("skin_indices refer to joints the skeleton does not have")

    @property
    def height(self) -> float:
        """Rest-pose height of the mesh, metres."""
        return float(np.ptp(self.rest_vertices[:, 1]))

    @property
    def limb_mask(self) -> np.ndarray:
        """``(V,)`` True for arm and hand vertices."""
        return self.parts == PART_NAMES.index("arm")

    def dense_weights(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(V, J)`` skin weights."""
        return dense_skin_weights(torch.as_tensor(self.skin_indices), torch.as_tensor(self.skin_weights, dtype=dtype),
                                  self.skeleton.num_joints)

    def posed_vertices(self, motion: Motion, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(T, V, 3)`` skinned vertices for a motion on this character's skeleton."""
        if motion.skeleton.names != self.skeleton.names:
            raise ValueError(f"motion is on another skeleton than character {self.name!r}'s")
        transforms = skinning_transforms(motion.fk(dtype), self.skeleton.rest_pose(dtype))
        return linear_blend_skinning(torch.as_tensor(self.rest_vertices, dtype=dtype), self.dense_weights(dtype),
                                     transforms)

    # -- storage ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        sk = self.skeleton
        extra = {} if self.colors is None else {"colors": self.colors.astype(np.float32)}
        if self.source is not None:  # by name: the library keeps the file beside the .npz
            extra["source"] = np.array(Path(self.source).name)
        np.savez_compressed(path, name=self.name, joint_names=np.array(sk.names), parents=np.array(sk.parents),
                            offsets=sk.offsets, rest_rotations=sk.rest_rotations, rest_vertices=self.rest_vertices,
                            faces=self.faces, skin_indices=self.skin_indices, skin_weights=self.skin_weights,
                            parts=self.parts, **extra)

    @classmethod
    def load(cls, path: str | Path) -> "Character":
        with np.load(path) as z:
            sk = Skeleton(tuple(str(n) for n in z["joint_names"]), tuple(int(p) for p in z["parents"]),
                          z["offsets"], z["rest_rotations"])
            return cls(str(z["name"]), sk, z["rest_vertices"].astype(np.float64), z["faces"].astype(np.int64),
                       z["skin_indices"].astype(np.int64), z["skin_weights"].astype(np.float64),
                       z["parts"].astype(np.int64), z["colors"].astype(np.float64) if "colors" in z else None,
                       _source_beside(Path(path), str(z["source"])) if "source" in z else None)

    def __repr__(self) -> str:
        return (f"Character({self.name!r}, {self.height:.2f} m, {self.skeleton.num_joints} joints, "
                f"{len(self.rest_vertices)} vertices)")


def _source_beside(npz: Path, name: str) -> Path | None:
    """The character's source file kept beside its ``.npz`` (a bare file name, never a path), if it is there."""
    candidate = npz.parent / Path(name).name
    return candidate if Path(name).name == name and candidate.is_file() else None
