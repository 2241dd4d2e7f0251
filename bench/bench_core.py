"""Core: BVH parsing, forward kinematics, skinning, preview rendering and Copy retargeting speed.

Targets (issue 2): FK >= 50,000 frames/s (22 joints, batched); LBS of a 10k-vertex character >= 1,000
frames/s; preview rendering >= 30 frames/s at 512x512 for a 10k-triangle character (skinning, normals,
drawing and read-back included). BVH parsing and Copy retargeting have no target: Copy is the baseline
later stages are compared with.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from core.character_library import builtin_character_names, load_character
from core.io.bvh import read_bvh, write_bvh
from core.kinematics import forward_kinematics, linear_blend_skinning, skinning_transforms
from core.motion import Motion
from core.retarget.copy import copy_retarget
from core.rotations import quat_normalize
from core.skeleton import CANONICAL_PARENTS

from .common import SHARED_DATA, Row, rate


def _random_rotations(T: int, J: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(T, J, 4, generator=g, dtype=dtype) * 0.2
    q[..., 0] += 1
    return quat_normalize(q)


def _bvh_rows(character) -> list[Row]:
    rows = []
    files: list[tuple[str, Path]] = []
    with tempfile.TemporaryDirectory() as tmp:
        T = 2000
        motion = Motion(character.skeleton, _random_rotations(T, 22, torch.float64).numpy(),
                        np.zeros((T, 3)) + character.skeleton.offsets[0], 30.0)
        synthetic = Path(tmp) / "synthetic.bvh"
        write_bvh(motion, synthetic)
        files.append(("22 joints, ours (2000 frames)", synthetic))
        bandai = sorted((SHARED_DATA / "motion" / "bandai_namco_1" / "data").glob("*.bvh"))
        if bandai:
            files.append(("Bandai Namco, 22 joints x 6 ch", max(bandai, key=lambda p: p.stat().st_size)))
        mixamo = SHARED_DATA / "motion" / "mixamo_r2et" / "Sporty_Granny_Salsa_Dancing.bvh"
        if mixamo.exists():
            files.append(("Mixamo, 99 joints", mixamo))
        for label, path in files:
            frames = read_bvh(path).num_frames
            fps = rate(lambda: read_bvh(path).num_frames, min_seconds=1.0)
            rows.append(Row(f"BVH parse: {label}", fps, "frames/s", note=f"{frames} frames"))
    return rows


def run() -> list[Row]:
    names = builtin_character_names()
    if not names:
        raise SystemExit("no built-in characters in assets/: run scripts/make_characters.py")
    character = min((load_character(n) for n in names), key=lambda c: abs(len(c.faces) - 10_000))
    sk = character.skeleton
    rows = _bvh_rows(character)

    T = 10_000
    q = _random_rotations(T, 22)
    root = torch.zeros(T, 3)
    offsets = torch.as_tensor(sk.offsets, dtype=torch.float32)
    with torch.no_grad():
        fk = rate(lambda: (forward_kinematics(CANONICAL_PARENTS, offsets, q, root), T)[1])
    rows.append(Row("FK, 22 joints, batch of 10k frames", fk, "frames/s", 50_000))

    V, Tl = 10_000, 200
    g = torch.Generator().manual_seed(1)
    verts = torch.rand(V, 3, generator=g)
    weights = torch.zeros(V, 22)
    top = torch.randint(0, 22, (V, 4), generator=g)
    weights.scatter_add_(1, top, torch.rand(V, 4, generator=g))
    weights /= weights.sum(1, keepdim=True)
    rest = sk.rest_pose(torch.float32)
    with torch.no_grad():
        pose = forward_kinematics(CANONICAL_PARENTS, offsets, q[:Tl], root[:Tl])
        transforms = skinning_transforms(pose, rest)
        lbs = rate(lambda: (linear_blend_skinning(verts, weights, transforms), Tl)[1])
    rows.append(Row("LBS, 10k vertices (top-4 weights), batch of 200", lbs, "frames/s", 1_000))

    source_path = None
    bandai = SHARED_DATA / "motion" / "bandai_namco_1" / "data"
    if bandai.exists():
        source_path = max(bandai.glob("*.bvh"), key=lambda p: p.stat().st_size)
    source = read_bvh(source_path) if source_path else Motion(sk, q[:600].double().numpy(),
                                                              np.tile(sk.offsets[0], (600, 1)), 30.0)
    copy = rate(lambda: copy_retarget(source, sk).num_frames, min_seconds=2.0)
    rows.append(Row("Copy retarget (baseline)", copy, "frames/s",
                    note=f"{source.num_frames} frames, {source.skeleton.num_joints}-joint source"))

    from core.render.preview import render_motion_clip

    motion = copy_retarget(source, sk).slice(0, 240)
    for label, who, target in (("mesh", character, 30), ("stick figure", None, None)):
        def render() -> int:
            return sum(1 for _ in render_motion_clip(who, motion, size=(512, 512)))
        fps = rate(render, min_seconds=3.0)
        note = f"{character.name}: {len(character.faces)} triangles" if who else "22 joints"
        rows.append(Row(f"Preview render 512x512, {label}", fps, "frames/s", target, note=note))
    return rows
