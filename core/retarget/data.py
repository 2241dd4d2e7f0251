"""Training data for the graph retargeter: BVH corpora on the canonical skeleton, placed on many skeletons.

Corpora (``../shared/data/motion``, see its README for sources and licences):

* ``bandai``: Bandai Namco Research Motiondataset-1, 174 clips, CC BY-NC 4.0 (non-commercial). Clips of the
  styles in :data:`HELD_BACK_STYLES` are held back for evaluation (all contents of those styles).
* ``cmu``: three CMU clips on three different rigs (free for any use).
* ``mixamo``: one salsa on three Mixamo characters: held back for evaluation only (Mixamo's terms forbid
  redistribution, and Mixamo's own versions make a reference for the target motion).

Every clip is read with :func:`core.io.bvh.read_bvh`, put on its own proportions on the canonical T-pose
skeleton by :func:`core.motion.to_canonical` and resampled to 30 and 60 fps (the network's temporal
convolutions see both rates). Motions on other skeletons are what the Copy retargeter makes, as Mixamo makes
its per-character data: canonical local rotations are copied, the root path is scaled by the leg-length ratio
and the feet are grounded (:func:`place_by_copy`, the batched tensor form of
:func:`core.retarget.copy.copy_retarget` on canonical skeletons).

Skeletons (:func:`skeleton_pool` and :func:`random_skeleton`): the clips' own, the built-in characters, the
R2ET test shapes (Mousey, Sporty Granny) and randomly proportioned people and cartoon figures (legs, arms,
torso, neck, shoulder and hip widths, feet scaled independently, log-uniformly).

Prepared clips are cached under ``.cache/retarget/`` (git-ignored), keyed by the corpus files and
:data:`PREP_VERSION`.
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..character_library import builtin_character_names, load_character
from ..io.bvh import read_bvh
from ..motion import FOOT_JOINTS, canonical_rest, to_canonical
from ..rotations import quat_to_matrix
from ..skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS, Skeleton
from .network import joint_positions, rest_joint_positions

__all__ = ["SHARED_DATA", "CACHE_DIR", "HELD_BACK_STYLES", "PREP_VERSION", "Clip", "corpus_files", "is_held_back",
           "load_clips", "r2et_skeleton", "skeleton_pool", "random_skeleton", "leg_lengths", "place_by_copy",
           "Batch", "BatchSampler"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
CACHE_DIR = ROOT / ".cache" / "retarget"
HELD_BACK_STYLES = ("happy", "old")
EVAL_ONLY_CORPORA = ("mixamo",)
PREP_VERSION = 1
TRAIN_FPS = (30.0, 60.0)
FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


@dataclass
class Clip:
    """One motion on the canonical skeleton with its own proportions, at one frame rate.

    rotations: ``(T, 22, 4)`` canonical local quaternions (float32).
    root: ``(T, 3)`` hips position, metres, floor (foot contact level) at y = 0.
    feet: ``(T,)`` height of the lowest foot joint.
    offsets: ``(22, 3)`` the clip's canonical skeleton.
    """

    name: str
    corpus: str
    held_back: bool
    fps: float
    rotations: Tensor
    root: Tensor
    feet: Tensor
    offsets: Tensor

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]


def corpus_files(data_dir: Path = SHARED_DATA, bandai: bool = True) -> dict[str, list[Path]]:
    """BVH files per corpus (absent corpora give empty lists)."""
    motion = Path(data_dir) / "motion"
    files = {"bandai": sorted((motion / "bandai_namco_1" / "data").glob("*.bvh")) if bandai else [],
             "cmu": sorted((motion / "cmu").glob("*.bvh")),
             "mixamo": sorted((motion / "mixamo_r2et").glob("*.bvh"))}
    return files


def is_held_back(corpus: str, path: Path) -> bool:
    """Whether a clip is kept out of training (evaluation only)."""
    if corpus in EVAL_ONLY_CORPORA:
        return True
    if corpus == "bandai":  # dataset-1_{content}_{style}_{id}.bvh
        return path.stem.split("_")[2] in HELD_BACK_STYLES
    return False


def _prepare(path: Path, corpus: str) -> list[Clip]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit guesses and joint-offset notes of the BVH reader
        canonical = to_canonical(read_bvh(path))
    offsets = torch.as_tensor(canonical.skeleton.offsets, dtype=torch.float32)
    clips = []
    for fps in TRAIN_FPS:
        m = canonical.resample(fps)
        feet = m.positions()[:, FEET, 1].min(axis=1)
        clips.append(Clip(path.stem, corpus, is_held_back(corpus, path), fps,
                          torch.as_tensor(m.rotations, dtype=torch.float32),
                          torch.as_tensor(m.root_positions, dtype=torch.float32),
                          torch.as_tensor(feet, dtype=torch.float32), offsets))
    return clips


def load_clips(data_dir: Path = SHARED_DATA, bandai: bool = True, cache_dir: Path | None = CACHE_DIR) -> list[Clip]:
    """Every clip of the corpora on the canonical skeleton at 30 and 60 fps (cached).

    Raises:
        FileNotFoundError: when no corpus file is found under ``data_dir``.
    """
    files = corpus_files(data_dir, bandai)
    listed = [(c, p) for c, paths in files.items() for p in paths]
    if not listed:
        raise FileNotFoundError(f"no BVH corpora under {Path(data_dir) / 'motion'}")
    key = hashlib.sha1(repr([PREP_VERSION] + [(c, p.name, p.stat().st_size) for c, p in listed]).encode()).hexdigest()
    cache = None if cache_dir is None else Path(cache_dir) / f"clips_{key[:16]}.pt"
    if cache is not None and cache.exists():
        try:
            return [Clip(**d) for d in torch.load(cache, weights_only=True)]
        except Exception as e:  # a stale or truncated cache is rebuilt
            log.warning("ignoring unreadable cache %s: %s", cache, e)
    clips = [clip for corpus, path in listed for clip in _prepare(path, corpus)]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        torch.save([vars(c) for c in clips], tmp)
        tmp.replace(cache)
    return clips


# ----------------------------------------------------------------------------------------------------------
# Skeletons
# ----------------------------------------------------------------------------------------------------------

def r2et_skeleton(path: Path) -> Skeleton:
    """The 22-joint skeleton of an R2ET test shape (``skeleton`` = offsets in cm, Mixamo joint names)."""
    with np.load(path) as z:
        names = tuple(str(n) for n in z["joint_names"])
        offsets = np.asarray(z["skeleton"], dtype=np.float64) * 0.01
    parent_name = {n: (CANONICAL_JOINTS[p] if p >= 0 else None) for n, p in zip(CANONICAL_JOINTS, CANONICAL_PARENTS)}
    parents = tuple(-1 if parent_name[n] is None else names.index(parent_name[n]) for n in names)
    return Skeleton(names, parents, offsets)


def skeleton_pool(data_dir: Path = SHARED_DATA) -> dict[str, Tensor]:
    """Named canonical skeletons ``(22, 3)`` offsets: the built-in characters and the R2ET shapes."""
    pool = {}
    for name in builtin_character_names():
        pool[name] = canonical_rest(load_character(name).skeleton)
    for path in sorted((Path(data_dir) / "characters" / "r2et_shapes").glob("*.npz")):
        pool[f"r2et:{path.stem}"] = canonical_rest(r2et_skeleton(path))
    return {k: torch.as_tensor(v.offsets, dtype=torch.float32) for k, v in pool.items()}


def _ground(offsets: Tensor) -> Tensor:
    """Set the root offset so the T-pose's lowest foot joint is at y = 0 (as :func:`to_canonical` does)."""
    out = offsets.clone()
    out[..., 0, :] = 0.0
    out[..., 0, 1] = -rest_joint_positions(out)[..., FEET, 1].amin(-1)
    return out


def random_skeleton(rng: np.random.Generator, base: Tensor) -> Tensor:
    """``(22, 3)`` canonical offsets: ``base`` with randomly scaled body parts (real people to cartoons).

    Scales are log-uniform: legs 0.55-1.3 (thigh/shin split ±15 %), arms 0.7-1.4 (upper/fore ±15 %), torso
    0.7-1.5, neck 0.5-2, clavicles and shoulder width 0.6-2.5, hip width 0.6-2.5, feet 0.7-1.5, overall 0.4-1.3.
    """
    def f(lo: float, hi: float) -> float:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    o = base.clone()
    i = CANONICAL_JOINTS.index
    leg, thigh, arm, upper = f(0.55, 1.3), f(0.87, 1.15), f(0.7, 1.4), f(0.87, 1.15)
    torso, neck, clav, shoulder, hip, foot = f(0.7, 1.5), f(0.5, 2.0), f(0.6, 2.5), f(0.6, 2.5), f(0.6, 2.5), f(0.7, 1.5)
    for n in ("Spine", "Spine1", "Spine2", "Neck"):
        o[i(n)] *= torso
    o[i("Head")] *= neck
    for s in ("Left", "Right"):
        o[i(s + "Leg")] *= leg * thigh
        o[i(s + "Foot")] *= leg / thigh
        o[i(s + "ForeArm")] *= arm * upper
        o[i(s + "Hand")] *= arm / upper
        o[i(s + "ToeBase")] *= foot
        o[i(s + "UpLeg"), 0] *= hip
        o[i(s + "Shoulder"), 0] *= clav
        o[i(s + "Shoulder"), 1] *= torso
        o[i(s + "Arm")] *= shoulder
    return _ground(o * f(0.4, 1.3))


def leg_lengths(offsets: Tensor) -> Tensor:
    """``(...)`` T-pose hips height above the lowest foot joint (:func:`core.retarget.copy.leg_length`)."""
    return -rest_joint_positions(offsets)[..., FEET, 1].amin(-1)


def place_by_copy(world: Tensor, root: Tensor, feet: Tensor, source_offsets: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """Joint positions and root of a canonical motion copied onto other skeletons (Copy's placement).

    The root path is scaled by the leg-length ratio and the lowest foot joint is put at the source's
    lowest-foot height, scaled, as :func:`core.retarget.copy.copy_retarget` does on canonical skeletons
    (floor clearance 0).

    Args:
        world: ``(B, T, 22, 3, 3)`` world rotations (:func:`core.retarget.network.world_rotations`).
        root: ``(B, T, 3)`` source root path; feet: ``(B, T)`` source lowest-foot heights.
        source_offsets, offsets: ``(B, 22, 3)`` the source's and the new skeletons.

    Returns:
        positions ``(B, T, 22, 3)`` and root ``(B, T, 3)`` on the new skeletons.
    """
    ratio = (leg_lengths(offsets) / leg_lengths(source_offsets).clamp_min(1e-6))[:, None]
    new_root = root * ratio[..., None]
    at_zero = joint_positions(world, offsets, torch.zeros_like(root))
    lowest = at_zero[..., FEET, 1].amin(-1)
    new_root = torch.cat([new_root[..., :1], (feet * ratio - lowest)[..., None], new_root[..., 2:]], -1)
    return at_zero + new_root[..., None, :], new_root


# ----------------------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Batch:
    """Training windows. ``rotations`` are canonical local rotation matrices ``(B, T, 22, 3, 3)``.

    root ``(B, T, 3)``, feet ``(B, T)`` and source_offsets ``(B, 22, 3)`` describe the clip on its own skeleton;
    offsets_a, offsets_b ``(B, 22, 3)`` are the source and target skeletons of the pair; ``real_*`` is another
    window (the discriminator's real sample, played on skeleton B).
    """

    rotations: Tensor
    root: Tensor
    feet: Tensor
    source_offsets: Tensor
    offsets_a: Tensor
    offsets_b: Tensor
    real_rotations: Tensor
    real_root: Tensor
    real_feet: Tensor
    real_source_offsets: Tensor


class BatchSampler:
    """Random windows of the training clips on random skeleton pairs, reproducible from ``seed``.

    Skeleton A is the clip's own (25 %), one of the pool (35 %) or a random one (40 %); skeleton B one of the
    pool (50 %) or random (50 %). Random skeletons perturb a pool or clip skeleton (:func:`random_skeleton`).
    """

    def __init__(self, clips: list[Clip], pool: dict[str, Tensor], window: int = 64, seed: int = 0) -> None:
        self.clips = [c for c in clips if not c.held_back]
        if not self.clips:
            raise ValueError("no training clips")
        self.pool = list(pool.values()) + [c.offsets for c in self.clips if c.fps == TRAIN_FPS[0]][:8]
        self.window = window
        self.rng = np.random.default_rng(seed)
        lengths = np.array([c.num_frames for c in self.clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    @property
    def frames(self) -> int:
        """Training frames at the first training rate (an epoch is this many frames of windows)."""
        return sum(c.num_frames for c in self.clips if c.fps == TRAIN_FPS[0])

    def _window(self, clip: Clip) -> tuple[Tensor, Tensor, Tensor]:
        T = self.window
        start = int(self.rng.integers(0, max(clip.num_frames - T, 0) + 1))
        idx = torch.arange(start, start + T).clamp_max(clip.num_frames - 1)  # short clips hold their last frame
        return quat_to_matrix(clip.rotations[idx]), clip.root[idx], clip.feet[idx]

    def _skeleton(self, own: Tensor | None, p_own: float, p_pool: float) -> Tensor:
        u = self.rng.uniform()
        if own is not None and u < p_own:
            return own
        base = self.pool[int(self.rng.integers(len(self.pool)))]
        return base if u < p_own + p_pool else random_skeleton(self.rng, base)

    def sample(self, batch_size: int) -> Batch:
        parts: dict[str, list[Tensor]] = {k: [] for k in Batch.__dataclass_fields__}
        for _ in range(batch_size):
            clip = self.clips[int(self.rng.choice(len(self.clips), p=self.weights))]
            real = self.clips[int(self.rng.choice(len(self.clips), p=self.weights))]
            for prefix, c in (("", clip), ("real_", real)):
                rot, root, feet = self._window(c)
                parts[prefix + "rotations"].append(rot)
                parts[prefix + "root"].append(root)
                parts[prefix + "feet"].append(feet)
                parts[prefix + "source_offsets"].append(c.offsets)
            parts["offsets_a"].append(self._skeleton(clip.offsets, 0.25, 0.35))
            parts["offsets_b"].append(self._skeleton(None, 0.0, 0.5))
        return Batch(**{k: torch.stack(v) for k, v in parts.items()})
