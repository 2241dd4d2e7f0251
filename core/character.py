"""The Character type (skeleton + skinned rest mesh + body-part labels) and the built-in characters.

Built-in characters live in ``assets/characters/<name>.npz``; they are made by ``scripts/make_characters.py``
(no third-party assets). A character's rest pose is the canonical T-pose: facing +Z, Y up, feet on y = 0.

Users' own characters (FBX/GLB, read by :mod:`core.io.character_import`) are saved as ``<name>.npz`` in the user
library, :func:`user_characters_dir` (``$SMT_HOME/characters``, else ``$XDG_DATA_HOME/smt/characters``, else
``~/.local/share/smt/characters``); :func:`load_character` also takes such a name, or a path to a file.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .kinematics import dense_skin_weights, linear_blend_skinning, skinning_transforms
from .motion import Motion
from .skeleton import Skeleton

__all__ = ["Character", "PART_NAMES", "ASSETS_DIR", "builtin_character_names", "load_character", "UnknownCharacterError",
           "user_characters_dir", "user_character_names", "save_user_character"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "characters"

# Per-vertex body-part labels. "arm" vertices (arms and hands) are the limbs of the penetration loss;
# torso and head are the body they must not enter.
PART_NAMES: tuple[str, ...] = ("torso", "head", "arm", "leg")


class UnknownCharacterError(InputError):
    """No built-in character of that name."""


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
    """

    name: str
    skeleton: Skeleton
    rest_vertices: np.ndarray
    faces: np.ndarray
    skin_indices: np.ndarray
    skin_weights: np.ndarray
    parts: np.ndarray
    colors: np.ndarray | None = None

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
                       z["parts"].astype(np.int64), z["colors"].astype(np.float64) if "colors" in z else None)

    def __repr__(self) -> str:
        return (f"Character({self.name!r}, {self.height:.2f} m, {self.skeleton.num_joints} joints, "
                f"{len(self.rest_vertices)} vertices)")


def builtin_character_names() -> list[str]:
    """Names of the built-in characters shipped in assets/."""
    return sorted(p.stem for p in ASSETS_DIR.glob("*.npz"))


def user_characters_dir() -> Path:
    """The folder of characters imported with ``python app.py characters --import FILE``."""
    if os.environ.get("SMT_HOME"):
        return Path(os.environ["SMT_HOME"]) / "characters"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "smt" / "characters"


def user_character_names() -> list[str]:
    """Names of the characters in the user library."""
    folder = user_characters_dir()
    return sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []


def save_user_character(character: Character, name: str | None = None) -> Path:
    """Save a character into the user library (replacing one of the same name) and return its file.

    Raises:
        InputError: a name that is not a plain file name or is taken by a built-in character; unwritable folder.
    """
    name = name or character.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name.endswith(".npz"):
        raise InputError(f"character name {name!r}: use up to 64 letters, digits, '_', '-' or '.'")
    if name.lower() in (n.lower() for n in builtin_character_names()):
        raise InputError(f"{name!r} is the name of a built-in character: choose another name")
    folder = user_characters_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.npz"
        tmp = folder / f".{name}.partial.npz"
        Character(name, character.skeleton, character.rest_vertices, character.faces, character.skin_indices,
                  character.skin_weights, character.parts, character.colors).save(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"cannot save character {name!r} into {str(folder)!r}: {e.strerror or e}") from None
    return path


def load_character(name: str | os.PathLike) -> Character:
    """A character by name (case-insensitive: built-in first, then the user library), or from a file path
    (``.fbx``/``.glb`` imported on the fly in Blender's worker, or a saved ``.npz``).

    Raises:
        UnknownCharacterError: listing the available names.
        InputError: a character file that cannot be imported (the message says why).
    """
    text = os.fspath(name)
    suffix = Path(text).suffix.lower()
    if suffix in (".fbx", ".glb"):
        from .io.character_import import import_character  # Blender worker only when a file is given

        return import_character(text)
    if suffix == ".npz" and Path(text).is_file():
        return Character.load(text)
    for folder, names in ((ASSETS_DIR, builtin_character_names()), (user_characters_dir(), user_character_names())):
        for candidate in names:
            if candidate.lower() == text.lower():
                return Character.load(folder / f"{candidate}.npz")
    users = user_character_names()
    raise UnknownCharacterError(
        f"unknown character {text!r}; built-in characters: {', '.join(builtin_character_names()) or '(none)'}"
        + (f"; yours: {', '.join(users)}" if users else "")
        + "; or give a path to an .fbx/.glb file")
