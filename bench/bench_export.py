"""Export and import: FBX/GLB through Blender's worker (start included), next to the BVH writer.

Target (issue 4): export of a 300-frame clip with a ~10k-vertex character <= 3 s wall, Blender's start
included; round trips within 1 mm. The baseline is the BVH writer on the same clip (no mesh, no Blender).
Timings are the best of two runs (each a fresh worker process); every row starts its own worker.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from core.character import Character
from core.character_library import load_character
from core.io.blender import run_blender_worker
from core.io.bvh import read_bvh, write_bvh
from core.io.character_import import import_file, import_motions
from core.io.export import export_character_motion, export_character_motion_files
from core.motion import Motion

from .common import SHARED_DATA, Row

FRAMES = 300


def _best(fn, runs: int = 2) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _doubled(c: Character) -> Character:
    """The character's mesh twice (the copy 1 mm behind): a ~10k-vertex character with the same rig."""
    V = len(c.rest_vertices)
    return Character(f"{c.name} x2", c.skeleton, np.concatenate([c.rest_vertices, c.rest_vertices - [0, 0, 1e-3]]),
                     np.concatenate([c.faces, c.faces + V]), np.concatenate([c.skin_indices] * 2),
                     np.concatenate([c.skin_weights] * 2), np.concatenate([c.parts] * 2),
                     None if c.colors is None else np.concatenate([c.colors] * 2))


def _clip(skeleton, frames: int = FRAMES, fps: float = 30.0) -> Motion:
    """A smooth made-up dance: every joint swings up to ~0.5 rad, the root walks a circle."""
    rng = np.random.default_rng(0)
    J = skeleton.num_joints
    t = np.arange(frames)[:, None, None] / fps
    axis_angle = 0.5 * np.sin(2 * np.pi * (0.3 + rng.random((1, J, 3))) * t + rng.random((1, J, 3)) * 6)
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    q = np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis_angle / np.maximum(angle, 1e-12)], -1)
    phase = t[:, 0, 0] * 0.5
    root = skeleton.offsets[0] + np.stack([np.sin(phase), 0.05 * np.sin(8 * phase), np.cos(phase) - 1], -1)
    return Motion(skeleton, q, root, fps, "bench")


def _round_trip_mm(path: Path, motion: Motion) -> float:
    (back,) = import_motions(path)
    own = [n.rsplit(":", 1)[-1] for n in back.skeleton.names]
    order = [own.index(n.rsplit(":", 1)[-1]) for n in motion.skeleton.names]
    return float(np.linalg.norm(back.positions()[:, order] - motion.positions(), axis=-1).max() * 1000)


def run() -> list[Row]:
    warnings.simplefilter("ignore")
    ava = load_character("Ava")
    big = _doubled(ava)
    motion = _clip(big.skeleton)
    note = f"{len(big.rest_vertices):,} vertices, {len(big.faces):,} triangles, 22 bones, {FRAMES} frames"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        bvh = _best(lambda: write_bvh(motion, out / "clip.bvh"), runs=3)
        rows.append(Row("BVH write (baseline)", bvh, "s", higher_is_better=False, note=f"22 joints, {FRAMES} frames"))
        start = _best(lambda: run_blender_worker({"op": "version"}))
        rows.append(Row("Blender worker start (process, bpy import, empty scene)", start, "s", higher_is_better=False))
        for fmt in ("fbx", "glb"):
            wall = _best(lambda: export_character_motion(big, motion, out / f"clip.{fmt}"))
            rows.append(Row(f"{fmt.upper()} export, start included", wall, "s", 3.0, higher_is_better=False,
                            note=f"{note}; {wall / bvh:.0f}x the BVH writer"))
        both = _best(lambda: export_character_motion_files(big, motion, [out / "a.fbx", out / "a.glb"]))
        rows.append(Row("FBX + GLB in one worker (the pipeline's downloads)", both, "s", higher_is_better=False,
                        note=note))
        for fmt in ("fbx", "glb"):
            rows.append(Row(f"{fmt.upper()} round trip: max joint error, all frames", _round_trip_mm(out / f"clip.{fmt}",
                            motion), "mm", 1.0, higher_is_better=False, note="re-read by Blender's importer"))

        xbot_path = SHARED_DATA / "characters" / "Xbot.glb"
        if xbot_path.exists():
            t = time.perf_counter()
            xbot = import_file(xbot_path, want_animations=False).character
            rows.append(Row("GLB character import: X Bot", time.perf_counter() - t, "s", higher_is_better=False,
                            note=f"{len(xbot.rest_vertices):,} vertices, {xbot.skeleton.num_joints} bones"))
            clip = _clip(xbot.skeleton)
            for fmt in ("fbx", "glb"):
                wall = _best(lambda: export_character_motion(xbot, clip, out / f"xbot.{fmt}"), runs=2)
                rows.append(Row(f"{fmt.upper()} export: X Bot (the uploaded file animated), start included", wall,
                                "s", 3.0, higher_is_better=False,
                                note=f"{len(xbot.rest_vertices):,} vertices in 2 meshes, {xbot.skeleton.num_joints} "
                                     f"bones, {FRAMES} frames"))
            for target, what in (("blender", "its armature's transform moved into bones and meshes"),
                                 ("unreal", "a root bone added, keyed with the travel")):
                wall = _best(lambda: export_character_motion(xbot, clip, out / f"xbot_{target}.fbx", target=target))
                rows.append(Row(f"FBX for {target.capitalize()}: X Bot, start included", wall, "s", 3.0,
                                higher_is_better=False, note=what))
        samba = SHARED_DATA / "characters" / "Samba_Dancing.fbx"
        if samba.exists():
            t = time.perf_counter()
            got = import_file(samba)
            rows.append(Row("FBX import: Samba_Dancing (character + take)", time.perf_counter() - t, "s",
                            higher_is_better=False, note=f"{len(got.character.rest_vertices):,} vertices, "
                            f"{got.skeleton.num_joints} bones, {got.motions[0].num_frames} frames"))
        granny = SHARED_DATA / "characters" / "Sporty_Granny_Hip_Hop_Dancing.fbx"
        if granny.exists():
            t = time.perf_counter()
            (m,) = import_motions(granny)
            rows.append(Row("FBX motion import: Sporty Granny", time.perf_counter() - t, "s", higher_is_better=False,
                            note=f"{m.num_frames} frames, {m.skeleton.num_joints} bones"))
            twin = read_bvh(granny.with_suffix(".bvh"))
            common = [n for n in m.skeleton.names if n in twin.skeleton.names]
            err = np.linalg.norm(m.positions()[:, [m.skeleton.index(n) for n in common]]
                                 - twin.positions()[:, [twin.skeleton.index(n) for n in common]], axis=-1).max()
            rows.append(Row("Sporty Granny FBX vs its BVH twin: max joint error", err * 1000, "mm", 1.0,
                            higher_is_better=False, note=f"{len(common)} joints, all frames"))
    return rows
