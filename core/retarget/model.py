"""Retargeting with the trained graph network, checkpoints, and the loader that falls back to Copy.

:class:`NetworkRetargeter` works on any pair of rigs that map onto the canonical 22 joints, seen in training or
not: the source goes to the canonical skeleton with its own proportions (:func:`core.motion.to_canonical`),
the target's canonical rest skeleton comes from its rest pose (as :mod:`core.retarget.copy` does), the network
corrects the copied canonical rotations, the root follows Copy's scaled path (optionally plus the network's
root correction), the feet are grounded by :func:`core.retarget.copy.ground_feet`, and
:func:`core.motion.from_canonical` plays the result on the target rig.

:func:`load_retargeter` returns the network when the shipped (or given) checkpoint loads and the Copy
retargeter otherwise, with the reason logged and kept in ``.reason``.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import torch

from ..motion import (FOOT_JOINTS, Motion, canonical_fingers, canonical_rest, from_canonical, to_canonical,
                      with_fingers)
from ..rotations import matrix_to_quat, quat_make_continuous, quat_to_matrix
from ..skeleton import CANONICAL_JOINTS, Skeleton
from .copy import copy_retarget, foot_clearance, ground_feet, leg_length
from .network import (GraphRetargeter, NetworkConfig, compose_correction, edge_features, heading_rotation,
                      node_features, skeleton_height)

__all__ = ["DEFAULT_CHECKPOINT", "COMMERCIAL_CHECKPOINT", "CHECKPOINT_FORMAT", "Retargeter", "NetworkRetargeter", "CopyRetargeter",
           "CheckpointError", "save_checkpoint", "load_retargeter"]

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "retarget" / "graph_retargeter.pt"
# The same network trained on CMU motion capture only (free for any use): for results a user may sell. On the
# held-back clips it lowers Copy's JDM error by 0.5 % where the default's Bandai Namco training lowers it by 3.8 %
# (MODEL_CARD.md), so the default stays the non-commercial one.
COMMERCIAL_CHECKPOINT = DEFAULT_CHECKPOINT.with_name("graph_retargeter_cmu.pt")
CHECKPOINT_FORMAT = "smt-graph-retargeter/1"
_FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


class CheckpointError(RuntimeError):
    """A file is not a loadable graph-retargeter checkpoint."""


class Retargeter(Protocol):
    """What the pipeline needs: a name, why this one runs, and ``retarget(source, target) -> Motion``."""

    name: str
    reason: str

    def retarget(self, source: Motion, target: Skeleton) -> Motion: ...


class CopyRetargeter:
    """The Copy baseline behind the :class:`Retargeter` interface (``reason`` says why it runs)."""

    name = "copy"

    def __init__(self, reason: str = "Copy retargeter requested") -> None:
        self.reason = reason

    def retarget(self, source: Motion, target: Skeleton) -> Motion:
        return copy_retarget(source, target)


class NetworkRetargeter:
    """The trained graph network (SMT stage I).

    model: a :class:`GraphRetargeter` (float32, eval mode).
    use_root_mlp: add the network's root correction to Copy's scaled root path (horizontal only: the feet are
        grounded afterwards); False keeps Copy's root path.
    meta: training information from the checkpoint.
    """

    name = "network"

    def __init__(self, model: GraphRetargeter, use_root_mlp: bool = False, meta: dict | None = None,
                 reason: str = "graph network") -> None:
        self.model = model.eval()
        self.use_root_mlp = use_root_mlp
        self.meta = dict(meta or {})
        self.reason = reason

    @torch.no_grad()
    def canonical_retarget(self, source: Motion, target: Skeleton) -> Motion:
        """Retarget a canonical motion onto a canonical skeleton (no grounding; root = Copy's scaled path)."""
        rot = quat_to_matrix(torch.as_tensor(source.rotations))  # (T, 22, 3, 3) float64
        src_off = torch.as_tensor(source.skeleton.offsets, dtype=torch.float32)[None]
        tgt_off = torch.as_tensor(target.offsets, dtype=torch.float32)[None]
        h_a, h_b = skeleton_height(src_off), skeleton_height(tgt_off)
        positions = torch.as_tensor(source.positions(), dtype=torch.float32)[None]
        q = node_features(rot.float()[None], positions, h_a)
        out = self.model(q, edge_features(src_off, h_a), edge_features(tgt_off, h_b))
        rot_b = compose_correction(rot, out.delta[0].double())
        ratio = leg_length(target) / max(leg_length(source.skeleton), 1e-6)
        root = torch.as_tensor(source.root_positions) * ratio
        if self.use_root_mlp:
            heading = heading_rotation(rot_b[:, 0])  # the root's local rotation is its world rotation
            step = (heading @ out.root[0].double()[..., None])[..., 0] * float(h_b)
            root = root + step * root.new_tensor([1.0, 0.0, 1.0])
        rotations = quat_make_continuous(matrix_to_quat(rot_b), dim=0).numpy()
        return Motion(target, rotations, root.numpy(), source.fps, source.name)

    def retarget(self, source: Motion, target: Skeleton) -> Motion:
        """The source motion played on ``target`` (any rigs that map onto the canonical 22 joints).

        Raises:
            SkeletonMappingError: when either rig cannot be mapped (the message names the missing joints).
        """
        src = to_canonical(source)
        tgt = canonical_rest(target)
        moved = self.canonical_retarget(src, tgt)
        ratio = leg_length(tgt) / max(leg_length(src.skeleton), 1e-6)
        src_feet = src.positions()[:, _FEET, 1].min(axis=1)
        moved = ground_feet(moved, src_feet * ratio, foot_clearance(target))
        # The network moves the 22 body joints; finger rotations bypass it and copy across (proportions of
        # fingers differ little between characters).
        return with_fingers(from_canonical(moved, target), canonical_fingers(source))

    # -- checkpoints -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path = DEFAULT_CHECKPOINT) -> "NetworkRetargeter":
        """Load a checkpoint written by :func:`save_checkpoint`.

        Raises:
            FileNotFoundError: no file there. CheckpointError: the file is not a valid checkpoint.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no retargeter checkpoint at {path}")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
        try:
            model = GraphRetargeter(NetworkConfig(**ckpt["config"]))
            model.load_state_dict(ckpt["state_dict"])
        except Exception as e:
            raise CheckpointError(f"{path} does not fit the network ({type(e).__name__}: {e})") from None
        meta = ckpt.get("meta", {})
        return cls(model, bool(ckpt.get("use_root_mlp", False)), meta,
                   reason=f"graph network from {path.name} ({meta.get('summary', 'no training summary')})")


def save_checkpoint(path: str | Path, model: GraphRetargeter, use_root_mlp: bool = False, meta: dict | None = None) -> None:
    """Write ``model`` (float32 weights, config, ``meta`` of plain str/number/list values) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    ckpt = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config), "state_dict": state,
            "use_root_mlp": bool(use_root_mlp), "meta": dict(meta or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def load_retargeter(path: str | Path | None = None) -> NetworkRetargeter | CopyRetargeter:
    """The graph network from ``path`` (default: the shipped checkpoint), or Copy when it cannot be loaded.

    Never raises for a missing or broken checkpoint: the returned Copy retargeter's ``reason`` says what
    went wrong (also logged as a warning).
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    try:
        return NetworkRetargeter.load(path)
    except (FileNotFoundError, CheckpointError) as e:
        reason = f"Copy retargeter (network unavailable: {e})"
        log.warning(reason)
        return CopyRetargeter(reason)
