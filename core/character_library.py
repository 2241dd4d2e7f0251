"""Where characters come from: the built-in ones, the user's library, and FBX/GLB files.

Built-in characters live in ``assets/characters/<name>.npz``; they are made by ``scripts/make_characters.py``
(no third-party assets). A built-in character's rest pose is the canonical T-pose: facing +Z, Y up, feet on
y = 0.

Users' own characters (FBX/GLB, read by :mod:`core.io.character_import`) are saved as ``<name>.npz`` in the user
library, :func:`user_characters_dir` (``$SMT_HOME/characters``, else ``$XDG_DATA_HOME/smt/characters``, else
``~/.local/share/smt/characters``); :func:`load_character` also takes such a name, or a path to a file.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .character import Character
from .errors import InputError

__all__ = ["ASSETS_DIR", "builtin_character_names", "is_character_file", "load_character", "UnknownCharacterError",
           "user_characters_dir", "user_character_names", "save_user_character"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "characters"


class UnknownCharacterError(InputError):
    """No built-in or library character of that name."""


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
        source = None
        if character.source is not None and Path(character.source).is_file():  # exports animate this file
            source = folder / f"{name}{Path(character.source).suffix.lower()}"
            if Path(character.source).resolve() != source.resolve():
                shutil.copyfile(character.source, folder / f".{name}.partial{source.suffix}")
                os.replace(folder / f".{name}.partial{source.suffix}", source)
        Character(name, character.skeleton, character.rest_vertices, character.faces, character.skin_indices,
                  character.skin_weights, character.parts, character.colors, source).save(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"cannot save character {name!r} into {str(folder)!r}: {e.strerror or e}") from None
    return path


def is_character_file(name: str | os.PathLike) -> bool:
    """Whether ``name`` is a rigged character file that :func:`load_character` imports in Blender's worker (by
    its suffix, :data:`~core.io.character_import.IMPORT_SUFFIXES`), not a name or a saved ``.npz``."""
    from .io.character_import import IMPORT_SUFFIXES

    return Path(os.fspath(name)).suffix.lower() in IMPORT_SUFFIXES


def load_character(name: str | os.PathLike) -> Character:
    """A character by name (case-insensitive: built-in first, then the user library), or from a file path
    (``.fbx``/``.glb`` imported on the fly in Blender's worker, or a saved ``.npz``).

    Raises:
        UnknownCharacterError: listing the available names.
        InputError: a character file that cannot be imported (the message says why).
    """
    text = os.fspath(name)
    if is_character_file(text):
        from .io.character_import import import_character  # Blender worker only when a file is given

        return import_character(text)
    if Path(text).suffix.lower() == ".npz" and Path(text).is_file():
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
