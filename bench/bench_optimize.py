"""Stage II (semantics + penetration, core/optimize/) beside the Copy retargeter it starts from, same run.

Targets (issue 7): on the bulky characters, Pen% after optimisation <= 30 % of Copy's (a >= 70 % cut) with JDM
error, contact preservation and jitter not worse than Copy's; 300 frames optimised with the skeletal
supervisor in <= 10 s on this CPU (Copy's time for the same clip is in the same table); the BLIP-2 path's
seconds per iteration and GPU memory with FlanT5-XL-sized random weights when a CUDA GPU is present.

Characters: the built-in ones (assets/characters) and the R2ET shapes (../shared/data/characters/r2et_shapes,
T-pose meshes skinned to the 22 joints). Bulky = Bob (round belly), Mousey (huge head and hands) and
Sporty_Granny (wide hips and bust): the ones where Copy leaves measurable penetration. Clips: Mixamo's Ortiz
salsa (60 fps; a slim source), Bandai Namco "normal" bow, punch, call and dance (30 fps; hands together, at the
face, on the body) and Mixamo's hip-hop dance (hands close to the body), at most 200 frames each. Each bulky
character's worst clip for JDM error and contacts is shown too: every pair must end no worse than Copy. Metrics (DESIGN §5): exact Pen% (limb vertices inside the posed torso+head,
ray parity, share of all vertices), JDM error against the source, contacts kept (source hand contacts from a
capsule body, the result's from its mesh), jitter (mean joint acceleration, m/s²). Rows pool the clips:
Pen%, JDM and jitter are means over clips, contacts are pooled over all contact frames. The hip-hop clip is
Sporty_Granny's own: stage II leaves it as it is (its Pen% is the source's own on its own body, issue 18's
target; OptimizeConfig.keep_own_motion), and her Pen% rows pool the other five.

Issue 18 (hands and head): how far stage II turns each hand relative to its forearm and the head relative to the
chest, against the Copy start (degrees; mean and 95th percentile over frames and hands, averaged over clips;
targets mean <= 15, p95 <= 35, head <= 5), and the wrist-to-wrist distance error against the source (share of
each figure's height; target: not above Copy's), and how often the result bends a wrist, elbow or the neck past
the anatomical ranges of core/optimize/limits.py by more than 5 degrees (share of frames x limited joints;
target: not above Copy's, whose excursions are the source's own), and how far the forearms and upper arms turn
about their own axes (the palm facing another way with the wrist unchanged; target mean <= 15, our choice, the
hands' own bar), and how far the chest turns against the hips (a deeper bow than the source's; target mean <= 10,
our choice).
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch

from core.character import PART_NAMES, Character
from core.character_library import builtin_character_names, load_character
from core.io.bvh import read_bvh
from core.metrics import SourceClip, measure_clip, rotation_change
from core.optimize.limits import long_bone_twist, share_beyond_limits
from core.motion import Motion
from core.optimize import OptimizeConfig, optimize_motion
from core.optimize.config import OWN_MOTION_JDM
from core.retarget.copy import copy_retarget
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton

from .common import SHARED_DATA, Row

BULKY = ("Bob", "Mousey", "Sporty_Granny")
CLIPS = {
    "salsa": "mixamo_r2et/Ortiz_Salsa_Dancing.bvh",
    "bow": "bandai_namco_1/data/dataset-1_bow_normal_001.bvh",
    "punch": "bandai_namco_1/data/dataset-1_punch_normal_002.bvh",
    "call": "bandai_namco_1/data/dataset-1_call_normal_001.bvh",
    "dance": "bandai_namco_1/data/dataset-1_dance-short_normal_001.bvh",
    "hiphop": "../characters/Sporty_Granny_Hip_Hop_Dancing.bvh",  # Mixamo: hands close to the body (issue 14)
}
MAX_FRAMES = 200
_R2ET_PARTS = {"Hips": "torso", "Spine": "torso", "Spine1": "torso", "Spine2": "torso", "LeftShoulder": "torso",
               "RightShoulder": "torso", "Neck": "head", "Head": "head"}


def load_r2et_character(path) -> Character:
    """A Character from an R2ET test shape: offsets and mesh in cm, the mesh stored relative to the hips,
    per-vertex part = the vertex's main joint (mapped to torso / head / arm / leg), dense weights cut to top 4."""
    with np.load(path) as z:
        names = [str(n) for n in z["joint_names"]]
        order = [names.index(n) for n in CANONICAL_JOINTS]
        skeleton = canonical_skeleton(z["skeleton"].astype(np.float64)[order] / 100.0)
        dense = z["skinning_weights"].astype(np.float64)[:, order]
        main = np.argsort(order)[z["vertex_part"]]
        vertices = z["rest_vertices"].astype(np.float64) / 100.0 + skeleton.rest_positions()[0]
        faces = z["rest_faces"].astype(np.int64)
        name = str(z["subject"])
    top = np.argsort(-dense, axis=1)[:, :4]
    weights = np.take_along_axis(dense, top, 1)
    weights /= weights.sum(1, keepdims=True)

    def part(j: int) -> int:
        n = CANONICAL_JOINTS[j]
        return PART_NAMES.index(_R2ET_PARTS.get(n, "arm" if ("Arm" in n or "Hand" in n) else "leg"))

    return Character(name, skeleton, vertices, faces, top, weights, np.array([part(j) for j in main]))


def _characters() -> dict[str, Character]:
    out = {name: load_character(name) for name in builtin_character_names()}
    for path in sorted((SHARED_DATA / "characters" / "r2et_shapes").glob("*.npz")):
        out[path.stem] = load_r2et_character(path)
    return out


def _read(rel: str) -> Motion | None:
    path = SHARED_DATA / "motion" / rel
    if not path.is_file():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_bvh(path)


def _timing_rows() -> list[Row]:
    source = _read(CLIPS["dance"])
    character = load_character("Bob")
    if source is None or source.num_frames < 300:
        return [Row("300 frames, skeletal supervisor", math.nan, "s", 10.0, False, "not measured: no 300-frame clip")]
    source = source.slice(0, 300)
    t = time.perf_counter()
    start = copy_retarget(source, character.skeleton)
    copy_s = time.perf_counter() - t
    t = time.perf_counter()
    result = optimize_motion(source, start, character, measure=False)
    opt_s = time.perf_counter() - t
    return [Row("Copy retarget, 300 frames (baseline)", copy_s, "s", note="Bandai dance -> Bob"),
            Row("Stage II, 300 frames, skeletal supervisor", opt_s, "s", 10.0, False,
                note=f"{result.iterations} Adam steps, SDF grid build included; {opt_s / max(copy_s, 1e-9):.0f}x Copy"),
            *_imported_character_rows(source)]


def _imported_character_rows(dance: Motion) -> list[Row]:
    """Issue 14: 742 frames at 60 fps (12.4 s) onto an imported 28k-vertex, two-mesh character (X Bot), as a
    user's upload; the import is not counted, the SDF grid build is. Its Pen% is mostly shoulder folds (measured
    on the dance: 82 % of the inside arm vertices lie within 3 % of the height of the body at rest, next to the
    shoulder joint, sinking into the chest as the arms hang), which no pose an animator would keep removes."""
    from core.io.character_import import import_character

    path = SHARED_DATA / "characters" / "Xbot.glb"
    if not path.is_file():
        return [Row("Stage II, 742 frames -> X Bot", math.nan, "s", 10.0, False, note=f"not measured: no {path}")]
    character = import_character(path)
    source = _read(CLIPS["dance"]).resample(60.0).slice(0, 742)
    start = copy_retarget(source, character.skeleton)
    t = time.perf_counter()
    result = optimize_motion(source, start, character, measure=False)
    opt_s = time.perf_counter() - t
    ref = SourceClip.of(source)
    before, after = (measure_clip(ref, m, character, max_mesh_frames=60) for m in (start, result.motion))
    return [Row("Stage II, 742 frames at 60 fps -> X Bot (imported, 28k vertices)", opt_s, "s", 10.0, False,
                note=f"{result.iterations} Adam steps, SDF grid build included; Pen% {before.pen_percent:.3f} -> "
                     f"{after.pen_percent:.3f} on 60 frames, JDM {before.jdm_error:.4f} -> "
                     f"{after.jdm_error:.4f}, contacts {before.contacts_kept:.2f} -> {after.contacts_kept:.2f}")]


def _quality_rows() -> list[Row]:
    clips = {k: m for k, rel in CLIPS.items() if (m := _read(rel)) is not None}
    if not clips:
        return [Row("quality", math.nan, "", note=f"not measured: no clips under {SHARED_DATA / 'motion'}")]
    rows: list[Row] = []
    for name, character in _characters().items():
        bulky = name in BULKY
        use = clips if bulky else {k: clips[k] for k in list(clips)[:2]}
        before, after, secs, turns, beyond, twists = [], [], [], [], [], []
        for clip_name, clip in use.items():
            source = clip.slice(0, MAX_FRAMES)
            start = copy_retarget(source, character.skeleton)
            t = time.perf_counter()
            result = optimize_motion(source, start, character, measure=False)
            secs.append(time.perf_counter() - t)
            reference = SourceClip.of(source)
            before.append(measure_clip(reference, start, character))
            after.append(measure_clip(reference, result.motion, character))
            turns.append((clip_name, rotation_change(start, result.motion)))
            beyond.append((share_beyond_limits(start), share_beyond_limits(result.motion)))
            twists.append(long_bone_twist(start, result.motion))
        # A character's own clip is left as it is (OptimizeConfig.keep_own_motion): its Pen% is the source's own
        # on its own body, issue 18's target, so the Pen% rows pool the other clips.
        own = [c for c, b in zip(use, before) if b.jdm_error < OWN_MOTION_JDM]
        pen_b, pen_a = (np.mean([m.pen_percent for c, m in zip(use, ms) if c not in own]) for ms in (before, after))
        jdm_b, jdm_a = np.mean([m.jdm_error for m in before]), np.mean([m.jdm_error for m in after])
        jit_b, jit_a = np.mean([m.jitter for m in before]), np.mean([m.jitter for m in after])
        kept_b, kept_a = _pooled_contacts(before), _pooled_contacts(after)
        hd_b, hd_a = np.mean([m.hand_distance for m in before]), np.mean([m.hand_distance for m in after])
        hand_mean = np.mean([r.hand_mean for _, r in turns])
        hand_p95 = np.mean([r.hand_p95 for _, r in turns])
        head_mean = np.mean([r.head_mean for _, r in turns])
        trunk_mean = np.mean([r.trunk_mean for _, r in turns])
        beyond_b, beyond_a = np.mean(beyond, axis=0)
        twist_mean = np.mean([t.mean() for t in twists])
        twist_p95 = np.mean([np.percentile(t, 95) for t in twists])
        worst = max(turns, key=lambda t: t[1].hand_p95)
        names = list(use)
        worst_jdm = max(((c, a.jdm_error - b.jdm_error, b.jdm_error) for c, b, a in zip(names, before, after)),
                        key=lambda x: x[1])
        kept = [(c, a.contacts_kept - b.contacts_kept) for c, b, a in zip(names, before, after)
                if not math.isnan(b.contacts_kept)]
        worst_kept = min(kept, key=lambda x: x[1]) if kept else ("-", math.nan)
        turn_note = (f"clip means; worst clip {worst[0]}: hand mean {worst[1].hand_mean:.1f}, p95 "
                     f"{worst[1].hand_p95:.1f}, head {worst[1].head_mean:.1f}")
        where = f"{name}, {len(use) - len(own)} clips" + (f"; its own {', '.join(own)} left as it is" if own else "")
        if bulky:
            ratio = pen_a / pen_b if pen_b > 0 else 0.0
            rows += [
                Row(f"{name}: Pen% after / Copy's", ratio, "", 0.30, False,
                    f"Pen% {pen_b:.3f} -> {pen_a:.3f} ({where}; {np.mean(secs):.1f} s per clip)"),
                Row(f"{name}: JDM error after - Copy's", jdm_a - jdm_b, "", 0.0, False,
                    f"{jdm_b:.4f} -> {jdm_a:.4f}"),
                Row(f"{name}: contacts kept after - Copy's", kept_a - kept_b, "", 0.0, True,
                    f"{kept_b:.3f} -> {kept_a:.3f} of the source's hand-contact frames"),
                Row(f"{name}: worst clip, JDM error after - Copy's", worst_jdm[1], "", 0.0, False,
                    f"clip {worst_jdm[0]}, Copy's {worst_jdm[2]:.2g} (issue 14: every pair at or below Copy's)"),
                Row(f"{name}: worst clip, contacts kept after - Copy's", worst_kept[1], "", 0.0, True,
                    f"clip {worst_kept[0]}"),
                Row(f"{name}: jitter change from Copy's", 100 * (jit_a / jit_b - 1), "%", 0.0, False,
                    f"{jit_b:.3f} -> {jit_a:.3f} m/s²"),
                Row(f"{name}: hand-hand distance error after - Copy's", hd_a - hd_b, "", 0.0, False,
                    f"{hd_b:.4f} -> {hd_a:.4f} of the height"),
                Row(f"{name}: hand rotation change (vs forearm), mean", hand_mean, "deg", 15.0, False, turn_note),
                Row(f"{name}: hand rotation change (vs forearm), p95", hand_p95, "deg", 35.0, False),
                Row(f"{name}: head rotation change (vs chest), mean", head_mean, "deg", 5.0, False),
                Row(f"{name}: trunk rotation change (chest vs hips), mean", trunk_mean, "deg", 10.0, False,
                    "the spine bending or turning beyond the start's (a deeper bow)"),
                Row(f"{name}: forearm and upper-arm twist change, mean", twist_mean, "deg", 15.0, False,
                    f"turn about the bone's own axis (pronation, humeral rotation), p95 {twist_p95:.1f}: the palm "
                    "facing another way, which the hand-vs-forearm rows do not show"),
                Row(f"{name}: joint-limit violations after - Copy's", 100 * (beyond_a - beyond_b), "%", 0.0, False,
                    f"{100 * beyond_b:.2f} -> {100 * beyond_a:.2f} % of frames x limited joints past the "
                    "anatomical ranges by > 5 deg (core.optimize.limits)"),
            ]
        else:
            rows.append(Row(f"{name}: Pen% before -> after", pen_a, "%", note=(
                f"Copy {pen_b:.3f} -> {pen_a:.3f}; JDM {jdm_b:.4f} -> {jdm_a:.4f}; jitter {jit_b:.2f} -> {jit_a:.2f}; "
                f"contacts {kept_b:.2f} -> {kept_a:.2f}; hand-hand {hd_b:.3f} -> {hd_a:.3f}; hand turn mean "
                f"{hand_mean:.1f}, p95 {hand_p95:.1f}, head {head_mean:.1f}, trunk {trunk_mean:.1f}, arm twist "
                f"{twist_mean:.1f} deg; past the "
                f"joint limits "
                f"{100 * beyond_b:.2f} -> {100 * beyond_a:.2f} % ({where})")))
    return rows


def _pooled_contacts(metrics) -> float:
    values = [m.contacts_kept for m in metrics if not math.isnan(m.contacts_kept)]
    return float(np.mean(values)) if values else math.nan


def _renderer_rows() -> list[Row]:
    from core.render.soft import SoftRasterSettings, clip_cameras, render_views

    character = load_character("Bob")
    source = _read(CLIPS["bow"])
    motion = copy_retarget(source, character.skeleton) if source is not None else None
    verts = (character.posed_vertices(motion)[:: max(1, motion.num_frames // 8)][:8] if motion is not None
             else torch.as_tensor(character.rest_vertices, dtype=torch.float32)[None].repeat(8, 1, 1))
    cams = clip_cameras(verts.numpy())
    faces = torch.as_tensor(character.faces)
    colors = torch.as_tensor(character.colors, dtype=torch.float32)
    settings = SoftRasterSettings()
    best_f = best_b = math.inf
    for _ in range(2):
        t = time.perf_counter()
        with torch.no_grad():
            render_views(verts, faces, colors, cams, settings)
        best_f = min(best_f, time.perf_counter() - t)
        v = verts.clone().requires_grad_(True)
        t = time.perf_counter()
        render_views(v, faces, colors, cams, settings).sum().backward()
        best_b = min(best_b, time.perf_counter() - t)
    note = f"24 images (8 poses x front/left/right) of {len(character.faces)} triangles at 224x224"
    return [Row("Soft rasteriser forward", best_f, "s", note=note + f"; {torch.get_num_threads()} threads"),
            Row("Soft rasteriser forward + backward", best_b, "s", note=note)]


def _blip2_gpu_rows() -> list[Row]:
    if not torch.cuda.is_available():
        return [Row("BLIP-2 (FlanT5-XL size, random weights) step on GPU", math.nan, "s/iteration",
                    note="not measured: no GPU in this session")]
    from .bench_semantic import _blip2_xl_sized  # Salesforce/blip2-flan-t5-xl's sizes, random weights

    encoder = _blip2_xl_sized("cuda")
    character = load_character("Bob")
    source = _read(CLIPS["bow"]) or Motion.rest(character.skeleton, 30)
    source = source.slice(0, 60)
    start = copy_retarget(source, character.skeleton)
    optimize_motion(source, start, character, supervisor=encoder, device="cuda",  # source embeddings, cached
                    config=OptimizeConfig(iterations=1), measure=False)
    torch.cuda.reset_peak_memory_stats()
    stamps: list[float] = []

    def progress(fraction: float, stage: str) -> None:
        if stage == "semantic refinement":
            torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    optimize_motion(source, start, character, supervisor=encoder, device="cuda", progress=progress,
                    config=OptimizeConfig(iterations=11), measure=False)
    seconds = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
    memory = torch.cuda.max_memory_allocated() / 2 ** 30
    name = torch.cuda.get_device_name()
    return [Row("BLIP-2 (FlanT5-XL size, random weights) step on GPU", seconds, "s/iteration",
                note=f"{name}; 4 frames x 3 views rendered, embedded and back-propagated per step"),
            Row("BLIP-2 (FlanT5-XL size) peak GPU memory", memory, "GiB", note=name)]


def run() -> list[Row]:
    rows = _timing_rows()
    rows += _renderer_rows()
    rows += _blip2_gpu_rows()
    rows += _quality_rows()
    return rows
