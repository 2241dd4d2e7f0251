"""Retargeting: the graph network (SMT stage I) beside Copy, on held-back clips and several target characters.

Targets (issue 5): JDM error below Copy's on characters whose proportions differ from the source; jitter no
more than the source's +5 %; network inference >= 5,000 frames/s. Local MSE against Copy and foot skate are
reported. Jitter is compared with the source motion played on the same character, which is exactly Copy's
output (Copy keeps the source's rotations): a character's proportions alone change its joint accelerations
(measured here: Copy's height-normalised jitter is about 10 % above the source's on its own skeleton), so
that is the only like-for-like "source" for a network that must not add jitter; the raw ratio to the source
on its own skeleton is reported too. Sources: held-back Bandai Namco clips (styles happy and old, never trained on); targets: the
built-in characters and R2ET shapes (in the training pool; these clips are not), the Mixamo rigs of the salsa
files and two random skeletons (never seen). The Mixamo salsa also gives a reference: Mixamo's own version of
Ortiz's motion on Mousey and on Sporty Granny.

Definitions (DESIGN §5), all on the canonical 22 joints: JDM error = L1 of each row of the row-normalised
joint distance matrices of source and result, averaged over rows and frames; local MSE = mean squared joint
distance after aligning the hips, divided by the target's height (paper Eq. 12, metres); jitter = mean joint
acceleration divided by the character's height (1/s², so sizes compare); foot skate = mean horizontal speed of
a foot joint over the frames where the source's foot joint is within 3 % of its height of the floor, in the
target's heights per second. Heights are the joints' rest-pose vertical extent.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from core.character_library import builtin_character_names, load_character
from core.io.bvh import read_bvh
from core.metrics import foot_contacts, foot_skate, jdm_error, jitter
from core.motion import Motion, canonical_rest, to_canonical
from core.retarget.copy import copy_retarget
from core.retarget.data import SHARED_DATA, corpus_files, is_held_back, r2et_skeleton, random_skeleton
from core.retarget.model import DEFAULT_CHECKPOINT, NetworkRetargeter
from core.retarget.network import edge_features, node_features, skeleton_height
from core.rotations import quat_to_matrix
from core.skeleton import Skeleton, canonical_skeleton

from .common import Row, rate

MAX_CLIPS = 12  # held-back clips used (every other one of the 22): keeps the suite to a few minutes
SPEED_FRAMES = 3000


def _read(path) -> Motion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_bvh(path)


def _height(canonical: Skeleton) -> float:
    return float(skeleton_height(torch.as_tensor(canonical.offsets)))


def _positions(motion: Motion) -> np.ndarray:
    """``(T, 22, 3)`` canonical joint positions of a motion on any mappable rig."""
    return to_canonical(motion).positions()


def _local_mse(a: np.ndarray, b: np.ndarray, height: float) -> float:
    d = (a - a[:, :1]) - (b - b[:, :1])
    return float((d * d).sum(-1).mean() / height)


def _targets() -> dict[str, Skeleton]:
    targets = {name: load_character(name).skeleton for name in builtin_character_names()}
    for path in sorted((SHARED_DATA / "characters" / "r2et_shapes").glob("*.npz")):
        targets[f"R2ET {path.stem}"] = r2et_skeleton(path)
    for path in corpus_files(SHARED_DATA, bandai=False)["mixamo"]:
        targets[f"Mixamo {path.stem.split('_Salsa')[0]} rig (unseen)"] = _read(path).skeleton
    rng = np.random.default_rng(20261121)  # not a training seed
    base = torch.as_tensor(canonical_rest(targets[next(iter(targets))]).offsets, dtype=torch.float32)
    for k in range(2):
        targets[f"random {k + 1} (unseen)"] = canonical_skeleton(random_skeleton(rng, base).double().numpy())
    return targets


def _mixamo_rows(net: NetworkRetargeter) -> list[Row]:
    files = {p.stem.split("_Salsa")[0]: p for p in corpus_files(SHARED_DATA, bandai=False)["mixamo"]}
    if "Ortiz" not in files:
        return []
    source = _read(files["Ortiz"])
    rows = []
    for name in ("Mousey", "Sporty_Granny"):
        if name not in files:
            continue
        ref = _read(files[name])
        h = _height(canonical_rest(ref.skeleton))
        p_ref = _positions(ref)
        copy = _local_mse(_positions(copy_retarget(source, ref.skeleton)), p_ref, h)
        mine = _local_mse(_positions(net.retarget(source, ref.skeleton)), p_ref, h)
        rows.append(Row(f"local MSE vs Mixamo's own, Ortiz salsa -> {name}: network", mine, "m",
                        note=f"Copy {copy:.4g} (Mixamo's version is mostly a rotation copy itself)"))
    return rows


def run() -> list[Row]:
    files = [p for p in corpus_files(SHARED_DATA)["bandai"] if is_held_back("bandai", p)]
    if not files:
        raise SystemExit(f"no held-back Bandai Namco clips under {SHARED_DATA}: the retarget suite needs them")
    try:
        net = NetworkRetargeter.load(DEFAULT_CHECKPOINT)
    except (FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"no network to measure: {e}; train one with `python -m core.retarget.train`")
    files = files[::max(1, len(files) // MAX_CLIPS)][:MAX_CLIPS]
    targets = _targets()
    sums: dict[str, dict[str, list[float]]] = {}
    totals: dict[str, list[float]] = {k: [] for k in ("jit_src", "jit_copy", "jit_net", "skate_src", "skate_copy",
                                                        "skate_net", "skate_root", "mse", "jdm_copy", "jdm_net")}
    root_net = NetworkRetargeter(net.model, use_root_mlp=True)
    for path in files:
        source = _read(path)
        src_c = to_canonical(source)
        p_src = src_c.positions()
        h_src = _height(src_c.skeleton)
        contact = foot_contacts(p_src, h_src)
        totals["jit_src"].append(jitter(p_src, source.fps) / h_src)
        totals["skate_src"].append(foot_skate(p_src, source.fps, contact) / h_src)
        for name, target in targets.items():
            h = _height(canonical_rest(target))
            p_copy = _positions(copy_retarget(source, target))
            p_net = _positions(net.retarget(source, target))
            jc = float(jdm_error(torch.as_tensor(p_src), torch.as_tensor(p_copy)))
            jn = float(jdm_error(torch.as_tensor(p_src), torch.as_tensor(p_net)))
            sums.setdefault(name, {"copy": [], "net": []})
            sums[name]["copy"].append(jc)
            sums[name]["net"].append(jn)
            totals["jdm_copy"].append(jc)
            totals["jdm_net"].append(jn)
            totals["mse"].append(_local_mse(p_net, p_copy, h))
            totals["jit_copy"].append(jitter(p_copy, source.fps) / h)
            totals["jit_net"].append(jitter(p_net, source.fps) / h)
            totals["skate_copy"].append(foot_skate(p_copy, source.fps, contact) / h)
            totals["skate_net"].append(foot_skate(p_net, source.fps, contact) / h)
            totals["skate_root"].append(foot_skate(_positions(root_net.retarget(source, target)), source.fps, contact) / h)
    m = {k: float(np.mean(v)) for k, v in totals.items()}
    rows = [Row("JDM error, network (mean of all pairs)", m["jdm_net"], "", m["jdm_copy"], False,
                note=f"target = Copy's {m['jdm_copy']:.4f}; {len(files)} held-back clips x {len(targets)} characters")]
    for name, v in sums.items():
        c, n = float(np.mean(v["copy"])), float(np.mean(v["net"]))
        rows.append(Row(f"JDM error onto {name}", n, "", c, False, note=f"Copy {c:.4f} ({(n / c - 1) * 100:+.1f} %)"))
    rows += [
        Row("local MSE network vs Copy", m["mse"], "m", note="Eq. 12: mean squared distance / target height"),
        Row("jitter, network / source on the same character (= Copy)", m["jit_net"] / m["jit_copy"], "x", 1.05,
            False, note=f"Copy {m['jit_copy']:.3g}, network {m['jit_net']:.3g} heights/s^2"),
        Row("jitter, network / source on its own skeleton", m["jit_net"] / m["jit_src"], "x",
            note=f"source {m['jit_src']:.3g} heights/s^2; Copy / source = {m['jit_copy'] / m['jit_src']:.3f}"),
        Row("foot skate, network", m["skate_net"], "h/s", note=f"Copy {m['skate_copy']:.4f}, source {m['skate_src']:.4f}"),
        Row("foot skate, network + root MLP", m["skate_root"], "h/s",
            note=f"shipped checkpoint uses root MLP: {net.use_root_mlp}"),
    ]
    rows += _mixamo_rows(net)

    # Speed: the network alone on canonical tensors, and the whole retarget() beside Copy's.
    source = _read(max(files, key=lambda p: p.stat().st_size))
    src_c = to_canonical(source)
    tgt = canonical_rest(targets["Bob"] if "Bob" in targets else next(iter(targets.values())))
    reps = -(-SPEED_FRAMES // src_c.num_frames)  # a long clip: throughput, not per-call overhead
    rot = quat_to_matrix(torch.as_tensor(src_c.rotations, dtype=torch.float32))[None].repeat(1, reps, 1, 1, 1)
    positions = torch.as_tensor(src_c.positions(), dtype=torch.float32)[None].repeat(1, reps, 1, 1)
    off_a = torch.as_tensor(src_c.skeleton.offsets, dtype=torch.float32)[None]
    off_b = torch.as_tensor(tgt.offsets, dtype=torch.float32)[None]
    h_a, h_b = skeleton_height(off_a), skeleton_height(off_b)
    q = node_features(rot, positions, h_a)
    e_a, e_b = edge_features(off_a, h_a), edge_features(off_b, h_b)
    T = q.shape[1]
    threads = torch.get_num_threads()
    fps_net = {}
    try:
        for n in sorted({1, threads}):
            torch.set_num_threads(n)
            with torch.no_grad():
                fps_net[n] = rate(lambda: (net.model(q, e_a, e_b), T)[1], min_seconds=1.0)
    finally:
        torch.set_num_threads(threads)
    target_rig = targets["Bob"] if "Bob" in targets else next(iter(targets.values()))
    fps_full = rate(lambda: net.retarget(source, target_rig).num_frames, min_seconds=2.0)
    fps_copy = rate(lambda: copy_retarget(source, target_rig).num_frames, min_seconds=2.0)
    rows.append(Row("network inference (canonical tensors), 1 thread", fps_net[1], "frames/s", 5_000,
                    note=f"{T} frames ({T / source.fps / 60:.1f} min at {source.fps:g} fps) in one call"))
    if threads != 1:
        rows.append(Row(f"network inference, {threads} threads (process default)", fps_net[threads], "frames/s",
                        note="a second thread only helps on an idle machine; on shared cores it waits"))
    rows.append(Row(f"retarget() end to end, network ({threads} threads)", fps_full, "frames/s",
                    note=f"Copy {fps_copy:,.0f} frames/s; both include rig <-> canonical conversion"))
    return rows
