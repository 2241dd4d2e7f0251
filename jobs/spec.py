"""What a job is asked to do: one :class:`JobSpec`, and the CLI's commands as presets of it.

Files a job writes into ``out_dir`` (all or nothing), by what ``outputs`` and ``previews`` ask for:

================  ==========================================================================================
``motion.bvh``    the source motion as read or estimated ("motion" in outputs; the person's own skeleton)
``<name>.bvh``    the result on the character's skeleton ("bvh")
``<name>.fbx``    the animated character, laid out for ``fbx_target`` ("fbx"; ``skeleton_only``: no mesh)
``<name>.glb``    the same as glTF ("glb")
``<name>.mp4``    before/after preview: source and character, or without and with optimisation (``previews``)
``source_overlay.mp4``  the video with the fitted skeleton drawn over it (video input, ``previews``)
================  ==========================================================================================
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from core.character import Character
from core.errors import InputError
from core.io.export import EXPORT_TARGETS
from core.motion import ROOT_PLACEMENTS
from pose.pipeline import DEFAULT_HANDS

__all__ = ["JobSpec", "OUTPUTS", "MOTION_SUFFIXES", "preset"]

OUTPUTS = ("motion", "bvh", "fbx", "glb")
MOTION_SUFFIXES = (".bvh", ".fbx", ".glb")
RETARGETERS = ("network", "network-cmu", "copy")


@dataclass(frozen=True)
class JobSpec:
    """One job: what to read, onto which character, how, and what to write.

    source: a video of one person, or a motion file (.bvh, or an animation in .fbx/.glb).
    out_dir: the folder the files go to (see the module docstring).
    character: a built-in or library name, a path to an .fbx/.glb, a :class:`Character`; None for a job that
        only reads the motion (the "pose" preset).
    semantic: run stage II (semantics and penetration). vlm_path: its weights folder (None: ``$SMT_VLM_PATH``,
        else the skeletal supervisor). iterations: most stage-II steps (None: the optimiser's default).
        foot_locking: keep planted feet in place during stage II.
    hands: track the hands and fit the fingers (video input; on by default, see pose.pipeline.DEFAULT_HANDS);
        characters with finger bones move them.
    smoothing: pose filter strength in [0, 1] (video input). trim: ``(start, end)`` seconds of the input, end
        excluded (0 or None: to the end). take: the animation to use when a motion file has several.
    person: who to follow in a video with several people: their number (1.., left to right) in the first frame
        with anyone in it, as :func:`pose.pipeline.find_people` lists them; None: the largest, most central one.
    retargeter: "network" (the shipped graph network, non-commercial licence; Copy when its checkpoint does not
        load), "network-cmu" (the same network trained on CMU data only: results free for commercial use) or
        "copy".
    outputs: any of "motion", "bvh", "fbx", "glb". previews: write the preview videos; preview_size: one
        panel's side in pixels. skeleton_only: FBX/GLB without the mesh (the animation for the user's own rig).
    root: where the root's path goes in every file (:func:`core.motion.place_root`): "origin" (as captured,
        starting over the origin), "in_place" (no travel) or "world" (as it came). name: the result files' stem.
    fbx_target: what the FBX is laid out for (:mod:`core.io.export`): "unity" (Mixamo's layout, the default),
        "unreal" (a root bone carrying the travel) or "blender" (Z up, metres, no scale on the armature).
    """

    source: Path
    out_dir: Path
    character: str | os.PathLike | Character | None = None
    semantic: bool = False
    vlm_path: str | None = None
    iterations: int | None = None
    foot_locking: bool = True
    smoothing: float = 0.5
    hands: bool = DEFAULT_HANDS
    trim: tuple[float, float | None] | None = None
    take: str | None = None
    person: int | None = None
    retargeter: str = "network"
    outputs: tuple[str, ...] = ("bvh", "fbx", "glb")
    previews: bool = True
    preview_size: int = 384
    skeleton_only: bool = False
    root: str = "origin"
    name: str = "result"
    fbx_target: str = "unity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Path(self.source))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        unknown = [o for o in self.outputs if o not in OUTPUTS]
        if unknown:
            raise InputError(f"cannot write {', '.join(map(repr, unknown))}: choose from {', '.join(OUTPUTS)}")
        if self.retargeter not in RETARGETERS:
            raise InputError(f"unknown retargeter {self.retargeter!r}: choose 'network', 'network-cmu' or 'copy'")
        if not 0.0 <= self.smoothing <= 1.0:
            raise InputError(f"smoothing must be within 0..1, got {self.smoothing:g}")
        if self.person is not None and (isinstance(self.person, bool) or int(self.person) != self.person
                                        or self.person < 1):
            raise InputError(f"people are numbered from 1; got person {self.person!r}")
        if self.iterations is not None and self.iterations < 1:
            raise InputError(f"iterations must be at least 1, got {self.iterations}")
        if self.character is None and (self.semantic or set(self.outputs) - {"motion"}):
            raise InputError("a character is needed to write a result or to optimise")
        if self.fbx_target not in EXPORT_TARGETS:
            raise InputError(f"unknown FBX target {self.fbx_target!r}: choose {', '.join(EXPORT_TARGETS)}")
        if self.root not in ROOT_PLACEMENTS:
            raise InputError(f"unknown root placement {self.root!r}: choose {', '.join(ROOT_PLACEMENTS)}")
        if not 16 <= self.preview_size <= 2048:
            raise InputError(f"preview size must be 16..2048 pixels, got {self.preview_size}")

    @property
    def is_video(self) -> bool:
        return self.source.suffix.lower() not in MOTION_SUFFIXES

    def replace(self, **changes) -> "JobSpec":
        return dataclasses.replace(self, **changes)


def preset(command: str, source: str | os.PathLike, out: str | os.PathLike, **overrides) -> JobSpec:
    """The spec behind a CLI command; ``overrides`` set any field.

    * ``run``: video or motion file → result.bvh/.fbx/.glb, result.mp4 (and source_overlay.mp4 for a video).
    * ``retarget``: a motion file, the same files, previews at 512 px.
    * ``pose``: a video → motion.bvh (the person's own skeleton) and source_overlay.mp4; no character.
    * ``export``: ``out`` is the file to write (.fbx, .glb or .bvh): the motion on the character, retargeted
      with Copy where it is not on the character's rig already, no previews.
    """
    out = Path(out)
    if command == "run":
        base: dict = {}
    elif command == "retarget":
        base = {"preview_size": 512}
    elif command == "pose":
        base = {"character": None, "outputs": ("motion",)}
    elif command == "export":
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in ("bvh", "fbx", "glb"):
            raise InputError(f"cannot export to {out.name!r}: the file must end in .fbx, .glb or .bvh")
        base = {"outputs": (fmt,), "previews": False, "retargeter": "copy", "name": out.stem}
        out = out.parent
    else:
        raise ValueError(f"unknown preset {command!r}")
    return JobSpec(source=Path(source), out_dir=out, **{**base, **overrides})
